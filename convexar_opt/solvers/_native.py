"""Common part of the native solvers: options, warm starts, statuses and warnings."""

import contextlib
import logging
import numbers
import time
import warnings
from abc import abstractmethod
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import ThreadpoolController

from .._validation import check_int
from ..exceptions import ConvergenceWarning, InvalidParameterError
from .base import OPTIMAL, OPTIMAL_INACCURATE, Solver, SolverResult

logger = logging.getLogger(__name__)

# Reasons a native run ends.
CONVERGED = "converged"
ITERATION_LIMIT = "iteration_limit"
STALLED = "stalled"
UNCERTIFIABLE = "uncertifiable"


@dataclass
class Settings:
    """Validated options of one native solve."""

    tol: float
    max_iter: int
    log_every: int
    verbose: bool
    blas_threads: int | None = 1
    extra: dict = field(default_factory=dict)

    def log(self, message, *args):
        """Log a progress line at DEBUG, or at INFO when the caller asked for verbose output."""
        logger.log(logging.INFO if self.verbose else logging.DEBUG, message, *args)


@dataclass
class RunOutcome:
    """Result of a native algorithm: the point, its certificate, iterations and stop reason."""

    v: np.ndarray
    w: np.ndarray
    certificate: object
    iterations: int
    reason: str
    extra: dict = field(default_factory=dict)


def check_positive_float(value, name):
    """Return ``value`` as a float after checking it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise InvalidParameterError(f"{name} must be a finite number > 0; got {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise InvalidParameterError(f"{name} must be a finite number > 0; got {value!r}.")
    return value


# Created on first use, because building it scans the loaded libraries (0.8 ms measured).
_THREADPOOLS = None


def _limit_blas_threads(threads):
    """Return a context that limits the BLAS thread pools to ``threads`` (None: no limit)."""
    global _THREADPOOLS
    if threads is None:
        return contextlib.nullcontext()
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=threads, user_api="blas")


class NativeSolver(Solver):
    """Base class of the NumPy solvers that stop on the duality-gap certificate.

    Subclasses implement :meth:`_run` and may extend :attr:`options` and
    :meth:`_read_extra_options`.
    """

    native = True
    module = None
    default_max_iter = 100
    default_log_every = 10
    options = {
        "tol": "relative certified duality gap at which to stop (default 1e-6)",
        "max_iter": "iteration limit",
        "log_every": "log progress every this many iterations (DEBUG, or INFO with verbose)",
        "blas_threads": "BLAS threads during the solve (default 1: on a 2-core machine two "
        "threads made full-data IPM solves 1.6 to 3.7 times slower; None keeps the process "
        "setting)",
    }

    def solve(self, problem, warm_start, verbose, options):
        # problem.solve has already rejected beta = 0 when no minimiser exists.
        settings = self._read_options(options, verbose)
        start = time.perf_counter()

        start_point = self._warm_start(problem) if warm_start else None
        with _limit_blas_threads(settings.blas_threads):
            outcome = self._run(problem, start_point, settings)
        seconds = time.perf_counter() - start

        certificate = outcome.certificate
        status = OPTIMAL if outcome.reason == CONVERGED else OPTIMAL_INACCURATE
        if status != OPTIMAL:
            self._warn_unconverged(outcome, settings, problem)
        extra = {
            "certificate": certificate,
            "gap": certificate.gap,
            "relative_gap": certificate.relative_gap,
            "stop_reason": outcome.reason,
            "iterations": outcome.iterations,
            "seconds": seconds,
            "warm_started": start_point is not None,
            **outcome.extra,
        }
        return SolverResult(
            status=status,
            v=outcome.v,
            w=outcome.w,
            iterations=outcome.iterations,
            seconds=seconds,
            extra=extra,
        )

    def _read_options(self, options, verbose):
        tol = check_positive_float(options.get("tol", 1e-6), "tol")
        max_iter = check_int(options.get("max_iter", self.default_max_iter), "max_iter", 1)
        log_every = check_int(options.get("log_every", self.default_log_every), "log_every", 1)
        blas_threads = options.get("blas_threads", 1)
        if blas_threads is not None:
            blas_threads = check_int(blas_threads, "blas_threads", 1)
        settings = Settings(
            tol=tol,
            max_iter=max_iter,
            log_every=log_every,
            verbose=bool(verbose),
            blas_threads=blas_threads,
        )
        settings.extra = self._read_extra_options(options)
        return settings

    def _read_extra_options(self, options):
        return {}

    def _warm_start(self, problem):
        point = problem.warm_start_point()
        if point is None:
            return None
        v, w = point
        expected = (problem.n_patterns, problem.design.n_weights)
        if np.shape(v) != expected or np.shape(w) != expected:
            logger.debug("warm start ignored: shapes %s, %s != %s", np.shape(v), np.shape(w), expected)
            return None
        v = np.asarray(v, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            return None
        return v, w

    def _warn_unconverged(self, outcome, settings, problem):
        gap = outcome.certificate.relative_gap
        if outcome.reason == ITERATION_LIMIT:
            advice = (
                f"stopped at max_iter={settings.max_iter} with a certified relative gap of "
                f"{gap:.3g} > tol={settings.tol:g}. Raise max_iter (for example to "
                f"{4 * settings.max_iter}) or loosen tol."
            )
        elif outcome.reason == UNCERTIFIABLE:
            advice = (
                f"stopped after {outcome.iterations} iterations: with beta = 0 the "
                "duality-gap certificate cannot close (its relative gap is "
                f"{gap:.3g}), so the point is not certified optimal. Use beta > 0 for a "
                "certified solution."
            )
        else:
            advice = (
                f"stalled after {outcome.iterations} iterations at a certified relative gap "
                f"of {gap:.3g} > tol={settings.tol:g}; the best point found is returned. "
                "Loosen tol, or compare with solver='CLARABEL'."
            )
        warnings.warn(f"solver {self.name!r} on {problem!r} {advice}", ConvergenceWarning, stacklevel=4)

    @abstractmethod
    def _run(self, problem, start_point, settings):
        """Run the algorithm from ``start_point`` ((v, w) or None) and return a RunOutcome."""
