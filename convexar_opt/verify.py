r"""Numerical check that the exact convex program equals the non-convex ReLU network.

With every activation pattern of the training contexts, the optimum :math:`p_5` of the
exact program (5) is the global optimum of the two-layer ReLU network (NC) over all
widths:

.. math::

    p_5 = \min_m \min_{U, \alpha}\ L\Big(\sum_{j=1}^m \alpha_j (\bar X u_j)_+\Big)
    + \frac\beta2 \sum_{j=1}^m \big(\lVert u_j\rVert^2 + \alpha_j^2\big).

:func:`verify_equivalence` enumerates the patterns, solves (5) to a certified duality
gap, rebuilds the network from the solution and trains networks from random starts
with full-batch L-BFGS. No trained network may end below the certified lower bound
on :math:`p_5`, and the best should reach :math:`p_5`.
"""

import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ._numeric import sigmoid, softplus
from ._validation import check_binary_matrix, check_int, check_nonnegative, check_window
from .certificates import certify
from .data import build_design
from .exceptions import ConvergenceWarning, InvalidParameterError
from .patterns import enumerate_patterns
from .problems import ExactProblem
from .reconstruction import ReLUNetwork, check_reconstruction, network_to_convex
from .solvers import installed_solvers

logger = logging.getLogger(__name__)

# Exact enumeration is limited to short windows, because with every context present
# and no intercept there are already 11292 patterns at r = 5.
MAX_WINDOW = 6
DEFAULT_MAX_PATTERNS = 5000
# A run counts as below the optimum when it is lower than the certified dual bound by
# more than this fraction of |optimum| (rounding of the two objective evaluations).
RELATIVE_SLACK = 1e-9
# Blocks smaller than this fraction of the largest block count as zero when choosing
# the default width, because interior-point solutions have tiny inactive blocks.
_ZERO_BLOCK_FRACTION = 1e-6


@dataclass(frozen=True)
class NetworkFit:
    """Result of one L-BFGS training run of a ReLU network.

    Attributes
    ----------
    network : ReLUNetwork
        Final weights.
    objective : float
        Final (NC) objective in nats per vector.
    iterations : int
        L-BFGS iterations used.
    converged : bool
        Whether L-BFGS-B met its tolerance before the iteration limit.
    message : str
        The optimizer's stopping message.
    """

    network: ReLUNetwork
    objective: float
    iterations: int
    converged: bool
    message: str


def network_objective_and_gradient(parameters, design, hidden_units, beta):
    r"""Return the (NC) objective and its gradient at flattened weights ``(U.ravel(), alpha)``.

    With :math:`h_j = \bar X u_j`, :math:`a = \sum_j \alpha_j (h_j)_+` and
    :math:`e = (n \odot \sigma(a) - n^1) / N`, the gradient is
    :math:`\alpha_j \bar X^\top (1[h_j > 0] \odot e) + \beta u_j` for :math:`u_j` and
    :math:`(h_j)_+^\top e + \beta \alpha_j` for :math:`\alpha_j` (a subgradient where a
    unit's pre-activation is exactly 0).
    """
    features = design.features
    split = hidden_units * design.n_weights
    U = parameters[:split].reshape(hidden_units, design.n_weights)
    alpha = parameters[split:]

    pre_activations = features @ U.T
    activations = np.maximum(pre_activations, 0.0)
    logits = activations @ alpha
    nll = np.sum(design.ones * softplus(-logits) + design.zeros * softplus(logits))
    value = nll / design.n_vectors + 0.5 * beta * (np.sum(U**2) + np.sum(alpha**2))

    residual = (design.counts * sigmoid(logits) - design.ones) / design.n_vectors
    gradient_U = ((pre_activations > 0.0) * residual[:, None] * alpha[None, :]).T @ features
    gradient_U += beta * U
    gradient_alpha = activations.T @ residual + beta * alpha
    return float(value), np.concatenate([gradient_U.ravel(), gradient_alpha])


def fit_relu_network(design, hidden_units, beta, *, random_state=None, max_iter=20_000):
    """Train a two-layer ReLU network on a design with full-batch L-BFGS in float64.

    The start is Gaussian, :math:`u_j \\sim N(0, I/p)` and
    :math:`\\alpha_j \\sim N(0, 1/m)`. SciPy's L-BFGS-B runs on the exact objective and
    gradient of :func:`network_objective_and_gradient` until the objective stops
    decreasing (relative change below 1e-15) or the projected gradient is below 1e-11.

    Parameters
    ----------
    design : WeightedDesign
    hidden_units : int
        Number m of hidden units.
    beta : float
        Weight of the penalty, the same beta as in the convex programs.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the starting weights.
    max_iter : int, default=20000
        Iteration limit of L-BFGS-B.

    Returns
    -------
    NetworkFit
    """
    hidden_units = check_int(hidden_units, "hidden_units", 1, hint=" Use at least one unit.")
    beta = check_nonnegative(beta, "beta")
    max_iter = check_int(max_iter, "max_iter", 1)
    rng = np.random.default_rng(random_state)

    n_weights = design.n_weights
    U = rng.standard_normal((hidden_units, n_weights)) / np.sqrt(n_weights)
    alpha = rng.standard_normal(hidden_units) / np.sqrt(hidden_units)
    start = np.concatenate([U.ravel(), alpha])

    result = minimize(
        network_objective_and_gradient,
        start,
        args=(design, hidden_units, beta),
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": max_iter,
            "maxfun": 2 * max_iter,
            "ftol": 1e-15,
            "gtol": 1e-11,
            "maxcor": 30,
        },
    )

    split = hidden_units * n_weights
    network = ReLUNetwork(U=result.x[:split].reshape(hidden_units, n_weights), alpha=result.x[split:].copy())
    return NetworkFit(
        network=network,
        objective=float(result.fun),
        iterations=int(result.nit),
        converged=bool(result.success),
        message=str(result.message),
    )


def beta_max(design, masks):
    """Return the smallest beta at which v = w = 0 solves the exact program with these masks.

    Above it the optimal network is identically zero. It is the largest dual
    infeasibility of the gradient of the loss at zero logits, read off the
    certificate of the zero point.
    """
    zero = np.zeros((masks.shape[1], design.n_weights))
    tiny = 1e-12
    scale = certify("exact", design, masks, zero, zero, tiny).scale
    return 0.0 if scale >= 1.0 else tiny / scale


def _solve_exact(problem, tol):
    """Solve the exact program with the native IPM, or with Clarabel when it is not registered."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        if "IPM" in installed_solvers("exact"):
            problem.solve(solver="IPM", tol=tol)
        else:
            problem.solve(solver="CLARABEL", tol_gap_rel=tol, tol_gap_abs=1e-12, tol_feas=1e-10)

    # NOTE: a solver warning is logged and not re-raised, because the certificate states
    # the accuracy reached and the comparison uses that certified bound.
    for warning in caught:
        logger.warning("exact solve: %s", warning.message)
    return problem.certificate


def _count_nonzero_blocks(v, w):
    norms = np.concatenate([np.linalg.norm(v, axis=1), np.linalg.norm(w, axis=1)])
    if norms.size == 0 or norms.max() == 0.0:
        return 0
    return int(np.sum(norms > _ZERO_BLOCK_FRACTION * norms.max()))


def _check_settings(window, n_features, beta, n_restarts, hidden_units, tol):
    window = check_window(window, n_features)
    if window > MAX_WINDOW:
        raise InvalidParameterError(
            f"window must be at most {MAX_WINDOW} for exact enumeration of the activation "
            f"patterns; got {window}. The number of patterns grows so fast with the "
            "window (11292 at r = 5 with every context present) that longer windows "
            "cannot be enumerated; sample gates with ExactProblem(n_patterns=...) instead."
        )
    beta = check_nonnegative(beta, "beta", allow_zero=False)
    n_restarts = check_int(n_restarts, "n_restarts", 1, hint=" Use at least one restart.")
    if hidden_units is not None:
        hidden_units = check_int(hidden_units, "hidden_units", 1, hint=" Use at least one unit.")
    tol = check_nonnegative(tol, "tol", allow_zero=False)
    return window, beta, n_restarts, hidden_units, tol


def _train_restarts(design, hidden_units, beta, n_restarts, rng, max_iter, progress):
    seeds = rng.integers(0, 2**63 - 1, size=n_restarts)
    iterator = seeds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(seeds, desc="non-convex restarts", unit="run")

    fits = []
    for seed in iterator:
        fit = fit_relu_network(design, hidden_units, beta, random_state=int(seed), max_iter=max_iter)
        logger.info("restart %d: objective %.12g after %d iterations", len(fits), fit.objective, fit.iterations)
        fits.append(fit)
    return fits


def _optimality_bound(design, masks, fit, beta):
    """Return the gap between a network and a lower bound on every network's objective."""
    v, w = network_to_convex(fit.network.U, fit.network.alpha, design, masks)
    certificate = certify("exact", design, masks, v, w, beta)
    return fit.objective - certificate.dual


def verify_equivalence(
    X_train,
    window,
    *,
    beta=0.1,
    intercept=True,
    n_restarts=10,
    hidden_units=None,
    tol=1e-7,
    max_patterns=DEFAULT_MAX_PATTERNS,
    max_iter=20_000,
    random_state=0,
    progress=False,
):
    """Check on real data that the exact convex program and the ReLU network agree.

    The function builds the compressed design and enumerates every activation
    pattern. It solves the exact program (5) with all of them to a certified duality
    gap, with the native IPM or, when the IPM is not registered, with Clarabel. Then
    it rebuilds the ReLU network from the solution and trains networks from
    ``n_restarts`` random starts with full-batch L-BFGS in float64
    (:func:`fit_relu_network`).

    Parameters
    ----------
    X_train : array-like of shape (n_samples, n_features)
        Binary training vectors.
    window : int
        Context length r, at most :data:`MAX_WINDOW`.
    beta : float, default=0.1
        Weight of the penalty, > 0, in the units of the per-vector loss.
    intercept : bool, default=True
        Append a constant feature (a bias for every unit).
    n_restarts : int, default=10
        Number of random starts of the non-convex training.
    hidden_units : int or None, default=None
        Width m of the trained networks. None takes ``max(K + 1, 2 * b)``, with K the
        number of distinct contexts and b the number of non-zero blocks of the convex
        solution. Both bounds suffice, because an optimal network with at most
        ``min(b, K + 1)`` units exists.
    tol : float, default=1e-7
        Relative duality gap requested from the exact solve.
    max_patterns : int, default=5000
        Stop with an error when the contexts have more activation patterns.
    max_iter : int, default=20000
        Iteration limit of each L-BFGS run.
    random_state : int or None, default=0
        Seed of the enumeration witnesses and of the training starts.
    progress : bool, default=False
        Show tqdm progress bars for the enumeration and the restarts.

    Returns
    -------
    dict
        ``convex_optimum``, ``certificate`` (``primal``, ``dual``, ``gap``,
        ``relative_gap`` and the rest of :class:`~convexar_opt.certificates.Certificate`,
        plus the solver's ``status`` and ``solver``), ``reconstructed_objective``,
        ``reconstruction`` (the full report), ``n_patterns``, ``n_contexts``,
        ``beta_max``, ``nonconvex`` (``hidden_units``, ``runs``, ``iterations``,
        ``converged``, ``best``, ``median``, ``worst``, ``tolerance``,
        ``below_optimum``, ``best_relative_difference`` and ``optimality_bound``, the
        certified distance of the best run from the global optimum), ``settings`` and
        ``seconds`` per step. Every value is a plain Python number, string, list or dict.

    Raises
    ------
    InvalidDataError
        If ``X_train`` is not a binary matrix.
    InvalidParameterError
        If the window is above :data:`MAX_WINDOW`, a setting is out of range, or the
        contexts have more than ``max_patterns`` activation patterns.

    Warns
    -----
    ConvergenceWarning
        If the exact solve ends with a certified relative gap above ``tol``. The
        comparison then uses the looser certified bound and stays valid.

    Warnings
    --------
    Limitations: only short windows can be checked (at most :data:`MAX_WINDOW`, and
    in practice up to r = 4 with an intercept when every context occurs), because the
    number of patterns explodes. L-BFGS on the non-smooth ReLU objective stops at
    stationary points, so the best run ends above the optimum (by 6e-7 to 1.5e-4 in
    relative terms in runs on Mushrooms and on Markov-chain data with r = 3 and 4).
    Only a run below the certified bound contradicts the theory.
    """
    started = time.perf_counter()
    X_train = check_binary_matrix(X_train, name="X_train")
    window, beta, n_restarts, hidden_units, tol = _check_settings(
        window, X_train.shape[1], beta, n_restarts, hidden_units, tol
    )
    max_iter = check_int(max_iter, "max_iter", 1)
    rng = np.random.default_rng(random_state)
    seconds = {}

    clock = time.perf_counter()
    design = build_design(X_train, window, intercept=intercept)
    seconds["design"] = time.perf_counter() - clock

    clock = time.perf_counter()
    gates = enumerate_patterns(
        design.features, max_patterns=max_patterns, random_state=rng, progress=progress
    )
    seconds["enumeration"] = time.perf_counter() - clock
    logger.info("%d activation patterns on %d contexts", gates.shape[0], design.n_contexts)

    clock = time.perf_counter()
    problem = ExactProblem(design, gates=gates, beta=beta)
    certificate = _solve_exact(problem, tol)
    seconds["convex_solve"] = time.perf_counter() - clock
    if certificate.relative_gap > tol:
        warnings.warn(
            f"the exact program was certified only to a relative gap of "
            f"{certificate.relative_gap:.2e} > tol = {tol:g}. The runs are compared with "
            "the certified lower bound, so the check stays valid but is looser; loosen "
            "tol or try another solver.",
            ConvergenceWarning,
            stacklevel=2,
        )

    clock = time.perf_counter()
    report = check_reconstruction(problem, include_torch=False)
    seconds["reconstruction"] = time.perf_counter() - clock

    n_blocks = _count_nonzero_blocks(problem.solution.v, problem.solution.w)
    if hidden_units is None:
        hidden_units = max(design.n_contexts + 1, 2 * n_blocks)

    clock = time.perf_counter()
    fits = _train_restarts(design, hidden_units, beta, n_restarts, rng, max_iter, progress)
    seconds["nonconvex_training"] = time.perf_counter() - clock

    nonconvex = _summarise_runs(fits, certificate, design, problem.masks, beta)
    nonconvex["hidden_units"] = hidden_units
    seconds["total"] = time.perf_counter() - started

    return {
        "convex_optimum": float(certificate.primal),
        "certificate": {
            **certificate.to_dict(),
            "status": problem.status,
            "solver": problem.solver_stats.solver_name,
        },
        "reconstructed_objective": report.network_objective,
        "reconstruction": report.to_dict(),
        "n_patterns": int(gates.shape[0]),
        "n_contexts": int(design.n_contexts),
        "n_positions": int(design.n_positions),
        "nonzero_blocks": n_blocks,
        "beta_max": float(beta_max(design, problem.masks)),
        "nonconvex": nonconvex,
        "settings": {
            "window": window,
            "beta": beta,
            "intercept": bool(intercept),
            "n_vectors": int(X_train.shape[0]),
            "n_restarts": n_restarts,
            "hidden_units": hidden_units,
            "tol": tol,
            "max_patterns": max_patterns,
            "max_iter": max_iter,
            "random_state": random_state if isinstance(random_state, (int, type(None))) else repr(random_state),
        },
        "seconds": seconds,
    }


def _summarise_runs(fits, certificate, design, masks, beta):
    runs = np.array([fit.objective for fit in fits])
    optimum = float(certificate.primal)
    tolerance = float(certificate.gap) + RELATIVE_SLACK * abs(optimum)
    below = int(np.sum(runs < optimum - tolerance))
    if below:
        logger.error(
            "%d of %d trained networks ended below the certified optimum %.12g minus %.3g",
            below,
            runs.size,
            optimum,
            tolerance,
        )

    best = fits[int(np.argmin(runs))]
    try:
        bound = float(_optimality_bound(design, masks, best, beta))
    except InvalidParameterError as error:
        # NOTE: with every pattern enumerated each unit has a pattern, so this only
        # happens if rounding puts a unit farther from its cone than the tolerance.
        logger.warning("no optimality bound for the best network: %s", error)
        bound = None

    return {
        "runs": runs.tolist(),
        "iterations": [fit.iterations for fit in fits],
        "converged": int(sum(fit.converged for fit in fits)),
        "best": float(runs.min()),
        "median": float(np.median(runs)),
        "worst": float(runs.max()),
        "tolerance": tolerance,
        "below_optimum": below,
        "best_relative_difference": float((runs.min() - optimum) / max(abs(optimum), 1e-300)),
        "optimality_bound": bound,
    }
