r"""Exact program (5): constrained group-lasso logistic regression.

.. math::

    \min_{v, w}\ L\Big(\sum_{i=1}^P D_i \bar X (v_i - w_i)\Big)
    + \beta \sum_{i=1}^P \big(\lVert v_i\rVert_2 + \lVert w_i\rVert_2\big)
    \quad \text{s.t.} \quad (2D_i - I)\bar X v_i \ge 0,\ (2D_i - I)\bar X w_i \ge 0.

A feasible point maps to a ReLU network with the same objective (Theorem 1 of
Gabbur et al.), so the optimum is the best ReLU network whose units follow the
sampled patterns.
"""

import numpy as np

from .base import ConvexARProblem


class ExactProblem(ConvexARProblem):
    """Exact convex program (5) with one cone constraint per pattern and distinct context.

    See :class:`~convexar_opt.problems.base.ConvexARProblem` for the parameters.

    Warnings
    --------
    Limitations: with sampled patterns the optimum is an upper bound on the best ReLU
    network with at least 2P units, not the global optimum over all networks.
    """

    program = "exact"

    def _signs(self):
        return np.where(self.masks, 1.0, -1.0)

    def _build_cvxpy(self):
        import cvxpy as cp

        design = self.design
        features = design.features
        shape = (design.n_weights, self.n_patterns)
        v = cp.Variable(shape, name="v")
        w = cp.Variable(shape, name="w")
        beta = cp.Parameter(nonneg=True, name="beta", value=self.beta)

        masks = self.masks.astype(float)
        logits = cp.sum(cp.multiply(masks, features @ (v - w)), axis=1)
        penalty = cp.sum(cp.norm(v, 2, axis=0)) + cp.sum(cp.norm(w, 2, axis=0))
        objective = self._cvxpy_loss(logits) + beta * penalty + self._cvxpy_extra(v, w)

        nonzero = np.flatnonzero(np.any(features != 0.0, axis=1))
        signs = self._signs()[nonzero]
        rows = features[nonzero]
        constraints = self._cvxpy_constraints(v, w, signs, rows)
        return cp.Problem(cp.Minimize(objective), constraints)

    def _cvxpy_extra(self, v, w):
        return 0.0

    def _cvxpy_constraints(self, v, w, signs, rows):
        import cvxpy as cp

        return [cp.multiply(signs, rows @ v) >= 0, cp.multiply(signs, rows @ w) >= 0]
