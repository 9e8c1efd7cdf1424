"""Solver interface, statuses and the result every backend returns."""

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

# Status strings are cvxpy's, so that code written for cvxpy reads ours unchanged.
OPTIMAL = "optimal"
OPTIMAL_INACCURATE = "optimal_inaccurate"
INFEASIBLE = "infeasible"
INFEASIBLE_INACCURATE = "infeasible_inaccurate"
UNBOUNDED = "unbounded"
UNBOUNDED_INACCURATE = "unbounded_inaccurate"
USER_LIMIT = "user_limit"
SOLVER_ERROR = "solver_error"

SOLUTION_STATUSES = (OPTIMAL, OPTIMAL_INACCURATE)
INACCURATE_STATUSES = (OPTIMAL_INACCURATE, INFEASIBLE_INACCURATE, UNBOUNDED_INACCURATE, USER_LIMIT)


@dataclass
class SolverResult:
    """Outcome of one solve by a backend.

    Attributes
    ----------
    status : str
        One of the cvxpy status strings above.
    v, w : ndarray of shape (n_patterns, n_weights) or None
        Primal weights; None when the solve produced none.
    iterations : int or None
        Iterations reported by the solver.
    seconds : float
        Wall time of the solve, including compilation for cvxpy backends.
    extra : dict
        Solver-specific figures (for example the final gap or the compile time).
    """

    status: str
    v: np.ndarray | None
    w: np.ndarray | None
    iterations: int | None
    seconds: float
    extra: dict = field(default_factory=dict)


class Solver(ABC):
    """A backend that solves one or more of the programs 'exact', 'relaxed' and 'hinge'.

    Subclasses set the class attributes and implement :meth:`solve`.

    Attributes
    ----------
    name : str
        Upper-case registry key.
    module : str or None
        Import name that must be present; probed with ``importlib.util.find_spec``.
    programs : tuple of str
        Programs the backend can solve.
    options : dict
        Known keyword options with one-line descriptions; others are rejected.
    warm_start_effect : str
        What ``warm_start=True`` does, for the docs and the warning when it does nothing.
    """

    name = ""
    module = None
    programs = ()
    options = {}
    warm_start_effect = ""
    native = False

    def is_installed(self):
        """Return whether the backend's module can be imported."""
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def check_usable(self):
        """Raise SolverNotInstalledError if the backend cannot run here (for example no licence)."""

    def check_options(self, options):
        """Raise InvalidParameterError for an option this backend does not know."""
        from ..exceptions import InvalidParameterError

        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise InvalidParameterError(
                f"unknown option(s) {unknown} for solver {self.name!r}; known options: "
                f"{sorted(self.options)}."
            )

    @abstractmethod
    def solve(self, problem, warm_start, verbose, options):
        """Solve ``problem`` and return a :class:`SolverResult`."""

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"
