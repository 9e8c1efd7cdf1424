r"""Held-out evaluation: negative log-likelihood per vector, accuracy, count reference.

The NLL of a vector is :math:`\sum_{t=1}^{T} [\log(1 + e^{a_t}) - y_t a_t]`, in nats,
summed over its :math:`T = D' - r` modelled positions (the first r entries are never
predicted). The figure reported for a split is its average over the split's vectors,
which equals the loss :math:`L` on the split's design.
"""

import numpy as np

from ._numeric import softplus
from .objectives import loss


def nll_per_vector(design, logits):
    """Return the average NLL in nats per vector over the design's T modelled positions."""
    return loss(design, logits)


def accuracy(design, logits):
    """Return the count-weighted accuracy of predicting 1 exactly when the logit is > 0."""
    logits = np.asarray(logits, dtype=np.float64)
    correct = np.where(logits > 0.0, design.ones, design.zeros)
    return float(np.sum(correct) / np.sum(design.counts))


def _context_codes(contexts):
    powers = 1 << np.arange(contexts.shape[1] - 1, -1, -1, dtype=np.int64)
    if contexts.shape[1] <= 62:
        return contexts.astype(np.int64) @ powers
    return np.array([row.tobytes() for row in contexts])


def count_logits(train_design, design, pseudo_count=0.5):
    r"""Return the logits of the smoothed count model on ``design``'s contexts.

    The count model predicts :math:`p(1 \mid \bar x_k) = (n^1_k + a)/(n_k + 2a)` for a
    context seen in training (``a`` = ``pseudo_count``, 0.5 is the Krichevsky-Trofimov
    estimator) and 1/2 for a context never seen. It is the best any model that uses only
    the window can do on the training data, up to the smoothing, so it is the reference
    every model of this package is compared with.
    """
    train_codes = _context_codes(train_design.contexts)
    codes = _context_codes(design.contexts)
    lookup = {code: index for index, code in enumerate(train_codes.tolist())}

    logits = np.zeros(design.n_contexts)
    for position, code in enumerate(codes.tolist()):
        index = lookup.get(code)
        if index is None:
            continue
        ones = train_design.ones[index] + pseudo_count
        zeros = train_design.zeros[index] + pseudo_count
        logits[position] = np.log(ones) - np.log(zeros)
    return logits


def trivial_nll(design):
    """Return the NLL per vector of the model that predicts 1/2 everywhere: T log 2."""
    return float(np.sum(design.counts) * np.log(2.0) / design.n_vectors)


def binary_cross_entropy(logits, targets):
    """Return the elementwise NLL in nats of 0/1 targets under logits (stable for +-800)."""
    logits = np.asarray(logits, dtype=np.float64)
    return softplus(logits) - np.asarray(targets, dtype=np.float64) * logits
