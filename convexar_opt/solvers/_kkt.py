r"""Conic form of the three programs and the Newton system of the interior-point method.

Variables: one weight block :math:`u_j \in \mathbb R^p` and one epigraph variable
:math:`t_j` per block (the P blocks :math:`z_i` of (6), or the 2P blocks
:math:`v_1..v_P, w_1..w_P` of (5) and (7)), plus hinge slacks :math:`\xi_j \in \mathbb R^{K'}`
for (7). With :math:`f(u) = L(E u)`, :math:`E = M` for (6) and :math:`E = [M, -M]` otherwise:

.. math::

    \min\ f(u) + \beta \sum_j t_j + \rho \sum_j n^\top \xi_j \quad\text{s.t.}\quad
    (t_j, u_j) \in \mathcal Q,\ \ A_j u_j (+ \xi_j) \ge 0,\ \ (\xi_j \ge 0).

The Newton matrix is :math:`\nabla^2 f + G^\top \Phi G` with :math:`\Phi = (W^\top W)^{-1}`.
The scaling terms act on one block each, so :math:`\xi_j` (diagonal) and :math:`t_j`
(scalar) are eliminated first. That leaves p x p blocks :math:`B_j` plus the loss term
:math:`E^\top H E`, :math:`H = \operatorname{diag}(n \sigma'(a) / N)` of rank at most K.
For (5) and (7), writing :math:`\Delta z = \Delta v - \Delta w` and
:math:`C_i = B_{v_i}^{-1} + B_{w_i}^{-1}` reduces the system to P blocks:
:math:`(C^{-1} + M^\top H M)\,\Delta z = C^{-1} y`. It is solved with the Woodbury
identity and one K x K Cholesky factor when K < P p, else with one P p x P p factor.
"""

import numpy as np
from scipy.linalg import LinAlgError
from scipy.linalg.lapack import dpotrf, dpotrs

from ._masked_design import MaskedDesign

# Largest relative residual of the reduced system accepted from the Woodbury solve.
_WOODBURY_TOLERANCE = 1e-9
# Extra refinement steps for the Woodbury solve, whose rounding error grows near the
# solution, before it is replaced by the dense Schur complement.
_EXTRA_WOODBURY_REFINEMENTS = 4
# Iterative refinement stops once the relative residual is below this.
_REFINED_RESIDUAL = 1e-10


class ConicForm:
    """Data of one program in the conic form above.

    Parameters
    ----------
    problem : ConvexARProblem
        The exact, relaxed or hinge problem. Its beta and rho are read once.
    """

    def __init__(self, problem):
        design = problem.design
        self.program = problem.program
        self.beta = float(problem.beta)
        self.rho = float(problem.rho)
        self.gates = problem.gates
        self.operator = MaskedDesign(design, problem.masks)
        self.n_patterns = problem.n_patterns
        self.n_weights = design.n_weights
        self.paired = self.program != "relaxed"
        self.hinge = self.program == "hinge"
        self.n_blocks = 2 * self.n_patterns if self.paired else self.n_patterns

        self.row_index = np.flatnonzero(np.any(design.features != 0.0, axis=1))
        if not self.paired:
            self.row_index = self.row_index[:0]
        self.rows = design.features[self.row_index]
        pattern_signs = np.where(problem.masks[self.row_index], 1.0, -1.0).T
        self.signs = np.vstack([pattern_signs, pattern_signs]) if self.paired else pattern_signs
        self.outer = np.einsum("ka,kb->kab", self.rows, self.rows).reshape(len(self.rows), self.n_weights**2)
        self.hinge_cost = self.rho * design.counts[self.row_index]

    @property
    def n_rows(self):
        """Number K' of cone constraints per block (the non-zero contexts)."""
        return self.rows.shape[0]

    def net_weights(self, u):
        """Return z = v - w (or u itself for the relaxed program)."""
        return u[: self.n_patterns] - u[self.n_patterns :] if self.paired else u

    def logits(self, u):
        """Return the logits E u of the contexts."""
        return self.operator.logits(self.net_weights(u))

    def loss_gradient_blocks(self, gradient):
        """Return E^T g reshaped to (n_blocks, p) for a loss gradient g over the contexts."""
        correlations = self.operator.correlations(gradient)
        return np.vstack([correlations, -correlations]) if self.paired else correlations

    def cone_map(self, u):
        """Return A_j u_j for every block, shape (n_blocks, K')."""
        return (u @ self.rows.T) * self.signs

    def cone_adjoint(self, y):
        """Return A_j^T y_j for every block, shape (n_blocks, p)."""
        return (self.signs * y) @ self.rows

    def block_grams(self, weights):
        """Return :math:`X^\\top \\operatorname{diag}(q_j) X` for every block (signs square to 1)."""
        return (weights @ self.outer).reshape(-1, self.n_weights, self.n_weights)


def _batched_inverse(blocks):
    """Return the inverses of SPD p x p blocks, with a tiny ridge where one is singular."""
    try:
        return np.linalg.inv(blocks)
    except np.linalg.LinAlgError:
        scale = np.abs(blocks).max(axis=(1, 2), keepdims=True)
        ridge = 1e-14 * np.maximum(scale, np.finfo(float).tiny) * np.eye(blocks.shape[1])
        return np.linalg.inv(blocks + ridge)


def _apply_blocks(blocks, x):
    """Return blocks[i] @ x[i] for every i."""
    return np.matmul(blocks, x[:, :, None])[:, :, 0]


def _factor(matrix):
    """Return a Cholesky factor of an SPD matrix, adding a growing ridge if it fails."""
    ridge = 0.0
    scale = max(float(np.abs(np.diag(matrix)).max()), np.finfo(float).tiny)
    diagonal = np.diag_indices(matrix.shape[0])
    for _ in range(8):
        shifted = matrix
        if ridge > 0.0:
            # Only the diagonal changes, so no identity matrix is built.
            shifted = matrix.copy()
            shifted[diagonal] += ridge
        # LAPACK is called directly because the SciPy wrappers add 5-15 us per call,
        # measured on 118 x 118 matrices, and an IPM run makes hundreds of calls.
        factor, info = dpotrf(shifted, lower=1, clean=0)
        if info == 0:
            return factor
        if info < 0:
            raise ValueError(
                f"LAPACK dpotrf reported invalid argument {-info}, which is a bug in "
                "convexar_opt's call; please report it."
            )
        ridge = max(ridge * 100.0, 1e-14 * scale)
    raise LinAlgError("the Newton matrix is not positive definite, even with a ridge")


def _cholesky_solve(factor, rhs):
    """Return x with L L^T x = rhs for the lower factor L returned by :func:`_factor`."""
    solution, info = dpotrs(factor, rhs, lower=1)
    if info != 0:
        raise ValueError(
            f"LAPACK dpotrs reported invalid argument {-info}, which is a bug in "
            "convexar_opt's call; please report it."
        )
    return solution


class NewtonSystem:
    """Factorisation of the reduced Newton matrix at one iterate.

    Parameters
    ----------
    form : ConicForm
    curvature : ndarray of shape (K,)
        Diagonal of the loss Hessian in the logits.
    soc_inverse_square : ndarray of shape (n_blocks, p + 1, p + 1)
        :math:`W^{-2}` of every second-order cone.
    cone_weights : ndarray of shape (n_blocks, K') or None
        :math:`z/s` of the cone (or hinge) constraints A u (+ xi) >= 0.
    slack_weights : ndarray of shape (n_blocks, K') or None
        :math:`z/s` of the constraints xi >= 0 (hinge program).
    woodbury : bool or None, default=None
        Force the Woodbury (True) or the dense (False) solve; None picks the cheaper.
    """

    def __init__(
        self, form, curvature, soc_inverse_square, cone_weights=None, slack_weights=None, woodbury=None
    ):
        self.form = form
        self.cone_weights = cone_weights
        self.slack_weights = slack_weights
        self.curvature = curvature
        self.root_curvature = np.sqrt(curvature)

        self.phi_tt = soc_inverse_square[:, 0, 0]
        self.phi_tu = soc_inverse_square[:, 0, 1:]
        blocks = soc_inverse_square[:, 1:, 1:] - (
            self.phi_tu[:, :, None] * self.phi_tu[:, None, :] / self.phi_tt[:, None, None]
        )
        if cone_weights is not None:
            effective = cone_weights
            if slack_weights is not None:
                effective = cone_weights * slack_weights / (cone_weights + slack_weights)
            blocks = blocks + form.block_grams(effective)
        self.blocks = blocks

        # For (5) and (7) only S = B_v + B_w is inverted: C^{-1} = B_v S^{-1} B_w.
        patterns = form.n_patterns
        if form.paired:
            self.sum_inverses = _batched_inverse(blocks[:patterns] + blocks[patterns:])
            precision = blocks[:patterns] @ (self.sum_inverses @ blocks[patterns:])
            self.precision = 0.5 * (precision + np.swapaxes(precision, 1, 2))
        else:
            self.precision = blocks

        n_contexts, width = form.operator.matrix.shape
        self.use_woodbury = n_contexts < width if woodbury is None else bool(woodbury)
        self.switched_to_dense = False
        self.residual = 0.0
        if self.use_woodbury:
            try:
                self._factor_woodbury()
            except LinAlgError:
                self._switch_to_dense()
        else:
            self._factor_dense()

    def _switch_to_dense(self):
        self.use_woodbury = False
        self.switched_to_dense = True
        self._factor_dense()

    def _factor_dense(self):
        operator = self.form.operator
        scaled = self.root_curvature[:, None] * operator.matrix
        dense = scaled.T @ scaled
        patterns, size = operator.n_patterns, operator.n_weights
        diagonal = np.arange(patterns)
        dense.reshape(patterns, size, patterns, size)[diagonal, :, diagonal, :] += self.precision
        self.factor = _factor(dense)

    def _factor_woodbury(self):
        # With C_i = L_i L_i^T and F = H^{1/2} [M_1 L_1 | ... | M_P L_P], the K x K matrix
        # I + H^{1/2} M C M^T H^{1/2} is I + F F^T (one symmetric rank-k product).
        operator = self.form.operator
        n_contexts, width = operator.matrix.shape
        # With C_i^{-1} = R_i R_i^T, L_i = R_i^{-T} factors C_i. Factoring the inverse of
        # the precision instead failed near the solution: with block eigenvalues from
        # 1e-9 to 1e3, the rounded inverse was no longer positive definite.
        root_inverse = _batched_inverse(np.linalg.cholesky(self.precision))
        self.covariance_factor = np.swapaxes(root_inverse, 1, 2)
        self.covariance = self.covariance_factor @ root_inverse

        # Writing the batched product through a (P, K, p) view of a (K, P, p) buffer
        # lays out F row by row without a separate transpose copy.
        factored = np.empty((n_contexts, operator.n_patterns, operator.n_weights))
        np.matmul(operator.pattern_blocks, self.covariance_factor, out=factored.transpose(1, 0, 2))
        factored = factored.reshape(n_contexts, width)
        factored *= self.root_curvature[:, None]
        self.factored = factored
        inner = self.factored @ self.factored.T
        inner[np.diag_indices(n_contexts)] += 1.0
        self.factor = _factor(inner)

    def _solve_coupled(self, rhs):
        """Return x with (C^{-1} + M^T H M) x = rhs, for rhs of shape (P, p)."""
        if self.use_woodbury:
            spread = _apply_blocks(self.covariance, rhs)
            projected = self.root_curvature * self.form.operator.logits(spread)
            correction = _cholesky_solve(self.factor, projected)
            pulled = (correction @ self.factored).reshape(rhs.shape)
            return spread - _apply_blocks(self.covariance_factor, pulled)
        return _cholesky_solve(self.factor, rhs.reshape(-1)).reshape(rhs.shape)

    def solve_weights(self, rhs):
        """Return du solving (B + E^T H E) du = rhs, for rhs of shape (n_blocks, p)."""
        if not self.form.paired:
            return self._solve_coupled(rhs)

        patterns = self.form.n_patterns
        rhs_v, rhs_w = rhs[:patterns], rhs[patterns:]
        blocks_v, blocks_w = self.blocks[:patterns], self.blocks[patterns:]
        share_v = _apply_blocks(self.sum_inverses, rhs_v)
        share_w = _apply_blocks(self.sum_inverses, rhs_w)
        coupled_rhs = _apply_blocks(blocks_w, share_v) - _apply_blocks(blocks_v, share_w)
        delta_z = self._solve_coupled(coupled_rhs)

        remainder = rhs_v + rhs_w - _apply_blocks(blocks_v, delta_z)
        delta_w = _apply_blocks(self.sum_inverses, remainder)
        return np.vstack([delta_w + delta_z, delta_w])

    def _refined_solve(self, rhs, refinements):
        du = self.solve_weights(rhs)
        scale = max(float(np.abs(rhs).max()), np.finfo(float).tiny)
        for step in range(refinements + 1):
            residual = rhs - self.apply_weights(du)
            self.residual = float(np.abs(residual).max()) / scale
            if self.residual < _REFINED_RESIDUAL or step == refinements:
                break
            du = du + self.solve_weights(residual)
        return du

    def apply_weights(self, du):
        """Return (B + E^T H E) du, for iterative refinement."""
        form = self.form
        result = _apply_blocks(self.blocks, du)
        return result + form.loss_gradient_blocks(self.curvature * form.logits(du))

    def solve(self, rhs_u, rhs_t, rhs_xi=None, refinements=2):
        """Solve the full Newton system for (du, dt, dxi) by block elimination.

        Up to ``refinements`` steps of iterative refinement on the reduced system
        (``_EXTRA_WOODBURY_REFINEMENTS`` more for the Woodbury solve) correct the
        rounding of the Woodbury or Schur complement solve.
        """
        form = self.form
        rhs_u = rhs_u - self.phi_tu * (rhs_t / self.phi_tt)[:, None]
        if rhs_xi is not None:
            share = self.cone_weights / (self.cone_weights + self.slack_weights)
            rhs_u = rhs_u - form.cone_adjoint(share * rhs_xi)

        if self.use_woodbury:
            refinements += _EXTRA_WOODBURY_REFINEMENTS
        du = self._refined_solve(rhs_u, refinements)
        if self.use_woodbury and self.residual > _WOODBURY_TOLERANCE:
            # The Woodbury form loses accuracy as the blocks grow ill-conditioned near
            # the solution; the dense Schur complement does not.
            self._switch_to_dense()
            du = self._refined_solve(rhs_u, refinements)

        dt = (rhs_t - np.sum(self.phi_tu * du, axis=1)) / self.phi_tt
        dxi = None
        if rhs_xi is not None:
            dxi = (rhs_xi - self.cone_weights * form.cone_map(du)) / (
                self.cone_weights + self.slack_weights
            )
        return du, dt, dxi
