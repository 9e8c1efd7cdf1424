"""Iterates, residuals and Mehrotra directions of the interior-point method."""

from dataclasses import dataclass

import numpy as np

from ._cones import SocScaling, orthant_step, soc_divide, soc_product, soc_step
from ._kkt import NewtonSystem

# Smallest starting dual of a hinge constraint, so that every start is interior.
_SMALLEST_DUAL = 1e-8


@dataclass
class Iterate:
    """Primal variables (u, t, xi), slacks s and duals z of the conic form.

    ``cone_*`` belong to the constraints A u (+ xi) >= 0 and ``slack_*`` to xi >= 0.
    They are None for programs without these constraints.
    """

    u: np.ndarray
    t: np.ndarray
    xi: np.ndarray | None
    soc_s: np.ndarray
    soc_z: np.ndarray
    cone_s: np.ndarray | None
    cone_z: np.ndarray | None
    slack_s: np.ndarray | None
    slack_z: np.ndarray | None

    def copy(self):
        """Return a deep copy."""
        return Iterate(*(None if part is None else part.copy() for part in self._parts()))

    def _parts(self):
        return (
            self.u,
            self.t,
            self.xi,
            self.soc_s,
            self.soc_z,
            self.cone_s,
            self.cone_z,
            self.slack_s,
            self.slack_z,
        )

    def step(self, direction, alpha):
        """Return the iterate moved by ``alpha`` along ``direction`` (an Iterate of steps)."""
        moved = [
            None if part is None else part + alpha * change
            for part, change in zip(self._parts(), direction._parts())
        ]
        return Iterate(*moved)

    def is_finite(self):
        """Return whether every entry is finite."""
        return all(part is None or bool(np.all(np.isfinite(part))) for part in self._parts())

    def degree(self):
        """Return the barrier degree: one per second-order cone and per orthant entry."""
        total = self.soc_s.shape[0]
        for part in (self.cone_s, self.slack_s):
            if part is not None:
                total += part.size
        return total

    def complementarity(self):
        """Return s^T z summed over every cone."""
        total = float(np.sum(self.soc_s * self.soc_z))
        for s, z in ((self.cone_s, self.cone_z), (self.slack_s, self.slack_z)):
            if s is not None:
                total += float(np.sum(s * z))
        return total


def initial_iterate(form, start=None):
    """Return the default start, or one built around ``start`` (u of shape (n_blocks, p)).

    The default start has u = 0 and every slack and dual at the cone's identity, except
    the duals of the epigraph cones, which start at (beta, 0). A warm start keeps u, sets t = ||u_j|| + 1 and the cone slacks to max(A u, 1), so
    the iterate stays interior while the residuals s - G x record the distance.
    """
    n_blocks, n_weights = form.n_blocks, form.n_weights
    u = np.zeros((n_blocks, n_weights)) if start is None else np.array(start, dtype=float)
    t = np.linalg.norm(u, axis=1) + 1.0

    identity = np.zeros((n_blocks, n_weights + 1))
    identity[:, 0] = 1.0
    soc_s = np.concatenate([t[:, None], u], axis=1) if start is not None else identity.copy()
    soc_s[:, 0] = np.maximum(soc_s[:, 0], np.linalg.norm(soc_s[:, 1:], axis=1) + 1.0)
    soc_z = identity.copy()
    if form.beta > 0.0:
        # The epigraph variables t_j cost beta, so their duals end at beta.
        soc_z[:, 0] = form.beta

    cone_s = cone_z = slack_s = slack_z = xi = None
    if form.paired:
        shape = (n_blocks, form.n_rows)
        cone_s = np.maximum(form.cone_map(u), 1.0) if start is not None else np.ones(shape)
        cone_z = np.ones(shape)
        if form.hinge:
            # Duals at rho n / 2 make the residual rho n - z_cone - z_slack start at 0.
            # rho n reaches 1e3 on large data sets, far from the identity.
            xi = np.zeros(shape)
            slack_s = np.ones(shape)
            half_cost = np.maximum(0.5 * form.hinge_cost, _SMALLEST_DUAL)
            slack_z = np.broadcast_to(half_cost, shape).copy()
            cone_z = slack_z.copy()
    return Iterate(u, t, xi, soc_s, soc_z, cone_s, cone_z, slack_s, slack_z)


@dataclass
class Residuals:
    """Dual residual r_d = grad f + c - G^T z and primal residual r_p = s - G x."""

    dual_u: np.ndarray
    dual_t: np.ndarray
    dual_xi: np.ndarray | None
    primal_soc: np.ndarray
    primal_cone: np.ndarray | None
    primal_slack: np.ndarray | None

    def dual_norm(self):
        """Return the largest absolute dual residual."""
        parts = [self.dual_u, self.dual_t] + ([self.dual_xi] if self.dual_xi is not None else [])
        return max(float(np.abs(part).max()) for part in parts if part.size)

    def primal_norm(self):
        """Return the largest absolute primal residual."""
        parts = [self.primal_soc] + [p for p in (self.primal_cone, self.primal_slack) if p is not None]
        return max(float(np.abs(part).max()) for part in parts if part.size)


def residuals(form, point, loss_gradient):
    """Return the residuals of ``point`` given the loss gradient over the contexts."""
    dual_u = form.loss_gradient_blocks(loss_gradient) - point.soc_z[:, 1:]
    dual_t = form.beta - point.soc_z[:, 0]
    dual_xi = primal_cone = primal_slack = None
    primal_soc = point.soc_s - np.concatenate([point.t[:, None], point.u], axis=1)
    if form.paired:
        dual_u = dual_u - form.cone_adjoint(point.cone_z)
        image = form.cone_map(point.u)
        if form.hinge:
            dual_xi = form.hinge_cost - point.cone_z - point.slack_z
            image = image + point.xi
            primal_slack = point.slack_s - point.xi
        primal_cone = point.cone_s - image
    return Residuals(dual_u, dual_t, dual_xi, primal_soc, primal_cone, primal_slack)


class Scalings:
    """Nesterov-Todd scalings of every cone at one iterate."""

    def __init__(self, point):
        self.soc = SocScaling(point.soc_s, point.soc_z)
        self.soc_inverse_square = self.soc.inverse_square()
        self.cone_ratio = None if point.cone_s is None else point.cone_z / point.cone_s
        self.slack_ratio = None if point.slack_s is None else point.slack_z / point.slack_s


def _apply_square(scalings, x):
    """Return W^{-2} x for every second-order cone (one batched product)."""
    return np.matmul(scalings.soc_inverse_square, x[:, :, None])[:, :, 0]


def newton_system(form, point, scalings, curvature, woodbury=None):
    """Return the factorised Newton system at ``point``."""
    return NewtonSystem(
        form,
        curvature,
        scalings.soc_inverse_square,
        scalings.cone_ratio,
        scalings.slack_ratio,
        woodbury=woodbury,
    )


def direction(form, point, scalings, system, res, targets):
    """Return the Newton direction for complementarity targets r_c of every cone.

    ``targets`` is (soc, cone, slack): the right-hand sides of
    :math:`\\lambda \\circ (W^{-T} \\Delta s + W \\Delta z) = r_c`.
    """
    soc_target, cone_target, slack_target = targets
    soc = scalings.soc

    scaled_soc = soc.apply_inverse(soc_divide(soc.scaled, soc_target))
    soc_vector = scaled_soc + _apply_square(scalings, res.primal_soc)
    rhs_u = -res.dual_u + soc_vector[:, 1:]
    rhs_t = -res.dual_t + soc_vector[:, 0]
    rhs_xi = None

    cone_vector = slack_vector = None
    if form.paired:
        cone_vector = cone_target / point.cone_s + scalings.cone_ratio * res.primal_cone
        rhs_u = rhs_u + form.cone_adjoint(cone_vector)
        if form.hinge:
            slack_vector = slack_target / point.slack_s + scalings.slack_ratio * res.primal_slack
            rhs_xi = -res.dual_xi + cone_vector + slack_vector

    du, dt, dxi = system.solve(rhs_u, rhs_t, rhs_xi)

    moved_soc = np.concatenate([dt[:, None], du], axis=1)
    d_soc_s = moved_soc - res.primal_soc
    d_soc_z = soc_vector - _apply_square(scalings, moved_soc)
    d_cone_s = d_cone_z = d_slack_s = d_slack_z = None
    if form.paired:
        image = form.cone_map(du) + (dxi if dxi is not None else 0.0)
        d_cone_s = image - res.primal_cone
        d_cone_z = cone_vector - scalings.cone_ratio * image
        if form.hinge:
            d_slack_s = dxi - res.primal_slack
            d_slack_z = slack_vector - scalings.slack_ratio * dxi
    return Iterate(du, dt, dxi, d_soc_s, d_soc_z, d_cone_s, d_cone_z, d_slack_s, d_slack_z)


def max_step(point, change):
    """Return the largest alpha keeping every slack and dual in its cone."""
    # One call on the stacked slacks and duals saves the NumPy overhead of a second call.
    stacked = soc_step(
        np.concatenate([point.soc_s, point.soc_z]), np.concatenate([change.soc_s, change.soc_z])
    )
    step = float(stacked.min())
    for name in ("cone_s", "cone_z", "slack_s", "slack_z"):
        part = getattr(point, name)
        if part is not None:
            step = min(step, orthant_step(part, getattr(change, name)))
    return step


def affine_targets(point, scalings):
    """Return r_c = -lambda o lambda for the predictor."""
    lam = scalings.soc.scaled
    cone = None if point.cone_s is None else -(point.cone_s * point.cone_z)
    slack = None if point.slack_s is None else -(point.slack_s * point.slack_z)
    return soc_product(-lam, lam), cone, slack


def corrector_targets(point, scalings, predictor, sigma_mu):
    """Return r_c = sigma mu e - lambda o lambda - (W^{-T} ds_a) o (W dz_a)."""
    soc = scalings.soc
    lam = soc.scaled
    second_order = soc_product(soc.apply_inverse(predictor.soc_s), soc.apply(predictor.soc_z))
    soc_target = -soc_product(lam, lam) - second_order
    soc_target[:, 0] += sigma_mu

    cone = slack = None
    if point.cone_s is not None:
        cone = sigma_mu - point.cone_s * point.cone_z - predictor.cone_s * predictor.cone_z
    if point.slack_s is not None:
        slack = sigma_mu - point.slack_s * point.slack_z - predictor.slack_s * predictor.slack_z
    return soc_target, cone, slack

