"""Base class of the three convex programs: data, gates, parameters and the solve contract."""

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_nonnegative
from ..certificates import certify
from ..data import WeightedDesign, build_design
from ..exceptions import InvalidDataError, NotSolvedError, SolverError
from ..objectives import gated_logits, program_objective
from ..patterns import gate_masks, sample_gates
from ..solvers import get_solver
from ..solvers._recession import has_unbounded_direction
from ..solvers.base import INACCURATE_STATUSES, SOLUTION_STATUSES, SOLVER_ERROR
from ..solvers.cvxpy_backends import raise_failed, warn_inaccurate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvexSolution:
    """Weights of a convex program, one row per pattern.

    Attributes
    ----------
    v, w : ndarray of shape (n_patterns, n_weights)
        Positive and negative parts. The relaxed program stores its ``z`` in ``v``
        with ``w = 0``.
    """

    v: np.ndarray
    w: np.ndarray

    @property
    def z(self):
        """Net weights ``v - w`` used by the gated logits."""
        return self.v - self.w


@dataclass(frozen=True)
class SolverStats:
    """Figures of the last solve: solver name, status, seconds, iterations and extras."""

    solver_name: str
    status: str
    seconds: float
    iterations: int | None
    extra: dict


class ConvexARProblem:
    """Common part of :class:`ExactProblem`, :class:`RelaxedProblem` and :class:`HingeProblem`.

    Parameters
    ----------
    data : array-like of shape (n_samples, n_features) or WeightedDesign
        Binary training vectors, or an already compressed design.
    window : int, default=10
        Context length r (ignored when ``data`` is a WeightedDesign).
    n_patterns : int, default=50
        Number P of sampled gates (ignored when ``gates`` is given).
    beta : float, default=1e-3
        Weight of the group norms, in the units of the per-vector loss.
    intercept : bool, default=True
        Append a constant feature to the contexts and the gates (ignored when ``data``
        is a WeightedDesign, which carries its own setting).
    gates : array-like of shape (n_patterns, n_weights) or None, default=None
        Gate vectors to use instead of sampled ones.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the gate sampler.
    """

    program = ""

    def __init__(
        self,
        data,
        *,
        window=10,
        n_patterns=50,
        beta=1e-3,
        intercept=True,
        gates=None,
        random_state=None,
    ):
        if isinstance(data, WeightedDesign):
            design = data
        else:
            design = build_design(data, window, intercept=intercept)
        self.design = design

        if gates is None:
            n_patterns = check_int(n_patterns, "n_patterns", 1, hint=" Use at least one pattern.")
            gates = sample_gates(design.n_weights, n_patterns, random_state)
        gates = np.asarray(gates, dtype=np.float64)
        if gates.ndim != 2 or gates.shape[0] == 0:
            raise InvalidDataError(
                f"gates must be a non-empty 2-D array of shape (n_patterns, "
                f"{design.n_weights}); got shape {gates.shape}."
            )
        self.gates = gates
        self.masks = gate_masks(design.features, gates)

        self._beta = check_nonnegative(beta, "beta")
        self._rho = 0.0
        self._cvxpy = None
        self._warned = set()
        self._reset_result()

    def _reset_result(self):
        self.status = None
        self.value = None
        self.solver_stats = None
        self.certificate = None
        self._solution = None

    @property
    def n_patterns(self):
        """Number P of patterns."""
        return self.gates.shape[0]

    @property
    def beta(self):
        """Weight of the group norms; setting it re-uses the compiled CVXPY problem."""
        return self._beta

    @beta.setter
    def beta(self, value):
        self._beta = check_nonnegative(value, "beta")
        if self._cvxpy is not None:
            self._cvxpy.param_dict["beta"].value = self._beta

    @property
    def rho(self):
        """Weight of the hinge penalty; 0 for the programs without one."""
        return self._rho

    @property
    def solution(self):
        """Weights of the last successful solve.

        Raises
        ------
        NotSolvedError
            If the problem was not solved, or the last solve ended without a solution
            (infeasible, unbounded or solver error).
        """
        if self._solution is None:
            if self.status is None:
                raise NotSolvedError(f"{self!r} has not been solved; call solve() first.")
            raise NotSolvedError(
                f"{self!r} has no solution: the last solve ended with status "
                f"{self.status!r}. Check the data and settings or try another solver."
            )
        return self._solution

    def objective(self, v, w=None):
        """Return the program's objective at (v, w), in nats per vector."""
        v = np.asarray(v, dtype=np.float64)
        w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)
        return program_objective(self.program, self.design, self.masks, v, w, self.beta, self.rho)

    def logits(self, v, w=None):
        """Return the gated logits of the design's contexts at (v, w)."""
        v = np.asarray(v, dtype=np.float64)
        w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)
        return gated_logits(self.design.features, self.masks, v, w)

    def certify(self, v=None, w=None):
        """Return the duality-gap certificate of (v, w), or of the current solution."""
        if v is None:
            v, w = self.solution.v, self.solution.w
        v = np.asarray(v, dtype=np.float64)
        w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)
        return certify(self.program, self.design, self.masks, v, w, self.beta, self.rho)

    def _warn_once(self, message):
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, UserWarning, stacklevel=4)

    def warm_start_point(self):
        """Return (v, w) of the last solution, or None when there is none."""
        if self._solution is None:
            return None
        return self._solution.v, self._solution.w

    def set_warm_start(self, v, w=None):
        """Use (v, w) as the starting point of the next ``solve(warm_start=True)``."""
        v = np.asarray(v, dtype=np.float64)
        w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)
        expected = (self.n_patterns, self.design.n_weights)
        if v.shape != expected or w.shape != expected:
            raise InvalidDataError(
                f"warm-start weights must have shape {expected}; got {v.shape} and {w.shape}."
            )
        self._solution = ConvexSolution(v=v.copy(), w=w.copy())
        if self._cvxpy is not None:
            self._write_cvxpy_weights(v, w)

    def solve(self, solver=None, warm_start=True, verbose=False, **options):
        """Solve the program and return its optimal value in nats per vector.

        Parameters
        ----------
        solver : str or None, default=None
            Registry name (see :func:`convexar_opt.solvers.installed_solvers`). None
            takes the first installed solver that supports this program.
        warm_start : bool, default=True
            Start from the previous solution where the solver supports it.
        verbose : bool, default=False
            Forward the solver's own output.
        **options
            Solver options; unknown names are rejected with the list of known ones.

        Returns
        -------
        float
            The optimal value, ``inf`` if infeasible, ``-inf`` if unbounded, and ``nan``
            when the solver stopped at a limit (status ``user_limit``) without a point.

        Raises
        ------
        SolverError
            If the solver failed without producing a point, returned non-finite or
            misshapen weights, or if ``beta = 0`` and the program has no minimiser
            (checked before any solver runs).
        """
        backend = get_solver(solver, self.program)
        backend.check_options(options)
        self._check_minimiser_exists()
        logger.info(
            "solving %r with %s (%d weights, %d contexts)",
            self,
            backend.name,
            2 * self.n_patterns * self.design.n_weights,
            self.design.n_contexts,
        )

        result = backend.solve(self, warm_start, verbose, dict(options))
        return self._store_result(backend, result)

    def _check_minimiser_exists(self):
        """Raise SolverError when beta = 0 and the loss decreases forever along a direction.

        CVXPY backends report such a program as 'optimal' with large finite weights (SCS,
        Clarabel and ECOS did with cvxpy 1.9), so the check runs before any backend.
        """
        if self.beta != 0.0:
            return
        if has_unbounded_direction(self.design, self.masks, self.program, self.rho):
            raise SolverError(
                f"beta = 0 on {self!r}: some contexts are always followed by the same "
                "value and the model can push their probabilities to 0 or 1, so the "
                "program has no minimiser (the weights diverge). Use beta > 0."
            )

    def _store_result(self, backend, result):
        self.status = result.status
        self.solver_stats = SolverStats(
            solver_name=backend.name,
            status=result.status,
            seconds=result.seconds,
            iterations=result.iterations,
            extra=dict(result.extra),
        )

        if result.status == SOLVER_ERROR or (
            result.status in SOLUTION_STATUSES and result.v is None
        ):
            self._solution = None
            self.value = None
            self.certificate = None
            self.status = SOLVER_ERROR
            message = result.extra.get("message", "")
            if result.status != SOLVER_ERROR:
                message = "it returned no weights"
            raise_failed(backend.name, result.status, self, message)

        if result.status in SOLUTION_STATUSES:
            self._check_weights(backend, result)

        if result.status not in SOLUTION_STATUSES:
            self._solution = None
            self.certificate = None
            if result.status.startswith("infeasible"):
                self.value = np.inf
            elif result.status.startswith("unbounded"):
                self.value = -np.inf
            else:
                # A limit or an unknown status gives no optimal value, so none is reported.
                self.value = np.nan
            if result.status in INACCURATE_STATUSES:
                warn_inaccurate(backend.name, result.status, self)
            logger.info("%s ended with status %s", backend.name, result.status)
            return self.value

        w = np.zeros_like(result.v) if result.w is None else result.w
        self._solution = ConvexSolution(v=result.v, w=w)
        self.certificate = result.extra.get("certificate") or self.certify()
        self.value = self.certificate.primal
        if result.status in INACCURATE_STATUSES and not backend.native:
            # Native solvers already warned with their own gap and advice.
            warn_inaccurate(backend.name, result.status, self, self.certificate)
        logger.info(
            "%s: status %s, value %.10g, relative gap %.2e, %.3f s",
            backend.name,
            result.status,
            self.value,
            self.certificate.relative_gap,
            result.seconds,
        )
        return self.value

    def _check_weights(self, backend, result):
        """Raise SolverError when a solution status comes with unusable weights."""
        expected = (self.n_patterns, self.design.n_weights)
        for name, weights in (("v", result.v), ("w", result.w)):
            if weights is None:
                continue
            if np.shape(weights) != expected:
                problem = f"weights {name} of shape {np.shape(weights)} instead of {expected}"
            elif not np.all(np.isfinite(weights)):
                problem = f"non-finite weights in {name}"
            else:
                continue
            self._solution = None
            self.value = None
            self.certificate = None
            self.status = SOLVER_ERROR
            raise_failed(backend.name, result.status, self, f"it returned {problem}")

    # CVXPY form -------------------------------------------------------------------

    def to_cvxpy(self):
        """Return the underlying ``cvxpy.Problem``, compiled once and re-used."""
        if self._cvxpy is None:
            self._cvxpy = self._build_cvxpy()
        return self._cvxpy

    def _cvxpy_loss(self, logits):
        import cvxpy as cp

        design = self.design
        weighted = cp.sum(cp.multiply(design.counts, cp.logistic(logits))) - design.ones @ logits
        return weighted / design.n_vectors

    def _build_cvxpy(self):
        raise NotImplementedError  # each program builds its own form

    def _read_cvxpy_weights(self):
        variables = self._cvxpy.var_dict
        if variables["v"].value is None:
            return None, None
        v = np.asarray(variables["v"].value, dtype=np.float64).T.copy()
        if "w" in variables:
            w = np.asarray(variables["w"].value, dtype=np.float64).T.copy()
        else:
            w = np.zeros_like(v)
        return v, w

    def _write_cvxpy_weights(self, v, w):
        variables = self._cvxpy.var_dict
        if "w" in variables:
            variables["v"].value = v.T
            variables["w"].value = w.T
        else:
            variables["v"].value = (v - w).T

    def __repr__(self):
        return (
            f"{type(self).__name__}(n_patterns={self.n_patterns}, "
            f"window={self.design.window}, n_contexts={self.design.n_contexts}, "
            f"intercept={self.design.intercept}, beta={self.beta:g})"
        )
