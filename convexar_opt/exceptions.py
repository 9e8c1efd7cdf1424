"""Exceptions and warnings raised by convexar_opt.

Every exception derives from :class:`ConvexARError` and from the builtin that a caller
would expect, so ``except ConvexARError`` catches everything the package raises and
``except ValueError`` still catches bad input.
"""


class ConvexARError(Exception):
    """Base class of every exception raised by convexar_opt."""


class InvalidDataError(ConvexARError, ValueError):
    """Input data is malformed: not binary, wrong shape, empty or non-finite."""


class InvalidParameterError(ConvexARError, ValueError):
    """A setting such as the window, the number of patterns, beta or rho is invalid."""


class SolverNotInstalledError(ConvexARError, ImportError):
    """The requested solver is unknown, not installed or not licensed."""


class SolverError(ConvexARError, RuntimeError):
    """A solver failed, or ended without a solution that can be used."""


class NotSolvedError(ConvexARError, AttributeError):
    """The solution of a problem was requested before a successful solve."""


class NotFittedError(ConvexARError, AttributeError):
    """A model was used before ``fit`` was called."""


class ModelFileError(ConvexARError, ValueError):
    """A saved model file is truncated, altered or from an incompatible version."""


class ConvergenceWarning(UserWarning):
    """A solver stopped before reaching its tolerance, or its status is inaccurate."""
