"""Numerically stable Bernoulli log-likelihood kernels on logits.

Log-probabilities are computed directly from logits, never as the log of a
probability, so logits of +-800 give finite, correct values.
"""

import numpy as np
from scipy.special import expit, log_expit


def softplus(t):
    """Return log(1 + exp(t)) elementwise, finite for every finite t."""
    return np.logaddexp(0.0, t)


def log_sigmoid(t):
    """Return log(sigmoid(t)) elementwise."""
    return log_expit(t)


def sigmoid(t):
    """Return 1 / (1 + exp(-t)) elementwise."""
    return expit(t)


def weighted_bernoulli_nll(logits, ones, zeros):
    """Return the summed negative log-likelihood of weighted rows, in nats.

    A row with logit ``a`` seen ``ones`` times with target 1 and ``zeros`` times with
    target 0 contributes ``ones * softplus(-a) + zeros * softplus(a)``.
    """
    logits = np.asarray(logits, dtype=np.float64)
    return float(np.sum(ones * softplus(-logits) + zeros * softplus(logits)))


def binary_entropy(t):
    """Return the binary entropy -t log t - (1 - t) log(1 - t) in nats, with 0 log 0 = 0."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(t > 0.0, -t * np.log(t), 0.0)
        second = np.where(t < 1.0, -(1.0 - t) * np.log1p(-t), 0.0)
    return first + second
