r"""Activation patterns: gate vectors and the masks they induce.

A gate vector :math:`g_i \in \mathbb R^{p}` (p = window, plus 1 with an intercept)
switches pattern :math:`i` on for the contexts with :math:`\bar x_k^\top g_i \ge 0`,
which gives the mask :math:`d_i = 1[\bar X g_i \ge 0]` and :math:`D_i = \mathrm{diag}(d_i)`.
Models store gates, not masks, so the same rule applies to validation and test data.
"""

import numpy as np

from ._validation import check_int
from .exceptions import InvalidDataError


def sample_gates(n_weights, n_patterns, random_state=None):
    """Draw ``n_patterns`` standard Gaussian gate vectors.

    Parameters
    ----------
    n_weights : int
        Length p of each gate: the window, plus 1 when the design has an intercept.
    n_patterns : int
        Number P of gates.
    random_state : int, numpy.random.Generator or None, default=None
        Seed or generator; the same seed always gives the same gates.

    Returns
    -------
    ndarray of shape (n_patterns, n_weights)
    """
    n_weights = check_int(n_weights, "n_weights", 1)
    n_patterns = check_int(n_patterns, "n_patterns", 1, hint=" Use at least one pattern.")
    rng = np.random.default_rng(random_state)
    return rng.standard_normal((n_patterns, n_weights))


def gate_masks(features, gates):
    """Return the boolean masks ``features @ gates.T >= 0`` of shape (n_rows, n_patterns)."""
    features = np.asarray(features, dtype=np.float64)
    gates = np.asarray(gates, dtype=np.float64)
    if gates.ndim != 2 or gates.shape[1] != features.shape[1]:
        raise InvalidDataError(
            f"gates must have shape (n_patterns, {features.shape[1]}) to match the "
            f"features; got {gates.shape}. Gates sampled with a different window or "
            "intercept setting cannot be reused."
        )
    return features @ gates.T >= 0.0


def unique_pattern_indices(masks):
    """Return the indices of the first gate of every distinct mask, in gate order.

    Dropping a gate whose mask repeats another changes none of the optimal values.
    """
    masks = np.asarray(masks, dtype=bool)
    _, first = np.unique(masks.T, axis=0, return_index=True)
    return np.sort(first)
