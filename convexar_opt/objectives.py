r"""NumPy objectives of the non-convex network and of the three convex programs.

With weighted contexts :math:`\bar x_k` (counts :math:`n^1_k, n^0_k`, :math:`n_k` their
sum) and normaliser :math:`N` (number of vectors), the loss of logits :math:`a` is

.. math::

    L(a) = \frac1N \sum_k \big[n_k \log(1 + e^{a_k}) - n^1_k a_k\big],

the negative log-likelihood in nats per vector, summed over the modelled positions.
The convex programs use the logits :math:`a = \sum_i D_i \bar X (v_i - w_i)`, the group
penalty :math:`\beta \sum_i (\lVert v_i\rVert + \lVert w_i\rVert)` and, for the hinge
program, :math:`\rho \sum_{i,k} n_k [(-(A_i v_i)_k)_+ + (-(A_i w_i)_k)_+]` with
:math:`A_i = (2D_i - I)\bar X`. The hinge is not divided by N.
"""

import numpy as np

from ._numeric import weighted_bernoulli_nll

PROGRAMS = ("exact", "relaxed", "hinge")


def gated_logits(features, masks, v, w=None):
    """Return :math:`\\sum_i d_i \\odot (X (v_i - w_i))` for weights of shape (P, p)."""
    z = v if w is None else v - w
    return np.einsum("kp,kp->k", masks, features @ z.T)


def relu_logits(features, v, w):
    """Return :math:`\\sum_i (X v_i)_+ - (X w_i)_+`: the reconstructed ReLU network's logits."""
    return np.maximum(features @ v.T, 0.0).sum(axis=1) - np.maximum(features @ w.T, 0.0).sum(axis=1)


def loss(design, logits):
    """Return L(a): negative log-likelihood in nats per vector of the design's rows."""
    return weighted_bernoulli_nll(logits, design.ones, design.zeros) / design.n_vectors


def loss_gradient(design, logits):
    """Return :math:`\\nabla L(a) = (n \\odot \\sigma(a) - n^1) / N`."""
    from ._numeric import sigmoid

    return (design.counts * sigmoid(logits) - design.ones) / design.n_vectors


def group_penalty(v, w=None):
    """Return :math:`\\sum_i \\lVert v_i\\rVert + \\lVert w_i\\rVert` (without beta)."""
    total = float(np.linalg.norm(v, axis=1).sum())
    if w is not None:
        total += float(np.linalg.norm(w, axis=1).sum())
    return total


def cone_residuals(features, masks, v):
    """Return :math:`A_i v_i` for every pattern, shape (n_rows, P); feasible means >= 0."""
    signs = np.where(masks, 1.0, -1.0)
    return signs * (features @ v.T)


def hinge_penalty(design, features, masks, v, w):
    """Return :math:`\\sum_{i,k} n_k [(-(A_i v_i)_k)_+ + (-(A_i w_i)_k)_+]` (without rho)."""
    counts = design.counts[:, None]
    violation_v = np.maximum(-cone_residuals(features, masks, v), 0.0)
    violation_w = np.maximum(-cone_residuals(features, masks, w), 0.0)
    return float(np.sum(counts * (violation_v + violation_w)))


def constraint_violation(features, masks, v, w):
    """Return the largest violation :math:`\\max(0, -\\min_{i,k} (A_i v_i)_k, (A_i w_i)_k)`."""
    worst = min(cone_residuals(features, masks, v).min(), cone_residuals(features, masks, w).min())
    return float(max(0.0, -worst))


def program_objective(program, design, masks, v, w, beta, rho=0.0):
    """Return the objective of program ``'exact'``, ``'relaxed'`` or ``'hinge'`` at (v, w).

    For ``'exact'`` the value ignores the constraints; check them with
    :func:`constraint_violation`. For ``'relaxed'`` the weights are ``z = v - w``.
    """
    features = design.features
    if program == "relaxed":
        z = v - w
        return loss(design, gated_logits(features, masks, z)) + beta * group_penalty(z)

    value = loss(design, gated_logits(features, masks, v, w)) + beta * group_penalty(v, w)
    if program == "hinge":
        value += rho * hinge_penalty(design, features, masks, v, w)
    return value


def network_objective(design, U, alpha, beta):
    r"""Return the non-convex objective :math:`L(\sum_j \alpha_j (X u_j)_+) + \frac\beta2 \sum_j (\lVert u_j\rVert^2 + \alpha_j^2)`.

    ``U`` has shape (m, p) and ``alpha`` shape (m,).
    """
    U = np.asarray(U, dtype=np.float64).reshape(-1, design.n_weights)
    alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
    logits = np.maximum(design.features @ U.T, 0.0) @ alpha
    return loss(design, logits) + 0.5 * beta * (float(np.sum(U**2)) + float(np.sum(alpha**2)))
