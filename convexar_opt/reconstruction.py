r"""ReLU networks from convex solutions and back (Theorem 1 of Gabbur et al.).

A block :math:`v_i \ne 0` of a solution of the exact program (5) becomes the hidden
unit :math:`(u, \alpha) = (v_i / \sqrt{\lVert v_i\rVert}, +\sqrt{\lVert v_i\rVert})` and a
block :math:`w_i \ne 0` the unit :math:`(w_i / \sqrt{\lVert w_i\rVert}, -\sqrt{\lVert w_i\rVert})`.
When :math:`(v, w)` is feasible for (5), :math:`(\bar X u)_+ = D_i \bar X u` for every unit,
so the network

.. math::

    a(x) = \sum_j \alpha_j (x^\top u_j)_+, \qquad
    L(a) + \frac\beta2 \sum_j \big(\lVert u_j\rVert^2 + \alpha_j^2\big)

has the same logits and the same objective as the convex point (Lemma A), whatever
the masks. Conversely, a network whose units all lie in the closed cones
:math:`\{u : (2D_i - I)\bar X u \ge 0\}` of the mask set maps to a feasible point of (5)
with an objective no larger than the network's (Lemma B). With every activation
pattern (:func:`convexar_opt.patterns.enumerate_patterns`) this holds for every
network, so the optimum of (5) is the global optimum of the network.
"""

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ._validation import check_nonnegative
from .certificates import project_to_cones
from .exceptions import InvalidDataError, InvalidParameterError
from .objectives import constraint_violation, program_objective
from .objectives import network_objective as _numpy_network_objective
from .patterns import gate_masks

logger = logging.getLogger(__name__)

# Lemma B accepts a unit for a pattern when its worst cone residual is at most this
# fraction of |u| times the largest row norm (rounding of x^T u near a hyperplane).
_ASSIGNMENT_TOLERANCE = 1e-10
# The cone decomposition scales its shift by this factor, so that rounding cannot
# leave a binding row slightly negative.
_SHIFT_MARGIN = 1.0 + 1e-9


@dataclass(frozen=True)
class ReLUNetwork:
    r"""Two-layer ReLU network :math:`a(x) = \sum_j \alpha_j (x^\top u_j)_+` without output bias.

    Attributes
    ----------
    U : ndarray of shape (hidden_units, n_weights)
        Input weights :math:`u_j`, one row per unit. A design with an intercept has a
        constant last feature, so the last column is then the unit's bias.
    alpha : ndarray of shape (hidden_units,)
        Output weights :math:`\alpha_j`.
    """

    U: np.ndarray
    alpha: np.ndarray

    @property
    def hidden_units(self):
        """Number m of hidden units."""
        return self.U.shape[0]

    def logits(self, features):
        """Return the logits ``relu(features @ U.T) @ alpha`` of shape (n_rows,)."""
        features = np.asarray(features, dtype=np.float64)
        return np.maximum(features @ self.U.T, 0.0) @ self.alpha

    def objective(self, design, beta):
        """Return the non-convex objective (NC) on a design, in nats per vector."""
        return network_objective(self, design, beta)


def _check_blocks(v, w):
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2:
        raise InvalidDataError(
            f"v must have shape (n_patterns, n_weights); got shape {v.shape}."
        )
    w = np.zeros_like(v) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != v.shape:
        raise InvalidDataError(f"v and w must have the same shape; got {v.shape} and {w.shape}.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
        raise InvalidDataError("v and w must be finite; they contain NaN or infinite entries.")
    return v, w


def reconstruct_network(v, w=None, tol=0.0):
    r"""Build the ReLU network of a convex point, one unit per non-zero block.

    Parameters
    ----------
    v, w : array-like of shape (n_patterns, n_weights)
        Blocks of a point of the exact (5) or hinge (7) program. For the relaxed
        program pass ``v = z`` and ``w = None``.
    tol : float, default=0.0
        Blocks with a norm at most ``tol`` create no unit.

    Returns
    -------
    ReLUNetwork
        Units from the ``v`` blocks (:math:`\alpha > 0`) first, then from the ``w``
        blocks (:math:`\alpha < 0`), each in pattern order. Its objective equals the
        program's objective when (v, w) is feasible for (5) and ``tol`` is 0.
    """
    v, w = _check_blocks(v, w)
    tol = check_nonnegative(tol, "tol")

    units = []
    outputs = []
    for blocks, sign in ((v, 1.0), (w, -1.0)):
        norms = np.linalg.norm(blocks, axis=1)
        keep = (norms > tol) & (norms > 0.0)
        scale = np.sqrt(norms[keep])
        units.append(blocks[keep] / scale[:, None])
        outputs.append(sign * scale)

    return ReLUNetwork(U=np.vstack(units), alpha=np.concatenate(outputs))


def network_objective(network, design, beta):
    r"""Return :math:`L(\sum_j \alpha_j (\bar X u_j)_+) + \frac\beta2 \sum_j (\lVert u_j\rVert^2 + \alpha_j^2)` with NumPy."""
    return _numpy_network_objective(design, network.U, network.alpha, beta)


def to_torch(network, *, dtype=None, device=None):
    """Return the network as a ``convexar_opt.torch_model.TwoLayerReLUAR`` module.

    Parameters
    ----------
    network : ReLUNetwork
    dtype : torch.dtype or None, default=None
        None means torch.float64.
    device : torch.device, str or None, default=None
    """
    import torch

    from .torch_model import TwoLayerReLUAR

    dtype = torch.float64 if dtype is None else dtype
    return TwoLayerReLUAR.from_weights(network.U, network.alpha, dtype=dtype, device=device)


def torch_network_objective(network, design, beta):
    """Return the network's objective computed by the PyTorch model in float64, as a float.

    Raises
    ------
    InvalidParameterError
        If the network has no unit (the PyTorch model needs at least one).
    """
    from .torch_model import design_objective

    if network.hidden_units == 0:
        raise InvalidParameterError(
            "the network has no hidden unit, and TwoLayerReLUAR needs at least one. Its "
            "objective is that of the zero model; use network_objective instead."
        )
    module = to_torch(network)
    return float(design_objective(module, design, beta).detach().cpu())


def _resolve_masks(design, gates_or_masks):
    array = np.asarray(gates_or_masks)
    if array.dtype == bool:
        if array.ndim != 2 or array.shape[0] != design.n_contexts:
            raise InvalidDataError(
                f"masks must have shape (n_contexts={design.n_contexts}, n_patterns); got "
                f"{array.shape}."
            )
        return array
    return gate_masks(design.features, array)


def network_to_convex(U, alpha, design, gates_or_masks):
    r"""Map a ReLU network to a feasible point of the exact program (5) (Lemma B).

    Unit :math:`j` goes to a pattern :math:`i(j)` whose closed cone contains
    :math:`u_j`. Then :math:`v_i = \sum_{i(j)=i,\ \alpha_j>0} \alpha_j u_j` and
    :math:`w_i = \sum_{i(j)=i,\ \alpha_j<0} |\alpha_j| u_j` give the same logits, and
    the (5) objective at (v, w) is at most the network's objective. Every unit has
    such a pattern when the masks contain every activation pattern of the design
    (see :func:`convexar_opt.patterns.enumerate_patterns`).

    Parameters
    ----------
    U : array-like of shape (hidden_units, n_weights)
    alpha : array-like of shape (hidden_units,)
    design : WeightedDesign
        The design the network is evaluated on.
    gates_or_masks : array-like
        Float gates of shape (n_patterns, n_weights), or boolean masks of shape
        (n_contexts, n_patterns).

    Returns
    -------
    v, w : ndarray of shape (n_patterns, n_weights)

    Raises
    ------
    InvalidParameterError
        If a unit's activation pattern is not among the masks; the message names the
        unit and its smallest cone violation.
    """
    features = design.features
    U = np.asarray(U, dtype=np.float64).reshape(-1, design.n_weights)
    alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
    if alpha.shape[0] != U.shape[0]:
        raise InvalidDataError(
            f"alpha must have one entry per row of U ({U.shape[0]}); got {alpha.shape[0]}."
        )
    masks = _resolve_masks(design, gates_or_masks)
    signs = np.where(masks, 1.0, -1.0)
    largest_row = float(np.linalg.norm(features, axis=1).max())

    v = np.zeros((masks.shape[1], design.n_weights))
    w = np.zeros_like(v)
    for j in range(U.shape[0]):
        if alpha[j] == 0.0 or not np.any(U[j]):
            continue

        # Worst residual of (2 D_i - I) X u_j over the rows, for every pattern i.
        violations = np.maximum(-(signs * (features @ U[j])[:, None]).min(axis=0), 0.0)
        pattern = int(np.argmin(violations))
        allowed = _ASSIGNMENT_TOLERANCE * np.linalg.norm(U[j]) * largest_row
        if violations[pattern] > allowed:
            raise InvalidParameterError(
                f"unit {j} has an activation pattern that is not among the "
                f"{masks.shape[1]} masks (smallest cone violation "
                f"{violations[pattern]:.3g}). Lemma B needs every pattern: use the gates "
                "of enumerate_patterns(design.features)."
            )

        if alpha[j] > 0.0:
            v[pattern] += alpha[j] * U[j]
        else:
            w[pattern] -= alpha[j] * U[j]
    return v, w


def cone_decomposition(design, gates, z):
    r"""Split relaxed weights z into a feasible point (v, w) of (5) with the same logits.

    With an interior gate :math:`g_i` (:math:`A_i g_i > 0` on every non-zero row,
    :math:`A_i = (2D_i - I)\bar X`), :math:`v_i = z_i + t_i g_i` and
    :math:`w_i = t_i g_i` with
    :math:`t_i = \max(0, \max_k -(A_i z_i)_k / (A_i g_i)_k)` lie in the cone, and
    :math:`v_i - w_i = z_i`. The (5) objective of this point is therefore an upper
    bound on the optimum of (5); it is usually loose because the norms grow.

    Parameters
    ----------
    design : WeightedDesign
    gates : array-like of shape (n_patterns, n_weights)
        The gates that define the masks of ``z``.
    z : array-like of shape (n_patterns, n_weights)

    Returns
    -------
    v, w : ndarray of shape (n_patterns, n_weights)

    Raises
    ------
    InvalidParameterError
        If a gate lies on the hyperplane of a row where its block ``z_i`` violates
        the cone, so no shift along that gate restores feasibility.
    """
    features = design.features
    gates = np.asarray(gates, dtype=np.float64)
    z, _ = _check_blocks(z, None)
    masks = gate_masks(features, gates)
    signs = np.where(masks, 1.0, -1.0)

    signed_z = signs * (features @ z.T)
    signed_gates = signs * (features @ gates.T)
    shifts = np.zeros(gates.shape[0])
    for i in range(gates.shape[0]):
        violated = signed_z[:, i] < 0.0
        if not np.any(violated):
            continue
        if np.any(signed_gates[violated, i] <= 0.0):
            raise InvalidParameterError(
                f"gate {i} is not interior to its cone on a row where z[{i}] violates "
                "it, so the cone decomposition does not exist. Use interior gates, for "
                "example from sample_gates or enumerate_patterns."
            )
        ratios = -signed_z[violated, i] / signed_gates[violated, i]
        shifts[i] = _SHIFT_MARGIN * float(ratios.max())

    w = shifts[:, None] * gates
    return z + w, w


@dataclass(frozen=True)
class ReconstructionReport:
    """Comparison of a solved convex program with its reconstructed ReLU network.

    Attributes
    ----------
    program : str
        ``'exact'``, ``'relaxed'`` or ``'hinge'``.
    convex_objective : float
        The program's objective at the reconstructed point, in nats per vector.
    network_objective : float
        The ReLU network's objective (NC) computed with NumPy.
    network_objective_torch : float or None
        The same computed by ``TwoLayerReLUAR`` in float64; None if not requested or
        the network has no unit.
    difference : float
        ``network_objective - convex_objective``; 0 up to rounding for a feasible point
        of (5).
    constraint_violation : float
        Largest cone violation of the solution before any projection.
    projected : bool
        Whether the exact program's solution was projected onto its cones first.
    hidden_units : int
        Number of units of the network.
    decomposition_objective, decomposition_violation : float or None
        Relaxed program only: the (5) objective and cone violation of the cone
        decomposition, a feasible point of (5) with the same gated logits.
    """

    program: str
    convex_objective: float
    network_objective: float
    network_objective_torch: float | None
    difference: float
    constraint_violation: float
    projected: bool
    hidden_units: int
    decomposition_objective: float | None = None
    decomposition_violation: float | None = None

    def to_dict(self):
        """Return the fields as a JSON-ready dict."""
        return asdict(self)


def check_reconstruction(problem, *, tol=0.0, project=True, include_torch=True):
    """Compare a solved convex program with the ReLU network built from its solution.

    For the exact program (5) the network's objective equals the convex objective
    (up to rounding, after projecting a slightly infeasible solver point onto the
    cones). The relaxed program (6) is the convex form of a *gated* ReLU network, in
    which unit :math:`i` is on where :math:`x^\\top g_i \\ge 0` for a fixed gate. The
    plain ReLU network built from its weights is a different model, so its objective
    usually differs. For (6) the report therefore adds the cone decomposition of the
    weights, a feasible point of (5) whose objective bounds the optimum of (5) from
    above. A hinge (7) solution may violate the cones where the hinge is active, and
    then its network differs too.

    Parameters
    ----------
    problem : ExactProblem, RelaxedProblem or HingeProblem
        A solved problem.
    tol : float, default=0.0
        Blocks with a norm at most ``tol`` create no unit.
    project : bool, default=True
        Project an infeasible solution of the exact program onto its cones before
        building the network.
    include_torch : bool, default=True
        Also evaluate the network with the PyTorch model.

    Returns
    -------
    ReconstructionReport
    """
    design = problem.design
    masks = problem.masks
    solution = problem.solution
    v, w = solution.v, solution.w
    if problem.program == "relaxed":
        v, w = solution.z, np.zeros_like(solution.v)

    violation = constraint_violation(design.features, masks, v, w)
    projected = False
    if problem.program == "exact" and project and violation > 0.0:
        v = project_to_cones(design, masks, v)
        w = project_to_cones(design, masks, w)
        projected = True

    convex = program_objective(problem.program, design, masks, v, w, problem.beta, problem.rho)
    network = reconstruct_network(v, w, tol=tol)
    numpy_value = network_objective(network, design, problem.beta)
    torch_value = None
    if include_torch and network.hidden_units > 0:
        torch_value = torch_network_objective(network, design, problem.beta)

    decomposition_value = None
    decomposition_violation = None
    if problem.program == "relaxed":
        split_v, split_w = cone_decomposition(design, problem.gates, v)
        decomposition_value = program_objective("exact", design, masks, split_v, split_w, problem.beta)
        decomposition_violation = constraint_violation(design.features, masks, split_v, split_w)

    report = ReconstructionReport(
        program=problem.program,
        convex_objective=float(convex),
        network_objective=float(numpy_value),
        network_objective_torch=torch_value,
        difference=float(numpy_value - convex),
        constraint_violation=violation,
        projected=projected,
        hidden_units=network.hidden_units,
        decomposition_objective=decomposition_value,
        decomposition_violation=decomposition_violation,
    )
    logger.info("reconstruction of %r: %s", problem, report)
    return report
