r"""Hinge program (7): the exact program with its constraints moved into a penalty.

.. math::

    \min_{v, w}\ \text{objective of (5)}
    + \rho \sum_{i=1}^P \sum_{k} n_k \Big[\big(-(A_i v_i)_k\big)_+ + \big(-(A_i w_i)_k\big)_+\Big],
    \qquad A_i = (2D_i - I)\bar X.

The loss carries 1/N and the hinge does not. Once :math:`\rho n_k` exceeds the optimal
cone multipliers of (5), the penalty is exact and the optimal values coincide.
"""

import numpy as np

from .._validation import check_nonnegative
from .exact import ExactProblem


class HingeProblem(ExactProblem):
    """Hinge-penalised convex program (7).

    Parameters
    ----------
    rho : float, default=1e-4
        Weight of the hinge penalty per violated row. Other parameters are those of
        :class:`~convexar_opt.problems.base.ConvexARProblem`.

    Warnings
    --------
    Limitations: below the exact-penalty threshold the solution may violate the cone
    constraints, so its reconstructed ReLU network can differ from its gated logits.
    """

    program = "hinge"

    def __init__(self, data, *, rho=1e-4, **kwargs):
        super().__init__(data, **kwargs)
        self._rho = check_nonnegative(rho, "rho")

    @property
    def rho(self):
        """Weight of the hinge penalty; setting it re-uses the compiled CVXPY problem."""
        return self._rho

    @rho.setter
    def rho(self, value):
        self._rho = check_nonnegative(value, "rho")
        if self._cvxpy is not None:
            self._cvxpy.param_dict["rho"].value = self._rho

    def _cvxpy_extra(self, v, w):
        import cvxpy as cp

        features = self.design.features
        weights = self.design.counts[:, None] * np.ones((1, self.n_patterns))
        signs = self._signs()
        rho = cp.Parameter(nonneg=True, name="rho", value=self.rho)
        hinge_v = cp.sum(cp.multiply(weights, cp.pos(-cp.multiply(signs, features @ v))))
        hinge_w = cp.sum(cp.multiply(weights, cp.pos(-cp.multiply(signs, features @ w))))
        return rho * (hinge_v + hinge_w)

    def _cvxpy_constraints(self, v, w, signs, rows):
        return []

    def __repr__(self):
        return super().__repr__()[:-1] + f", rho={self.rho:g})"
