r"""Detection of programs without a minimiser when beta = 0.

With :math:`\beta = 0` the objective is the loss alone (plus the hinge for (7)), and it
has no minimiser exactly when some direction :math:`d` of the weights lowers the loss
forever: its logits :math:`e = E d` satisfy :math:`e_k \ge 0` on contexts always
followed by 1, :math:`e_k \le 0` on contexts always followed by 0, :math:`e_k = 0` on
mixed contexts, and :math:`e_k \ne 0` somewhere. For the exact and hinge programs
(:math:`\rho > 0`) the direction must also stay in the cones :math:`A_i d_i \ge 0`,
because the constraint or the linearly growing hinge stops any other. Along such a
direction every pure context's term decreases strictly, so no point is optimal.
Without one, every direction of recession keeps the objective constant, and a
minimiser exists (Rockafellar, Convex Analysis, Theorem 27.1).
"""

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import block_diag, csr_matrix, vstack


def has_unbounded_direction(design, masks, program, rho=0.0):
    """Return whether the beta = 0 program has a direction that lowers the loss forever.

    Solves one feasibility linear program with HiGHS (scipy ``linprog``).

    Parameters
    ----------
    design : WeightedDesign
        Compressed training data.
    masks : ndarray of shape (n_contexts, n_patterns), bool
        Masks of the gates.
    program : {'exact', 'relaxed', 'hinge'}
        Which program.
    rho : float, default=0.0
        Hinge weight; with ``rho = 0`` the hinge program has no cone condition.

    Returns
    -------
    bool
        True when the weights of every minimising sequence diverge.
    """
    features = design.features
    masks = np.asarray(masks, dtype=bool)
    n_contexts, n_weights = features.shape
    n_patterns = masks.shape[1]

    blocks = (masks[:, :, None] * features[:, None, :]).reshape(n_contexts, -1)
    nonzero = np.any(features != 0.0, axis=1)
    pure_one = (design.zeros == 0.0) & nonzero
    pure_zero = (design.ones == 0.0) & nonzero
    if not np.any(pure_one | pure_zero):
        return False

    constrained = program == "exact" or (program == "hinge" and rho > 0.0)
    if constrained:
        logit_map = np.hstack([blocks, -blocks])
        n_blocks = 2 * n_patterns
    else:
        logit_map = blocks
        n_blocks = n_patterns
    n_variables = logit_map.shape[1]

    mixed = ~(pure_one | pure_zero) & nonzero
    equality = [csr_matrix(logit_map[mixed])]
    target = [np.zeros(int(mixed.sum()))]
    direction = np.where(pure_one, 1.0, 0.0) - np.where(pure_zero, 1.0, 0.0)
    equality.append(csr_matrix(direction @ logit_map))
    target.append(np.ones(1))

    inequality = [csr_matrix(-logit_map[pure_one]), csr_matrix(logit_map[pure_zero])]
    if constrained:
        signs = np.where(masks[nonzero], 1.0, -1.0)
        rows = features[nonzero]
        cones = [csr_matrix(-(signs[:, j % n_patterns, None] * rows)) for j in range(n_blocks)]
        inequality.append(block_diag(cones, format="csr"))
    inequality = vstack(inequality, format="csr")

    result = linprog(
        np.zeros(n_variables),
        A_ub=inequality,
        b_ub=np.zeros(inequality.shape[0]),
        A_eq=vstack(equality, format="csr"),
        b_eq=np.concatenate(target),
        bounds=(None, None),
        method="highs",
    )
    # Status 0 means a direction was found, and 2 (infeasible) that a minimiser exists.
    # NOTE: any other status (a numerical failure) is read as "no direction found". The
    # solvers' own divergence guard still stops a run whose weights blow up.
    return result.status == 0

