r"""The masked design :math:`M = [D_1 \bar X \,|\, \cdots \,|\, D_P \bar X]` of the native solvers.

The relaxed program's logits are :math:`a = M \operatorname{vec}(z)` and its loss gradient
is :math:`M^\top \nabla L(a)`. Storing :math:`M` as one dense (K, P p) matrix turns both
into a single BLAS call; K is at most :math:`2^r` after compression.
"""

import numpy as np
from scipy.linalg import eigh

from .._numeric import sigmoid
from ..objectives import loss


class MaskedDesign:
    """Dense masked design of a compressed data set and its gates.

    Parameters
    ----------
    design : WeightedDesign
        Compressed training data.
    masks : ndarray of shape (n_contexts, n_patterns), bool
        Masks of the gates on the design's contexts.
    """

    def __init__(self, design, masks):
        self.design = design
        self.features = design.features
        self.masks = np.asarray(masks, dtype=bool)
        self.counts = design.counts
        self.ones = design.ones
        self.n_vectors = float(design.n_vectors)

        n_contexts, n_weights = self.features.shape
        self.n_patterns = self.masks.shape[1]
        self.n_weights = n_weights
        blocks = self.masks[:, :, None] * self.features[:, None, :]
        self.matrix = np.ascontiguousarray(blocks.reshape(n_contexts, self.n_patterns * n_weights))
        self.pattern_blocks = np.ascontiguousarray(blocks.transpose(1, 0, 2))

    @property
    def n_contexts(self):
        """Number K of distinct contexts."""
        return self.features.shape[0]

    def logits(self, z):
        """Return :math:`\\sum_i D_i \\bar X z_i` for ``z`` of shape (P, p)."""
        return self.matrix @ z.reshape(-1)

    def correlations(self, gradient):
        """Return :math:`M_i^\\top g` for every pattern, shape (P, p)."""
        return (gradient @ self.matrix).reshape(self.n_patterns, self.n_weights)

    def loss(self, logits):
        """Return the loss L(a) in nats per vector."""
        return loss(self.design, logits)

    def loss_gradient(self, logits):
        """Return :math:`\\nabla L(a) = (n \\odot \\sigma(a) - n^1) / N`."""
        return (self.counts * sigmoid(logits) - self.ones) / self.n_vectors

    def loss_curvature(self, logits):
        """Return the diagonal of the loss Hessian, :math:`n \\odot \\sigma'(a) / N`."""
        probabilities = sigmoid(logits)
        return self.counts * probabilities * (1.0 - probabilities) / self.n_vectors

    def lipschitz_constant(self):
        r"""Return :math:`L_6 = \lambda_{\max}(M^\top W M) / (4N)`, the gradient's Lipschitz constant.

        The largest eigenvalue is computed exactly on the smaller of the two Gram
        matrices, (K, K) or (P p, P p), because both have the same non-zero spectrum.
        """
        scaled = np.sqrt(self.counts)[:, None] * self.matrix
        if scaled.shape[0] <= scaled.shape[1]:
            gram = scaled @ scaled.T
        else:
            gram = scaled.T @ scaled
        size = gram.shape[0]
        largest = eigh(gram, eigvals_only=True, subset_by_index=[size - 1, size - 1])[0]
        return max(float(largest), 0.0) / (4.0 * self.n_vectors)
