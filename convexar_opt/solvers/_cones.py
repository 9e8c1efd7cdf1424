r"""Cone arithmetic of the interior-point method: Nesterov-Todd scalings and step lengths.

Two cone types occur. The non-negative orthant contains the cone constraints
:math:`A_i v_i \ge 0` and the hinge slacks. One second-order cone per block,
:math:`\{(t, u) : t \ge \lVert u\rVert\}`, contains the epigraph of each group norm.
Every function works on a batch of cones stored as the rows of an array.

For the second-order cone with :math:`J = \operatorname{diag}(1, -I)`, the Jordan product
is :math:`x \circ y = (x^\top y,\ x_0 y_1 + y_0 x_1)` with identity :math:`e = (1, 0)`.
The Nesterov-Todd scaling of a pair :math:`(s, z)` of interior points is
:math:`W = \eta\,(2 v v^\top - J)` with :math:`W z = W^{-1} s = \lambda`, built from
:math:`\bar w = (\bar s + J \bar z)/(2\gamma)` as in ECOS (``matlab/conelp_socscaling.m``).
"""

import numpy as np


def soc_norms(x):
    """Return :math:`\\sqrt{x_0^2 - \\lVert x_1\\rVert^2}` of every row, computed as a product."""
    tail = np.linalg.norm(x[:, 1:], axis=1)
    return np.sqrt(np.maximum((x[:, 0] - tail) * (x[:, 0] + tail), 0.0))


def soc_product(x, y):
    """Return the Jordan product x o y of every row pair."""
    head = np.einsum("ij,ij->i", x, y)
    tail = x[:, :1] * y[:, 1:] + y[:, :1] * x[:, 1:]
    return np.concatenate([head[:, None], tail], axis=1)


def soc_divide(x, r):
    """Return d with x o d = r for every row (x in the interior of the cone)."""
    determinant = x[:, 0] ** 2 - np.einsum("ij,ij->i", x[:, 1:], x[:, 1:])
    head = (x[:, 0] * r[:, 0] - np.einsum("ij,ij->i", x[:, 1:], r[:, 1:])) / determinant
    tail = (r[:, 1:] - head[:, None] * x[:, 1:]) / x[:, :1]
    return np.concatenate([head[:, None], tail], axis=1)


class SocScaling:
    """Nesterov-Todd scalings of a batch of second-order-cone pairs (s, z).

    Attributes
    ----------
    eta : ndarray of shape (n_cones,)
    direction : ndarray of shape (n_cones, m)
        The vector :math:`v` of :math:`W = \\eta (2 v v^\\top - J)`, with :math:`v^\\top J v = 1`.
    reflected : ndarray of shape (n_cones, m)
        :math:`J v`, computed once for every product with :math:`W^{-1}`.
    scaled : ndarray of shape (n_cones, m)
        :math:`\\lambda = W z = W^{-1} s`.
    """

    def __init__(self, s, z):
        s_norm = soc_norms(s)
        z_norm = soc_norms(z)
        s_unit = s / s_norm[:, None]
        z_unit = z / z_norm[:, None]
        gamma = np.sqrt(0.5 * (1.0 + np.einsum("ij,ij->i", s_unit, z_unit)))

        z_reflected = -z_unit
        z_reflected[:, 0] = z_unit[:, 0]
        # The NT point w_bar satisfies W_bar^2 z_bar = s_bar. Its square root W uses
        # v = (w_bar + e) / sqrt(2 (w_bar_0 + 1)).
        point = (s_unit + z_reflected) / (2.0 * gamma[:, None])
        point[:, 0] += 1.0
        self.direction = point / np.sqrt(2.0 * point[:, :1])
        self.reflected = -self.direction
        self.reflected[:, 0] = self.direction[:, 0]
        self.eta = np.sqrt(s_norm / z_norm)
        self.scaled = self.apply(z)

    def apply(self, x):
        """Return W x for every row."""
        inner = np.einsum("ij,ij->i", self.direction, x)
        result = 2.0 * inner[:, None] * self.direction + x
        result[:, 0] -= 2.0 * x[:, 0]
        return self.eta[:, None] * result

    def apply_inverse(self, x):
        """Return W^{-1} x for every row."""
        reflected = self.reflected
        inner = np.einsum("ij,ij->i", reflected, x)
        result = 2.0 * inner[:, None] * reflected + x
        result[:, 0] -= 2.0 * x[:, 0]
        return result / self.eta[:, None]

    def inverse_square(self):
        """Return :math:`W^{-2}` of every cone, shape (n_cones, m, m)."""
        reflected = self.reflected
        size = reflected.shape[1]
        inverse = 2.0 * reflected[:, :, None] * reflected[:, None, :]
        inverse[:, 0, 0] -= 1.0
        inverse[:, np.arange(1, size), np.arange(1, size)] += 1.0
        inverse /= self.eta[:, None, None]
        return inverse @ inverse


def orthant_step(x, dx):
    """Return the largest step alpha with x + alpha dx >= 0 for x > 0 (inf if none)."""
    if x.size == 0:
        return np.inf
    smallest = float(np.min(dx / x))
    return -1.0 / smallest if smallest < 0.0 else np.inf


def soc_step(x, dx):
    """Return the largest step alpha with x + alpha dx in the cone, for every row (inf if none).

    The path leaves the cone where :math:`q(\\alpha) = (x_0 + \\alpha d_0)^2 -
    \\lVert x_1 + \\alpha d_1\\rVert^2` first vanishes, since :math:`q(0) > 0`.
    """
    quadratic = dx[:, 0] ** 2 - np.einsum("ij,ij->i", dx[:, 1:], dx[:, 1:])
    linear = x[:, 0] * dx[:, 0] - np.einsum("ij,ij->i", x[:, 1:], dx[:, 1:])
    constant = soc_norms(x) ** 2

    discriminant = linear**2 - quadratic * constant
    root = np.sqrt(np.maximum(discriminant, 0.0))
    pivot = -(linear + np.where(linear >= 0.0, root, -root))
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(quadratic != 0.0, pivot / quadratic, np.inf)
        second = np.where(pivot != 0.0, constant / pivot, np.inf)
    candidates = np.stack([first, second])
    candidates = np.where(candidates > 0.0, candidates, np.inf)
    steps = candidates.min(axis=0)

    # No real root: q stays positive, and the head stays positive with it.
    steps = np.where(discriminant < 0.0, np.inf, steps)
    return steps
