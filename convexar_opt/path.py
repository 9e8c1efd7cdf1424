r"""Regularization paths over beta, with warm starts and validation scores.

:func:`beta_max` gives the threshold above which the zero weights are optimal. With
:math:`g_0 = \nabla L(0) = (n/2 - n^1)/N` and
:math:`c_i = M_i^\top g_0`, :math:`z = 0` solves the relaxed program iff
:math:`\beta \ge \max_i \lVert c_i\rVert`, and :math:`v = w = 0` solves the exact
(hinge) program iff :math:`\beta \ge \max_i \delta_i(g_0)`, the distance of
:math:`\pm c_i` from the cone :math:`\{A_i^\top \mu : \mu \ge 0\}` (with
:math:`\mu \le \rho n` for the hinge program). Grids are usually written as fractions
of it, for example ``beta_max(problem) * np.logspace(0, -3, 10)``.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .certificates import _dual_residuals
from .data import WeightedDesign
from .exceptions import InvalidDataError, InvalidParameterError
from .objectives import gated_logits, loss
from .patterns import gate_masks

logger = logging.getLogger(__name__)


def beta_max(problem):
    """Return the smallest beta at which the zero weights are optimal for ``problem``.

    Parameters
    ----------
    problem : ExactProblem, RelaxedProblem or HingeProblem

    Returns
    -------
    float
        For every beta >= this value the program's optimum is at v = w = 0, with
        value :math:`L(0) = \\log 2 \\sum_k n_k / N`.
    """
    design = problem.design
    features = design.features
    masks = np.asarray(problem.masks, dtype=bool)
    gradient = (0.5 * design.counts - design.ones) / design.n_vectors
    correlations = (masks * gradient[:, None]).T @ features
    residuals = _dual_residuals(problem.program, design, features, masks, correlations, problem.rho)
    return float(residuals.max()) if residuals.size else 0.0


@dataclass(frozen=True)
class PathPoint:
    """One solve of a regularization path.

    Attributes
    ----------
    beta : float
        Group-norm weight of this solve.
    v, w : ndarray of shape (n_patterns, n_weights)
        The solution.
    objective : float
        Certified primal value, in nats per vector.
    gap, relative_gap : float
        Duality gap of the solution's certificate, absolute and relative.
    status : str
        Status of the solve.
    seconds : float
        Wall time of the solve.
    iterations : int or None
        Iterations reported by the solver.
    valid_nll : float or None
        Validation loss in nats per vector with the gated rule, when a validation
        design was given.
    """

    beta: float
    v: np.ndarray
    w: np.ndarray
    objective: float
    gap: float
    relative_gap: float
    status: str
    seconds: float
    iterations: int | None
    valid_nll: float | None = None


@dataclass
class RegularizationPath:
    """Solutions of one program over a grid of beta values, largest beta first."""

    program: str
    solver: str
    points: list = field(default_factory=list)

    def __len__(self):
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, index):
        return self.points[index]

    @property
    def betas(self):
        """Beta of every point, in the order solved (decreasing)."""
        return np.array([point.beta for point in self.points])

    @property
    def objectives(self):
        """Certified objective of every point."""
        return np.array([point.objective for point in self.points])

    @property
    def relative_gaps(self):
        """Relative certified gap of every point."""
        return np.array([point.relative_gap for point in self.points])

    @property
    def seconds(self):
        """Solve time of every point."""
        return np.array([point.seconds for point in self.points])

    @property
    def valid_nll(self):
        """Validation loss of every point (NaN where none was computed)."""
        return np.array([np.nan if p.valid_nll is None else p.valid_nll for p in self.points])

    def best(self):
        """Return the point with the lowest validation loss.

        Raises
        ------
        InvalidParameterError
            If the path was computed without a validation design.
        """
        scores = self.valid_nll
        if len(self.points) == 0 or np.all(np.isnan(scores)):
            raise InvalidParameterError(
                "the path has no validation scores; pass valid_design to regularization_path."
            )
        return self.points[int(np.nanargmin(scores))]


def _check_betas(betas):
    values = np.asarray(betas, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise InvalidParameterError("betas is empty; give at least one value of beta.")
    bad = ~np.isfinite(values) | (values < 0.0)
    if np.any(bad):
        raise InvalidParameterError(
            f"betas must be finite and >= 0; got {float(values[bad][0])!r}. Use for example "
            "beta_max(problem) * np.logspace(0, -3, 10)."
        )
    return np.sort(values)[::-1]


def _check_valid_design(problem, valid_design):
    if not isinstance(valid_design, WeightedDesign):
        raise InvalidDataError(
            f"valid_design must be a WeightedDesign built with build_design; got "
            f"{type(valid_design).__name__}."
        )
    train = problem.design
    if valid_design.window != train.window or valid_design.intercept != train.intercept:
        raise InvalidDataError(
            f"valid_design has window={valid_design.window}, intercept="
            f"{valid_design.intercept} but the training design has window={train.window}, "
            f"intercept={train.intercept}. Build it with build_design(X_valid, "
            f"{train.window}, intercept={train.intercept})."
        )


def validation_nll(problem, valid_design, v, w):
    """Return the loss of weights (v, w) on ``valid_design`` with the problem's gates."""
    features = valid_design.features
    masks = gate_masks(features, problem.gates)
    return loss(valid_design, gated_logits(features, masks, v, w))


def regularization_path(problem, betas, valid_design=None, solver=None, progress=False, **options):
    """Solve ``problem`` for every beta, largest first, each solve warm-started.

    Parameters
    ----------
    problem : ExactProblem, RelaxedProblem or HingeProblem
        The program. Its ``beta`` is set to each value in turn, so afterwards its beta
        is the smallest value and its solution is the one for that value.
    betas : array-like of float
        Values of beta, in any order; they are solved in decreasing order.
    valid_design : WeightedDesign or None, default=None
        Validation data built with the same window and intercept as the training
        design. When given, every point records its validation loss in nats per vector.
    solver : str or None, default=None
        Registry name; None takes the default (native) solver.
    progress : bool, default=False
        Show a tqdm progress bar.
    **options
        Solver options, passed to every solve.

    Returns
    -------
    RegularizationPath

    Raises
    ------
    InvalidParameterError
        If ``betas`` is empty, negative or not finite.
    InvalidDataError
        If ``valid_design`` does not match the training design.
    SolverError
        If a solve fails without a point (for example beta = 0 with no minimiser).
    """
    ordered = _check_betas(betas)
    if valid_design is not None:
        _check_valid_design(problem, valid_design)

    path = RegularizationPath(program=problem.program, solver="")
    iterator = ordered
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(ordered, desc=f"{problem.program} path", unit="beta")

    for beta in iterator:
        problem.beta = float(beta)
        start = time.perf_counter()
        problem.solve(solver=solver, warm_start=True, **options)
        seconds = time.perf_counter() - start
        path.points.append(_path_point(problem, valid_design, float(beta), seconds))
        path.solver = problem.solver_stats.solver_name
        logger.info(
            "path: beta %.3g, objective %.8g, relative gap %.2e, %.3f s",
            beta,
            problem.value,
            problem.certificate.relative_gap,
            seconds,
        )
    return path


def _path_point(problem, valid_design, beta, seconds):
    solution = problem.solution
    certificate = problem.certificate
    score = None
    if valid_design is not None:
        score = validation_nll(problem, valid_design, solution.v, solution.w)
    return PathPoint(
        beta=beta,
        v=solution.v.copy(),
        w=solution.w.copy(),
        objective=float(certificate.primal),
        gap=float(certificate.gap),
        relative_gap=float(certificate.relative_gap),
        status=problem.status,
        seconds=seconds,
        iterations=problem.solver_stats.iterations,
        valid_nll=score,
    )
