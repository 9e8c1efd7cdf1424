r"""PyTorch modules of the ReLU network (NC), the gated program (6) and the hinge program (7).

All three return logits of rows with features :math:`x_k` (the context, plus a
constant 1 when the design has an intercept):

.. math::

    \text{NN:}\quad a_k = \sum_{j=1}^{m} \alpha_j (x_k^\top u_j)_+ , \qquad
    \text{PTR:}\quad a_k = \sum_{i=1}^{P} 1[x_k^\top g_i \ge 0]\, x_k^\top z_i , \qquad
    \text{PTH:}\quad a_k = \sum_{i=1}^{P} 1[x_k^\top g_i \ge 0]\, x_k^\top (v_i - w_i) ,

with fixed gate vectors :math:`g_i`. The full objective of a weighted design, in nats
per vector, is :math:`L(a) + \beta\,\mathrm{penalty}` (plus :math:`\rho\,\mathrm{hinge}`
for PTH), where :math:`L(a) = \frac1N \sum_k [n^1_k s(-a_k) + n^0_k s(a_k)]` and
:math:`s(t) = \log(1 + e^t)`. The network penalty is
:math:`\frac12 (\lVert U\rVert^2 + \lVert\alpha\rVert^2)` and the convex ones are sums
of group norms, so one :math:`\beta` serves all three models and
:func:`design_objective` equals :func:`convexar_opt.objectives.network_objective` and
:func:`convexar_opt.objectives.program_objective` at the same weights.

The modules never seed a random number generator: initial weights come from the
``generator`` argument, or from PyTorch's default generator when it is None.
"""

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_int, check_nonnegative
from .exceptions import InvalidDataError, InvalidParameterError

logger = logging.getLogger(__name__)

_FLOAT_DTYPES = (torch.float32, torch.float64)


def _check_dtype(dtype):
    if dtype not in _FLOAT_DTYPES:
        raise InvalidParameterError(
            f"dtype must be torch.float32 or torch.float64; got {dtype!r}."
        )
    return dtype


def _as_float64_array(values):
    if torch.is_tensor(values):
        values = values.detach().cpu()
    return np.asarray(values, dtype=np.float64)


def _as_matrix(values, name, dtype, device, rows="n_patterns"):
    """Return ``values`` as a finite 2-D tensor, raising InvalidDataError otherwise."""
    array = _as_float64_array(values)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidDataError(
            f"{name} must be a non-empty 2-D array of shape ({rows}, n_weights); "
            f"got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise InvalidDataError(
            f"{name} must be finite, but it contains NaN or infinite entries."
        )
    return torch.as_tensor(array, dtype=dtype, device=device)


def _check_features(features, n_weights):
    if features.ndim != 2 or features.shape[1] != n_weights:
        raise InvalidDataError(
            f"features must have shape (n_rows, {n_weights}) to match the weights; got "
            f"{tuple(features.shape)}. Build them from a design with the same window and "
            "intercept setting as the model."
        )


def _check_masks(masks, n_rows, n_patterns):
    if masks.shape != (n_rows, n_patterns):
        raise InvalidDataError(
            f"masks must have shape ({n_rows}, {n_patterns}), one column per gate; got "
            f"{tuple(masks.shape)}."
        )


def _uniform(shape, bound, dtype, device, generator):
    """Draw from U(-bound, bound) on the generator's device, then move to ``device``."""
    draw_device = generator.device if generator is not None else device
    sample = torch.rand(shape, generator=generator, dtype=dtype, device=draw_device)
    return ((2.0 * sample - 1.0) * bound).to(device)


class TwoLayerReLUAR(nn.Module):
    r"""Two-layer ReLU network that maps a context to one logit, without output bias.

    The logit of a row with features :math:`x` is :math:`\sum_j \alpha_j (x^\top u_j)_+`,
    and the penalty is :math:`\frac12 (\lVert U\rVert_F^2 + \lVert\alpha\rVert^2)`, so
    :math:`L + \beta \cdot \mathrm{penalty}` is the non-convex objective (NC).

    Parameters
    ----------
    n_weights : int
        Number p of features: the window, plus 1 when the design has an intercept.
    hidden_units : int
        Number m of hidden ReLU units.
    dtype : torch.dtype, default=torch.float64
        torch.float32 or torch.float64.
    device : torch.device, str or None, default=None
        Device of the parameters. None means the CPU.
    generator : torch.Generator or None, default=None
        Source of the initial weights. Both layers start as PyTorch's default
        ``nn.Linear`` does: :math:`U \sim \mathcal U(\pm 1/\sqrt{p})` and
        :math:`\alpha \sim \mathcal U(\pm 1/\sqrt{m})`.

    Attributes
    ----------
    U : torch.nn.Parameter of shape (hidden_units, n_weights)
        Input weights :math:`u_j`, one row per unit.
    alpha : torch.nn.Parameter of shape (hidden_units,)
        Output weights :math:`\alpha_j`.
    """

    def __init__(
        self, n_weights, hidden_units, *, dtype=torch.float64, device=None, generator=None
    ):
        super().__init__()
        n_weights = check_int(n_weights, "n_weights", 1)
        hidden_units = check_int(
            hidden_units, "hidden_units", 1, hint=" Use at least one hidden unit."
        )
        dtype = _check_dtype(dtype)

        input_bound = 1.0 / math.sqrt(n_weights)
        output_bound = 1.0 / math.sqrt(hidden_units)
        U = _uniform((hidden_units, n_weights), input_bound, dtype, device, generator)
        alpha = _uniform((hidden_units,), output_bound, dtype, device, generator)
        self.U = nn.Parameter(U)
        self.alpha = nn.Parameter(alpha)

    @classmethod
    def from_weights(cls, U, alpha, *, dtype=torch.float64, device=None):
        """Build a network with given weights, for example one reconstructed from a convex solution.

        Parameters
        ----------
        U : array-like of shape (hidden_units, n_weights)
        alpha : array-like of shape (hidden_units,)
        dtype : torch.dtype, default=torch.float64
        device : torch.device, str or None, default=None

        Returns
        -------
        TwoLayerReLUAR
        """
        U = _as_matrix(U, "U", dtype, device, rows="hidden_units")
        alpha_array = _as_float64_array(alpha)
        if alpha_array.shape != (U.shape[0],):
            raise InvalidDataError(
                f"alpha must have shape ({U.shape[0]},), one entry per row of U; got "
                f"{alpha_array.shape}."
            )
        if not np.all(np.isfinite(alpha_array)):
            raise InvalidDataError("alpha must be finite, but it contains NaN or infinite entries.")

        # A private generator keeps PyTorch's default one untouched by the throwaway draw.
        network = cls(
            U.shape[1],
            U.shape[0],
            dtype=_check_dtype(dtype),
            device=device,
            generator=torch.Generator(),
        )
        with torch.no_grad():
            network.U.copy_(U)
            network.alpha.copy_(torch.as_tensor(alpha_array, dtype=dtype, device=device))
        return network

    @property
    def n_weights(self):
        """Number p of features of a row."""
        return self.U.shape[1]

    def forward(self, features):
        """Return the logits ``relu(features @ U.T) @ alpha`` of shape (n_rows,)."""
        _check_features(features, self.n_weights)
        return torch.relu(features @ self.U.T) @ self.alpha

    def penalty(self):
        r"""Return :math:`\frac12 (\lVert U\rVert^2 + \lVert\alpha\rVert^2)` as a scalar tensor."""
        return 0.5 * (self.U.square().sum() + self.alpha.square().sum())

    def numpy_weights(self):
        """Return ``{"U", "alpha"}`` as NumPy float64 arrays."""
        return {
            "U": self.U.detach().cpu().to(torch.float64).numpy().copy(),
            "alpha": self.alpha.detach().cpu().to(torch.float64).numpy().copy(),
        }


class _GatedModule(nn.Module):
    """Shared part of the gated models: the gate buffer and the masks it induces."""

    def __init__(self, gates, dtype, device):
        super().__init__()
        dtype = _check_dtype(dtype)
        self.register_buffer("gates", _as_matrix(gates, "gates", dtype, device))

    @property
    def n_patterns(self):
        """Number P of gates."""
        return self.gates.shape[0]

    @property
    def n_weights(self):
        """Number p of features of a row."""
        return self.gates.shape[1]

    def masks(self, features):
        """Return the boolean masks ``features @ gates.T >= 0`` of shape (n_rows, n_patterns)."""
        # NOTE: a float32 module rounds the gates, so a row with x^T g_i within rounding
        # error of 0 can get another mask than in float64. Pass float64 masks to forward
        # (as train_sgd does) when that matters.
        _check_features(features, self.n_weights)
        return features @ self.gates.T >= 0.0

    def _resolve_masks(self, features, masks):
        if masks is None:
            return self.masks(features)
        _check_features(features, self.n_weights)
        _check_masks(masks, features.shape[0], self.n_patterns)
        return masks

    def _gated(self, features, weights, masks):
        return ((features @ weights.T) * masks.to(weights.dtype)).sum(dim=1)


class GatedAR(_GatedModule):
    r"""Gated ReLU model of the relaxed program (6), with weights :math:`z_i` starting at 0.

    The logit of a row is :math:`\sum_i 1[x^\top g_i \ge 0]\, x^\top z_i` and the penalty
    is :math:`\sum_i \lVert z_i\rVert`, so :math:`L + \beta \cdot \mathrm{penalty}` is
    the objective of (6).

    Parameters
    ----------
    gates : array-like of shape (n_patterns, n_weights)
        Gate vectors :math:`g_i`, kept fixed, for example from
        :func:`convexar_opt.patterns.sample_gates`.
    dtype : torch.dtype, default=torch.float64
    device : torch.device, str or None, default=None

    Attributes
    ----------
    gates : torch.Tensor of shape (n_patterns, n_weights)
        Buffer with the gate vectors.
    z : torch.nn.Parameter of shape (n_patterns, n_weights)
        Weights of the local linear models.
    """

    def __init__(self, gates, *, dtype=torch.float64, device=None):
        super().__init__(gates, dtype, device)
        self.z = nn.Parameter(torch.zeros_like(self.gates))

    @classmethod
    def from_weights(cls, gates, z, *, dtype=torch.float64, device=None):
        """Build a gated model with given gates and weights ``z`` of the same shape."""
        model = cls(gates, dtype=dtype, device=device)
        z = _as_matrix(z, "z", dtype, device)
        if z.shape != model.gates.shape:
            raise InvalidDataError(
                f"z must have the shape of the gates, {tuple(model.gates.shape)}, but "
                f"got {tuple(z.shape)}."
            )
        with torch.no_grad():
            model.z.copy_(z)
        return model

    def forward(self, features, masks=None):
        """Return the gated logits of shape (n_rows,).

        Parameters
        ----------
        features : torch.Tensor of shape (n_rows, n_weights)
        masks : torch.Tensor of shape (n_rows, n_patterns) or None, default=None
            Precomputed boolean masks of these rows. None computes them from the gates.
        """
        return self._gated(features, self.z, self._resolve_masks(features, masks))

    def penalty(self):
        r"""Return :math:`\sum_i \lVert z_i\rVert` as a scalar tensor."""
        return torch.linalg.vector_norm(self.z, dim=1).sum()

    def numpy_weights(self):
        """Return ``{"v": z, "w": 0}`` as NumPy float64 arrays, the layout of the convex solvers."""
        z = self.z.detach().cpu().to(torch.float64).numpy().copy()
        return {"v": z, "w": np.zeros_like(z)}


class HingeAR(_GatedModule):
    r"""Gated model of the hinge program (7), with weights :math:`v_i, w_i` starting at 0.

    The logit of a row is :math:`\sum_i 1[x^\top g_i \ge 0]\, x^\top (v_i - w_i)`, the
    penalty is :math:`\sum_i \lVert v_i\rVert + \lVert w_i\rVert` and :meth:`hinge`
    measures the violation of the cone constraints :math:`A_i v_i \ge 0`,
    :math:`A_i w_i \ge 0` with :math:`A_i = (2 D_i - I) X`. The objective of (7) is
    :math:`L + \beta \cdot \mathrm{penalty} + \rho \cdot \mathrm{hinge}`.

    Parameters
    ----------
    gates : array-like of shape (n_patterns, n_weights)
        Gate vectors :math:`g_i`, kept fixed.
    dtype : torch.dtype, default=torch.float64
    device : torch.device, str or None, default=None

    Attributes
    ----------
    gates : torch.Tensor of shape (n_patterns, n_weights)
        Buffer with the gate vectors.
    v, w : torch.nn.Parameter of shape (n_patterns, n_weights)
        Weights of the positive and the negative units of each pattern.
    """

    def __init__(self, gates, *, dtype=torch.float64, device=None):
        super().__init__(gates, dtype, device)
        self.v = nn.Parameter(torch.zeros_like(self.gates))
        self.w = nn.Parameter(torch.zeros_like(self.gates))

    @classmethod
    def from_weights(cls, gates, v, w, *, dtype=torch.float64, device=None):
        """Build a hinge model with given gates and weights ``v``, ``w`` of the same shape."""
        model = cls(gates, dtype=dtype, device=device)
        v = _as_matrix(v, "v", dtype, device)
        w = _as_matrix(w, "w", dtype, device)
        for name, weights in (("v", v), ("w", w)):
            if weights.shape != model.gates.shape:
                raise InvalidDataError(
                    f"{name} must have the shape of the gates, {tuple(model.gates.shape)}, "
                    f"but got {tuple(weights.shape)}."
                )
        with torch.no_grad():
            model.v.copy_(v)
            model.w.copy_(w)
        return model

    def forward(self, features, masks=None):
        """Return the gated logits of ``v - w``, shape (n_rows,); see :meth:`GatedAR.forward`."""
        masks = self._resolve_masks(features, masks)
        return self._gated(features, self.v - self.w, masks)

    def penalty(self):
        r"""Return :math:`\sum_i \lVert v_i\rVert + \lVert w_i\rVert` as a scalar tensor."""
        norms_v = torch.linalg.vector_norm(self.v, dim=1)
        norms_w = torch.linalg.vector_norm(self.w, dim=1)
        return norms_v.sum() + norms_w.sum()

    def hinge(self, features, counts, masks=None):
        r"""Return :math:`\sum_{i,k} n_k [(-(A_i v_i)_k)_+ + (-(A_i w_i)_k)_+]` as a scalar tensor.

        Parameters
        ----------
        features : torch.Tensor of shape (n_rows, n_weights)
        counts : torch.Tensor of shape (n_rows,)
            Weight :math:`n_k` of each row, 1 for a raw row.
        masks : torch.Tensor of shape (n_rows, n_patterns) or None, default=None
            Precomputed boolean masks. None computes them from the gates.
        """
        masks = self._resolve_masks(features, masks)
        if counts.shape != (features.shape[0],):
            raise InvalidDataError(
                f"counts must have shape ({features.shape[0]},), one entry per row; got "
                f"{tuple(counts.shape)}."
            )

        signs = masks.to(self.v.dtype) * 2.0 - 1.0
        violation_v = torch.relu(-signs * (features @ self.v.T))
        violation_w = torch.relu(-signs * (features @ self.w.T))
        return (counts[:, None] * (violation_v + violation_w)).sum()

    def numpy_weights(self):
        """Return ``{"v", "w"}`` as NumPy float64 arrays."""
        return {
            "v": self.v.detach().cpu().to(torch.float64).numpy().copy(),
            "w": self.w.detach().cpu().to(torch.float64).numpy().copy(),
        }


def weighted_nll(logits, ones, zeros):
    r"""Return :math:`\sum_k n^1_k s(-a_k) + n^0_k s(a_k)` in nats, a scalar tensor.

    Computed by ``F.binary_cross_entropy_with_logits`` with the counts as weights, so
    logits of +-800 give finite, correct values and gradients.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_rows,)
    ones, zeros : torch.Tensor of shape (n_rows,)
        How often each row has target 1 and target 0.
    """
    if ones.shape != logits.shape or zeros.shape != logits.shape:
        raise InvalidDataError(
            f"ones and zeros must have the shape of the logits, {tuple(logits.shape)}; got "
            f"{tuple(ones.shape)} and {tuple(zeros.shape)}."
        )
    positive = F.binary_cross_entropy_with_logits(
        logits, torch.ones_like(logits), weight=ones, reduction="sum"
    )
    negative = F.binary_cross_entropy_with_logits(
        logits, torch.zeros_like(logits), weight=zeros, reduction="sum"
    )
    return positive + negative


def module_dtype_device(module):
    """Return the dtype and device of the module's first parameter."""
    parameter = next(module.parameters())
    return parameter.dtype, parameter.device


def design_tensors(design, dtype=torch.float64, device=None):
    """Return the design's ``features``, ``ones``, ``zeros`` and ``counts`` as tensors.

    Parameters
    ----------
    design : WeightedDesign
    dtype : torch.dtype, default=torch.float64
    device : torch.device, str or None, default=None

    Returns
    -------
    dict of str to torch.Tensor
        ``features`` of shape (n_contexts, n_weights) and the three count vectors of
        shape (n_contexts,).
    """
    return {
        "features": torch.as_tensor(design.features, dtype=dtype, device=device),
        "ones": torch.as_tensor(design.ones, dtype=dtype, device=device),
        "zeros": torch.as_tensor(design.zeros, dtype=dtype, device=device),
        "counts": torch.as_tensor(design.counts, dtype=dtype, device=device),
    }


def _check_module(module):
    if not isinstance(module, (TwoLayerReLUAR, GatedAR, HingeAR)):
        raise InvalidParameterError(
            "module must be a TwoLayerReLUAR, GatedAR or HingeAR; got "
            f"{type(module).__name__}."
        )


def design_nll(module, design):
    """Return the negative log-likelihood :math:`L(a)` of a design in nats per vector.

    Parameters
    ----------
    module : TwoLayerReLUAR, GatedAR or HingeAR
    design : WeightedDesign
        Built with the window and intercept setting the module was trained on.

    Returns
    -------
    torch.Tensor
        Scalar in the module's dtype.
    """
    _check_module(module)
    dtype, device = module_dtype_device(module)
    tensors = design_tensors(design, dtype, device)
    logits = module(tensors["features"])
    return weighted_nll(logits, tensors["ones"], tensors["zeros"]) / design.n_vectors


def design_objective(module, design, beta, rho=0.0):
    r"""Return the full objective of a design in nats per vector, as a scalar tensor.

    The value is ``weighted_nll / design.n_vectors + beta * module.penalty()``, plus
    ``rho * module.hinge(...)`` with the design's counts for :class:`HingeAR`. For
    :class:`TwoLayerReLUAR` this is (NC) with :math:`\frac\beta2 (\lVert u\rVert^2 +
    \alpha^2)`, the same :math:`\beta` as in the convex programs.

    Parameters
    ----------
    module : TwoLayerReLUAR, GatedAR or HingeAR
    design : WeightedDesign
    beta : float
        Weight of the penalty, >= 0.
    rho : float, default=0.0
        Weight of the hinge term, >= 0. Only :class:`HingeAR` has one.

    Raises
    ------
    InvalidParameterError
        If beta or rho is negative or not finite, or rho > 0 for a model without a
        hinge term.
    """
    _check_module(module)
    beta = check_nonnegative(beta, "beta")
    rho = check_nonnegative(rho, "rho")
    if rho > 0.0 and not isinstance(module, HingeAR):
        raise InvalidParameterError(
            f"rho = {rho} applies only to HingeAR, but the module is a "
            f"{type(module).__name__}. Pass rho=0 for this model."
        )

    dtype, device = module_dtype_device(module)
    tensors = design_tensors(design, dtype, device)
    features = tensors["features"]

    logits = module(features)
    value = weighted_nll(logits, tensors["ones"], tensors["zeros"]) / design.n_vectors
    value = value + beta * module.penalty()
    if isinstance(module, HingeAR):
        value = value + rho * module.hinge(features, tensors["counts"])
    return value
