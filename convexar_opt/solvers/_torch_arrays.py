r"""FISTA's array operations on PyTorch float64 tensors, for a GPU.

The masked design :math:`M` (K x P p), the counts and the prior of the relaxed
program's certificate are copied to the device once. Every iteration and every
certificate check then runs there, and only the best point comes back to NumPy.
The gap computed on the device is the bound of
:func:`convexar_opt.certificates.certify` for the relaxed program, written with
torch functions; the solver certifies its returned point again with NumPy.

NOTE: only the CPU device has been run. There the iterations and gaps equal NumPy's,
and each iteration takes about twice as long. The CUDA path is the same code, not yet
run on a GPU.
"""

import re

import numpy as np

from .._devices import torch_device
from ..certificates import context_prior
from ..exceptions import InvalidParameterError


def fista_device(name):
    """Return the ``torch.device`` of FISTA's ``device`` option.

    Only CPU and CUDA devices are accepted: FISTA runs in float64, and other device
    types were not checked for it.
    """
    accepted = isinstance(name, str) and (
        name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name) is not None
    )
    if not accepted:
        raise InvalidParameterError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {name!r}. Leave it "
            "unset to run on NumPy."
        )
    return torch_device(name)


class TorchArrays:
    """FISTA's array operations on float64 tensors on one device.

    Parameters
    ----------
    operator : MaskedDesign
        The masked design to copy to the device.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        Where the tensors live; ``"auto"`` picks CUDA when available.
    """

    def __init__(self, operator, device):
        import torch

        self.torch = torch
        self.device = fista_device(device)
        design = operator.design

        def tensor(array):
            return torch.as_tensor(np.asarray(array, dtype=np.float64), device=self.device)

        self.shape = (operator.n_patterns, operator.n_weights)
        self.matrix = tensor(operator.matrix)
        self.counts = tensor(design.counts)
        self.ones = tensor(design.ones)
        self.zeros = tensor(design.zeros)
        self.prior = tensor(context_prior(design))
        self.n_vectors = float(operator.n_vectors)

    def start(self, z):
        """Return the starting point as a tensor on the device."""
        return self.torch.tensor(np.asarray(z, dtype=np.float64), device=self.device)

    @staticmethod
    def result(z):
        """Return ``z`` as a NumPy array."""
        return z.detach().cpu().numpy()

    @staticmethod
    def copy(z):
        """Return a copy of ``z``."""
        return z.clone()

    def _logits(self, z):
        return self.matrix @ z.reshape(-1)

    def _correlations(self, gradient):
        return (gradient @ self.matrix).reshape(self.shape)

    def _loss_gradient(self, logits):
        return (self.counts * self.torch.sigmoid(logits) - self.ones) / self.n_vectors

    def gradient(self, z):
        """Return the loss gradient in z, shape (n_patterns, n_weights)."""
        return self._correlations(self._loss_gradient(self._logits(z)))

    def shrink(self, z, threshold):
        """Return the group soft-threshold of ``z``."""
        torch = self.torch
        norms = torch.linalg.vector_norm(z, dim=1, keepdim=True)
        tiny = torch.finfo(z.dtype).tiny
        return torch.clamp(1.0 - threshold / torch.clamp(norms, min=tiny), min=0.0) * z

    @staticmethod
    def inner(a, b):
        """Return the inner product of two tensors of the same shape."""
        return float((a * b).sum())

    def relative_gap(self, beta, z):
        """Return the certified relative gap of ``z``, computed on the device."""
        torch = self.torch
        logits = self._logits(z)
        correlations = self._correlations(self._loss_gradient(logits))
        largest = float(torch.linalg.vector_norm(correlations, dim=1).max())
        scale = 1.0 if largest <= beta else beta / largest

        softplus = torch.nn.functional.softplus
        loss = (self.ones * softplus(-logits) + self.zeros * softplus(logits)).sum()
        penalty = torch.linalg.vector_norm(z, dim=1).sum()
        primal = float(loss) / self.n_vectors + beta * float(penalty)

        fitted = torch.clamp(scale * torch.sigmoid(logits) + (1.0 - scale) * self.prior, 0.0, 1.0)
        xlogy = torch.special.xlogy
        entropy = -xlogy(fitted, fitted) - xlogy(1.0 - fitted, 1.0 - fitted)
        dual = float((self.counts * entropy).sum()) / self.n_vectors
        return (primal - dual) / max(abs(primal), np.finfo(float).tiny)
