r"""Duality-gap certificates for the exact (5), relaxed (6) and hinge (7) programs.

Write :math:`a = \sum_i M_i (v_i - w_i)` with :math:`M_i = D_i \bar X`,
:math:`A_i = (2D_i - I)\bar X`, and let :math:`L^*` be the conjugate of the loss,
:math:`L^*(\lambda) = -\frac1N \sum_k n_k H(t_k)` with
:math:`t_k = (N\lambda_k + n^1_k)/n_k \in [0, 1]` and :math:`H` the binary entropy.
The three duals share one form and differ only in the box :math:`B` of the cone
multipliers (:math:`\{0\}` for (6), :math:`[0, \rho n]` for (7), :math:`[0, \infty)` for (5)):

.. math::

    \max_{\lambda,\ \mu_i, \nu_i \in B}\ -L^*(\lambda) \quad \text{s.t.} \quad
    \lVert M_i^\top \lambda - A_i^\top \mu_i \rVert \le \beta,\
    \lVert M_i^\top \lambda + A_i^\top \nu_i \rVert \le \beta \quad (i = 1..P).

From any primal point the certificate takes :math:`g = \nabla L(a)`, finds multipliers
by (bounded) non-negative least squares, scales :math:`\lambda = \theta g` into the
feasible set and evaluates the dual objective. Every dual-feasible point bounds the
optimum from below, so ``gap = primal - dual`` bounds the suboptimality of the point
whatever produced it (our solvers, CVXPY or SGD).
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import lsq_linear, nnls

from ._numeric import binary_entropy, sigmoid
from .exceptions import InvalidParameterError
from .objectives import (
    PROGRAMS,
    constraint_violation,
    gated_logits,
    loss_gradient,
    program_objective,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Certificate:
    """Duality-gap certificate of one primal point.

    Attributes
    ----------
    program : str
        ``'exact'``, ``'relaxed'`` or ``'hinge'``.
    primal : float
        Objective at the certified point, in nats per vector. For the exact program
        this is the point after projection onto the cones when the input was infeasible.
    dual : float
        Objective of a dual-feasible point: a lower bound on the optimal value.
    gap : float
        ``primal - dual``, an upper bound on the point's suboptimality.
    relative_gap : float
        ``gap / |primal|``.
    constraint_violation : float
        Largest violation of the cone constraints of the input point, 0 for a
        feasible point (reported for every program; only the exact one requires 0).
    projected : bool
        Whether the exact program's point was projected onto the cones first.
    scale : float
        Factor theta in (0, 1] applied to the gradient to make it dual feasible.
    """

    program: str
    primal: float
    dual: float
    gap: float
    relative_gap: float
    constraint_violation: float
    projected: bool
    scale: float

    def to_dict(self):
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


def _cone_multipliers(signed_design, target, upper=None):
    """Return mu in [0, upper] minimising ||A^T mu - target|| for one pattern."""
    if upper is None:
        solution, _ = nnls(signed_design.T, target, maxiter=50 * signed_design.shape[0])
        return solution
    if np.all(upper <= 0.0):
        return np.zeros(signed_design.shape[0])
    result = lsq_linear(signed_design.T, target, bounds=(0.0, upper), method="bvls")
    return np.clip(result.x, 0.0, upper)


def _dual_residuals(program, design, features, masks, correlations, rho):
    """Return the per-pattern dual infeasibility delta_i of the scaled gradient."""
    norms_plus = np.linalg.norm(correlations, axis=1)
    if program == "relaxed":
        return norms_plus

    upper = None if program == "exact" else rho * design.counts
    signs = np.where(masks, 1.0, -1.0)
    residuals = np.empty(masks.shape[1])
    for i in range(masks.shape[1]):
        signed_design = signs[:, i : i + 1] * features
        mu = _cone_multipliers(signed_design, correlations[i], upper)
        nu = _cone_multipliers(signed_design, -correlations[i], upper)
        residuals[i] = max(
            np.linalg.norm(correlations[i] - signed_design.T @ mu),
            np.linalg.norm(correlations[i] + signed_design.T @ nu),
        )
    return residuals


def _residuals_from_multipliers(program, design, features, masks, correlations, rho, multipliers):
    """Return delta_i for given cone multipliers, clipped into their box first.

    The residual norms are computed explicitly from the clipped multipliers, so
    inexact multipliers only loosen the bound.
    """
    norms_plus = np.linalg.norm(correlations, axis=1)
    if program == "relaxed":
        return norms_plus

    n_contexts, n_patterns = masks.shape
    mu, nu = (np.asarray(part, dtype=np.float64) for part in multipliers)
    if mu.shape != (n_patterns, n_contexts) or nu.shape != (n_patterns, n_contexts):
        raise InvalidParameterError(
            f"multipliers must be two arrays of shape ({n_patterns}, {n_contexts}); got "
            f"{mu.shape} and {nu.shape}. Pass (mu, nu) with one row per pattern and one "
            "column per context of the design."
        )
    upper = np.inf if program == "exact" else rho * design.counts
    mu = np.clip(np.nan_to_num(mu, nan=0.0), 0.0, upper)
    nu = np.clip(np.nan_to_num(nu, nan=0.0), 0.0, upper)

    signs = np.where(masks, 1.0, -1.0).T
    pushed_v = (signs * mu) @ features
    pushed_w = (signs * nu) @ features
    return np.maximum(
        np.linalg.norm(correlations - pushed_v, axis=1),
        np.linalg.norm(correlations + pushed_w, axis=1),
    )


def project_to_cones(design, masks, v):
    r"""Project each block :math:`v_i` onto its cone :math:`\{u : A_i u \ge 0\}`.

    Uses the Moreau decomposition :math:`\Pi(v) = v + A_i^\top \hat\mu`,
    :math:`\hat\mu = \arg\min_{\mu \ge 0} \lVert A_i^\top \mu + v \rVert`.
    """
    features = design.features
    signs = np.where(masks, 1.0, -1.0)
    projected = np.array(v, dtype=np.float64, copy=True)
    for i in range(masks.shape[1]):
        signed_design = signs[:, i : i + 1] * features
        if np.all(signed_design @ projected[i] >= 0.0):
            continue
        mu = _cone_multipliers(signed_design, -projected[i])
        projected[i] = projected[i] + signed_design.T @ mu
    return projected


def context_prior(design):
    """Return each context's fraction of targets equal to 1 (0 for a context with no rows)."""
    counts = design.counts
    return np.divide(design.ones, counts, out=np.zeros_like(counts), where=counts > 0)


def dual_value(design, logits, scale):
    r"""Return :math:`-L^*(\theta \nabla L(a))`, a dual objective value, in nats per vector."""
    counts = design.counts
    fitted = scale * sigmoid(logits) + (1.0 - scale) * context_prior(design)
    return float(np.sum(counts * binary_entropy(fitted)) / design.n_vectors)


def certify(program, design, masks, v, w, beta, rho=0.0, project=True, multipliers=None):
    """Build a duality-gap certificate for a primal point of one of the three programs.

    Parameters
    ----------
    program : {'exact', 'relaxed', 'hinge'}
        Which program the point is for.
    design : WeightedDesign
        Compressed training data.
    masks : ndarray of shape (n_contexts, n_patterns), bool
        Masks of the gates on the design's contexts.
    v, w : ndarray of shape (n_patterns, n_weights)
        The primal point; for the relaxed program the weights are ``z = v - w``.
    beta : float
        Group-norm weight.
    rho : float, default=0.0
        Hinge weight (hinge program only).
    project : bool, default=True
        For the exact program, project an infeasible point onto the cones before
        certifying it, so that the primal value is that of a feasible point.
    multipliers : tuple (mu, nu) of ndarrays of shape (n_patterns, n_contexts) or None
        Cone multipliers of the constraints on ``v`` and ``w`` (for example from an
        interior-point solver) to use instead of solving 2P non-negative least-squares
        problems. They are clipped into their box and the residuals are computed from
        the clipped values, so the certificate stays valid for any input. Ignored for
        the relaxed program.

    Returns
    -------
    Certificate
        ``gap >= primal - optimum`` holds up to rounding, for any input point.
    """
    if program not in PROGRAMS:
        raise InvalidParameterError(f"program must be one of {list(PROGRAMS)}; got {program!r}.")
    features = design.features
    masks = np.asarray(masks, dtype=bool)
    v = np.asarray(v, dtype=np.float64)
    w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)

    violation = constraint_violation(features, masks, v, w)
    projected = False
    if program == "exact" and violation > 0.0 and project:
        v = project_to_cones(design, masks, v)
        w = project_to_cones(design, masks, w)
        projected = True

    primal = program_objective(program, design, masks, v, w, beta, rho)
    if program == "exact" and not projected and violation > 0.0:
        # NOTE: an infeasible point of (5) has no valid upper bound; report an infinite gap.
        primal_bound = np.inf
    else:
        primal_bound = primal

    logits = gated_logits(features, masks, v, w)
    gradient = loss_gradient(design, logits)
    correlations = (masks * gradient[:, None]).T @ features
    if multipliers is None:
        residuals = _dual_residuals(program, design, features, masks, correlations, rho)
    else:
        residuals = _residuals_from_multipliers(
            program, design, features, masks, correlations, rho, multipliers
        )

    largest = float(residuals.max()) if residuals.size else 0.0
    scale = 1.0 if largest <= beta else beta / largest
    dual = dual_value(design, logits, scale)
    # NOTE: the gap is not clipped at 0; a slightly negative value is rounding error.
    gap = primal_bound - dual
    relative_gap = gap / max(abs(primal_bound), np.finfo(float).tiny)

    certificate = Certificate(
        program=program,
        primal=float(primal_bound),
        dual=dual,
        gap=float(gap),
        relative_gap=float(relative_gap),
        constraint_violation=violation,
        projected=projected,
        scale=float(scale),
    )
    logger.debug("certificate: %s", certificate)
    return certificate
