r"""Relaxed program (6): group-lasso logistic regression on the sampled patterns.

.. math::

    \min_{z_1..z_P}\ L\Big(\sum_{i=1}^P D_i \bar X z_i\Big) + \beta \sum_{i=1}^P \lVert z_i\rVert_2

It is the exact program (5) without its cone constraints, written in :math:`z = v - w`
because the split is redundant without them.
"""

from .base import ConvexARProblem


class RelaxedProblem(ConvexARProblem):
    r"""Relaxed convex program (6), the convex form of a gated ReLU network.

    See :class:`~convexar_opt.problems.base.ConvexARProblem` for the parameters.

    Warnings
    --------
    Limitations: a solution is the global optimum of a gated ReLU network with the fixed
    gates, not of a ReLU network; its weights usually violate the cone constraints of
    the exact program (``certificate.constraint_violation`` measures by how much).
    """

    program = "relaxed"

    def _build_cvxpy(self):
        import cvxpy as cp

        design = self.design
        features = design.features
        z = cp.Variable((design.n_weights, self.n_patterns), name="v")
        beta = cp.Parameter(nonneg=True, name="beta", value=self.beta)

        logits = cp.sum(cp.multiply(self.masks.astype(float), features @ z), axis=1)
        objective = self._cvxpy_loss(logits) + beta * cp.sum(cp.norm(z, 2, axis=0))
        return cp.Problem(cp.Minimize(objective))
