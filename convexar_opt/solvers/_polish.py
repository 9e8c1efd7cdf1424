r"""Polishing of a near-optimal point: a few cheap steps that shrink its certified gap.

For the exact (5) and hinge (7) programs the polish guesses the optimal face from the
point: the blocks that are zero, and for every other block the contexts with
:math:`(A_j u_j)_k = 0`. On that face the objective is smooth, so Newton steps on
:math:`u_j = N_j y_j` (:math:`N_j` spans the null space of the active rows) with a
backtracking line search on the true objective converge fast. The relaxed program (6)
is polished with FISTA, restarted from the point. Either way the polished point is
kept only when its certificate is better, so a wrong guess costs time, never accuracy.
"""

import logging

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, null_space

from ..certificates import certify, project_to_cones
from ..objectives import program_objective
from ._kkt import ConicForm
from ._masked_design import MaskedDesign
from ._points import make_feasible, split_weights
from .fista import relaxed_gap, run_fista

logger = logging.getLogger(__name__)

# Pairs of relative thresholds tried in turn: a block is zero when its norm is below
# the first times the largest block norm, and a row is active when
# |(A_j u_j)_k| <= second * ||x_k|| * ||u_j||. Interior-point points resolve the face
# to about sqrt(mu), CVXPY's to its own tolerance, so several are tried; None cuts at
# the largest jump of the sorted values instead.
_FACE_THRESHOLDS = (
    (None, None),
    (1e-3, None),
    (1e-5, None),
    (1e-7, 1e-7),
    (1e-5, 1e-5),
    (1e-3, 1e-3),
)
_NEWTON_STEPS = 12
# The FISTA polish stops after this many chunks of iterations without a smaller gap.
_FISTA_PATIENCE = 3


def polish_relaxed(design, masks, beta, z, tol, max_iter=5000, check_every=10):
    """Return FISTA's point from ``z``, stopped at tol or once the gap stops improving."""
    operator = MaskedDesign(design, masks)
    best_z = np.array(z, dtype=np.float64, copy=True)
    best_gap = _relative_gap(operator, beta, best_z)
    chunk = max(check_every * 10, 100)
    lipschitz = operator.lipschitz_constant()

    stale = 0
    candidate = best_z
    for _ in range(max(1, max_iter // chunk)):
        candidate, _, reached = run_fista(
            operator,
            beta,
            candidate,
            tol=tol,
            max_iter=chunk,
            check_every=check_every,
            log=lambda *args: None,
            log_every=chunk,
            lipschitz=lipschitz,
        )
        gap = _relative_gap(operator, beta, candidate)
        if gap < best_gap:
            best_z, best_gap, stale = candidate, gap, 0
        else:
            stale += 1
        if reached or stale >= _FISTA_PATIENCE:
            break
    return best_z


def _relative_gap(operator, beta, z):
    primal, dual = relaxed_gap(operator, beta, z)
    return (primal - dual) / max(abs(primal), np.finfo(float).tiny)


def _gap_cutoff(values, ceiling, min_ratio=30.0):
    """Return a cutoff at the largest jump (by ratio) among sorted values below ``ceiling``.

    Returns 0 when no jump of at least ``min_ratio`` exists, so nothing is below it.
    """
    ordered = np.sort(np.maximum(values, np.finfo(float).tiny))
    below = int(np.searchsorted(ordered, ceiling, side="right"))
    if below == 0 or below == ordered.size and ordered.size < 2:
        return 0.0
    stop = min(below, ordered.size - 1)
    ratios = ordered[1 : stop + 1] / ordered[:stop]
    if ratios.size == 0 or ratios.max() < min_ratio:
        return 0.0
    cut = int(np.argmax(ratios))
    return float(np.sqrt(ordered[cut] * ordered[cut + 1]))


class _Face:
    """Zero blocks and null-space bases of the active rows of the other blocks.

    ``thresholds`` contains the relative levels for zero blocks and active rows. None
    cuts at the largest jump of the sorted relative values below 1e-2.
    """

    def __init__(self, form, u, thresholds):
        zero_threshold, row_threshold = thresholds
        norms = np.linalg.norm(u, axis=1)
        largest = max(float(norms.max()), np.finfo(float).tiny)
        self.blocks = []
        self.bases = []
        row_norms = np.linalg.norm(form.rows, axis=1)
        relative_norms = norms / largest
        zero_level = zero_threshold
        if zero_threshold is None:
            zero_level = _gap_cutoff(relative_norms, 1e-2)

        for j in np.flatnonzero(relative_norms > zero_level):
            basis = np.eye(form.n_weights)
            if form.paired and form.n_rows:
                image = (form.rows @ u[j]) * form.signs[j]
                relative = np.abs(image) / (row_norms * norms[j])
                level = row_threshold
                if row_threshold is None:
                    level = _gap_cutoff(relative, 1e-2)
                active = relative <= level
                if np.any(active):
                    signed_rows = form.signs[j][active, None] * form.rows[active]
                    basis = null_space(signed_rows, rcond=1e-10)
            if basis.shape[1] == 0:
                continue
            self.blocks.append(j)
            self.bases.append(basis)
        self.offsets = np.cumsum([0] + [basis.shape[1] for basis in self.bases])

    @property
    def size(self):
        return int(self.offsets[-1])

    def weights(self, form, y):
        """Return the block weights u of reduced coordinates y."""
        u = np.zeros((form.n_blocks, form.n_weights))
        for index, (j, basis) in enumerate(zip(self.blocks, self.bases)):
            u[j] = basis @ y[self.offsets[index] : self.offsets[index + 1]]
        return u

    def coordinates(self, u):
        """Return the reduced coordinates of u (its projection onto the face)."""
        return np.concatenate([basis.T @ u[j] for j, basis in zip(self.blocks, self.bases)])

    def reduced_design(self, form):
        """Return the (K, size) matrix mapping y to the logits."""
        patterns = form.n_patterns
        columns = []
        for j, basis in zip(self.blocks, self.bases):
            pattern = j % patterns
            sign = -1.0 if form.paired and j >= patterns else 1.0
            block = form.operator.matrix[:, pattern * form.n_weights : (pattern + 1) * form.n_weights]
            columns.append(sign * (block @ basis))
        return np.hstack(columns)


def _objective(form, u):
    v, w = split_weights(form, u)
    return program_objective(form.program, form.operator.design, form.operator.masks, v, w, form.beta, form.rho)


def _feasible(form, u):
    if form.program != "exact" or form.n_rows == 0:
        return True
    return bool(np.min(form.cone_map(u)) >= -1e-14 * max(1.0, float(np.abs(u).max())))


def newton_on_face(form, u, thresholds, max_steps=_NEWTON_STEPS):
    """Return u improved by Newton steps restricted to the optimal face guessed from u."""
    face = _Face(form, u, thresholds)
    if face.size == 0:
        return u
    design_matrix = face.reduced_design(form)
    y = face.coordinates(u)
    current = face.weights(form, y)
    if not _feasible(form, current):
        return u
    value = _objective(form, current)

    for _ in range(max_steps):
        gradient, hessian = _reduced_derivatives(form, face, design_matrix, current, y)
        try:
            step = -cho_solve(cho_factor(hessian, lower=True), gradient)
        except LinAlgError:
            break
        decrease = float(gradient @ step)
        if not decrease < 0.0:
            break

        alpha = 1.0
        while alpha > 1e-10:
            trial = face.weights(form, y + alpha * step)
            if _feasible(form, trial):
                trial_value = _objective(form, trial)
                if trial_value <= value + 1e-4 * alpha * decrease:
                    break
            alpha *= 0.5
        else:
            break
        y = y + alpha * step
        current = trial
        improvement = value - trial_value
        value = trial_value
        if improvement <= 1e-15 * max(abs(value), 1.0):
            break

    logger.debug(
        "face Newton: %d blocks, %d free coordinates, objective %.12g",
        len(face.blocks),
        face.size,
        value,
    )
    return current


def _reduced_derivatives(form, face, design_matrix, u, y):
    """Return the gradient and Hessian of the objective in the reduced coordinates."""
    operator = form.operator
    logits = form.logits(u)
    gradient_logits = operator.loss_gradient(logits)
    curvature = operator.loss_curvature(logits)

    gradient = design_matrix.T @ gradient_logits
    scaled = np.sqrt(curvature)[:, None] * design_matrix
    hessian = scaled.T @ scaled

    for index, (j, basis) in enumerate(zip(face.blocks, face.bases)):
        block = slice(face.offsets[index], face.offsets[index + 1])
        norm = float(np.linalg.norm(u[j]))
        direction = u[j] / norm
        gradient[block] += form.beta * (basis.T @ direction)
        projector = (np.eye(form.n_weights) - np.outer(direction, direction)) / norm
        hessian[block, block] += form.beta * (basis.T @ projector @ basis)
        if form.hinge and form.n_rows:
            image = (form.rows @ u[j]) * form.signs[j]
            violated = image < 0.0
            if np.any(violated):
                pull = (form.hinge_cost[violated] * form.signs[j][violated]) @ form.rows[violated]
                gradient[block] -= basis.T @ pull

    ridge = 1e-12 * max(float(np.abs(np.diag(hessian)).max()), np.finfo(float).tiny)
    hessian[np.diag_indices_from(hessian)] += ridge
    return gradient, hessian


def polish_blocks(form, u, certificate, tol):
    """Return (u, certificate) after polishing, or the inputs when polishing does not help.

    Parameters
    ----------
    form : ConicForm
    u : ndarray of shape (n_blocks, p)
        Block weights; for the exact program they must be feasible.
    certificate : Certificate
        Certificate of ``u``.
    tol : float
        Relative gap at which to stop.
    """
    design = form.operator.design
    masks = form.operator.masks
    if form.program == "relaxed":
        candidates = (lambda: polish_relaxed(design, masks, form.beta, u, tol),)
    else:
        candidates = tuple(
            (lambda thresholds=thresholds: newton_on_face(form, u, thresholds))
            for thresholds in _FACE_THRESHOLDS
        )

    best_u, best = u, certificate
    for build in candidates:
        candidate = make_feasible(form, build())
        v, w = split_weights(form, candidate)
        polished = certify(form.program, design, masks, v, w, form.beta, form.rho)
        logger.debug(
            "polish: relative gap %.3e -> %.3e", certificate.relative_gap, polished.relative_gap
        )
        if polished.gap < best.gap:
            best_u, best = candidate, polished
        if best.relative_gap <= tol:
            break
    return best_u, best


def polish_point(problem, v, w, tol):
    """Polish a point (v, w) of ``problem`` from any solver.

    Returns
    -------
    v, w : ndarray of shape (P, p)
        The polished point, or the input when polishing did not lower the certified
        gap. For the exact program an infeasible input is first moved onto the cones.
    certificate : Certificate
        Certificate of the returned point.
    raw_certificate : Certificate
        Certificate of the input point, computed by :func:`certify` unchanged.
    """
    design, masks = problem.design, problem.masks
    raw_certificate = certify(problem.program, design, masks, v, w, problem.beta, problem.rho)
    if problem.beta == 0.0:
        return v, w, raw_certificate, raw_certificate

    form = ConicForm(problem)
    if raw_certificate.projected:
        # The same projection as the raw certificate's, so both start from one point.
        v = project_to_cones(design, masks, v)
        w = project_to_cones(design, masks, w)
    u = np.vstack([v, w]) if form.paired else v - w
    u = make_feasible(form, u)
    start_v, start_w = split_weights(form, u)
    start = certify(problem.program, design, masks, start_v, start_w, problem.beta, problem.rho)
    polished_u, certificate = polish_blocks(form, u, start, tol)
    polished_v, polished_w = split_weights(form, polished_u)
    return polished_v, polished_w, certificate, raw_certificate
