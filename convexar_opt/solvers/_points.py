"""Block weights of the conic form as points of the programs: splitting, repair, certificates."""

import numpy as np

from ..certificates import certify, project_to_cones


def split_weights(form, u):
    """Return (v, w) of shape (P, p) from the block weights u."""
    if form.paired:
        return u[: form.n_patterns].copy(), u[form.n_patterns :].copy()
    return u.copy(), np.zeros_like(u)


def make_feasible(form, u):
    """Return a copy of u whose blocks satisfy A_j u_j >= 0 exactly (exact program only).

    A slightly violated block moves along its own gate, which is interior to its cone
    when no non-zero context lies on the gate's hyperplane: u_j + tau g_j with the
    smallest tau that clears every row. If a gate is not interior, or rounding leaves
    a violation, the blocks are projected onto their cones with non-negative least
    squares instead.
    """
    if form.program != "exact":
        return u
    image = form.cone_map(u)
    if image.size == 0 or image.min() >= 0.0:
        return u

    fixed = u.copy()
    gates = np.vstack([form.gates, form.gates])
    gate_image = form.cone_map(gates)
    needs_projection = False
    for j in np.flatnonzero(image.min(axis=1) < 0.0):
        if not np.all(gate_image[j] > 0.0):
            needs_projection = True
            continue
        shift = float(np.max(-image[j] / gate_image[j])) * (1.0 + 1e-10)
        fixed[j] = u[j] + shift * gates[j]
        if np.min((form.rows @ fixed[j]) * form.signs[j]) < 0.0:
            needs_projection = True

    if needs_projection:
        design = form.operator.design
        masks = form.operator.masks
        v, w = split_weights(form, fixed)
        fixed = np.vstack([project_to_cones(design, masks, v), project_to_cones(design, masks, w)])
    return fixed


def block_multipliers(form, point):
    """Return the cone multipliers (mu, nu) of shape (P, K) from the duals of A u >= 0."""
    if not form.paired:
        return None
    n_contexts = form.operator.n_contexts
    mu = np.zeros((form.n_patterns, n_contexts))
    nu = np.zeros((form.n_patterns, n_contexts))
    mu[:, form.row_index] = point.cone_z[: form.n_patterns]
    nu[:, form.row_index] = point.cone_z[form.n_patterns :]
    return mu, nu


def certify_blocks(form, u, multipliers=None):
    """Return the certificate of the block weights u, made feasible first for (5)."""
    u = make_feasible(form, u)
    v, w = split_weights(form, u)
    design = form.operator.design
    certificate = certify(
        form.program,
        design,
        form.operator.masks,
        v,
        w,
        form.beta,
        form.rho,
        multipliers=multipliers,
    )
    return certificate, u
