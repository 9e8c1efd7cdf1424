r"""Windowed design matrix and its exact compression to distinct contexts.

For a vector :math:`x \in \{0,1\}^{D'}` and window :math:`r`, position :math:`t`
(0-based, :math:`t = 0, \dots, T-1` with :math:`T = D' - r`) gives the row
:math:`X_{(r)}[f] = (x_t, \dots, x_{t+r-1})` and target :math:`y_f = x_{t+r}`, with
:math:`f = nT + t`. Every model of this package computes a row's logit from its
context alone, so the :math:`F = NT` rows compress exactly to the
:math:`K \le \min(F, 2^r)` distinct contexts :math:`\bar x_k` with counts
:math:`n^1_k` (targets equal to 1) and :math:`n^0_k` (targets equal to 0). Every
objective, gradient and dual is a count-weighted sum over these contexts.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np

from ._validation import check_binary_matrix, check_int, check_window
from .exceptions import InvalidDataError

logger = logging.getLogger(__name__)

# Windows up to this length are counted with a dense table of 2**r bins.
_DENSE_CODE_LIMIT = 22
_CHUNK_ROWS = 2_000_000


def window_data(X, window):
    """Build the windowed design matrix and targets of binary vectors.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Binary vectors, entries in {0, 1}.
    window : int
        Context length r, from 1 to n_features - 1.

    Returns
    -------
    X_lagged : ndarray of shape (n_samples * (n_features - window), window)
        Row ``n * T + t`` is ``X[n, t:t + window]``.
    y : ndarray of shape (n_samples * (n_features - window),)
        Entry ``n * T + t`` is ``X[n, t + window]``.

    Examples
    --------
    >>> window_data([[1, 0, 1, 1]], window=2)[0].tolist()
    [[1, 0], [0, 1]]
    """
    X = check_binary_matrix(X)
    window = check_window(window, X.shape[1])

    n_positions = X.shape[1] - window
    views = np.lib.stride_tricks.sliding_window_view(X, window, axis=1)[:, :n_positions]
    X_lagged = np.ascontiguousarray(views.reshape(-1, window))
    y = np.ascontiguousarray(X[:, window:].reshape(-1))
    return X_lagged, y


@dataclass(frozen=True)
class WeightedDesign:
    r"""Distinct contexts with the counts of their targets.

    Attributes
    ----------
    contexts : ndarray of shape (n_contexts, window), uint8
        The distinct contexts :math:`\bar x_k`, in increasing binary order.
    ones, zeros : ndarray of shape (n_contexts,), float64
        How often each context is followed by a 1 (:math:`n^1_k`) and by a 0
        (:math:`n^0_k`). Balancing and subsampling keep them integral.
    n_vectors : float
        The normaliser N of the loss: the number of vectors, or, after balancing or
        subsampling, the number of rows kept divided by ``n_positions``.
    n_positions : int
        Modelled positions per vector, T = n_features - window.
    intercept : bool
        Whether :attr:`features` carries a constant column of ones, which adds an
        intercept to every local linear model and to every gate.
    """

    contexts: np.ndarray
    ones: np.ndarray
    zeros: np.ndarray
    n_vectors: float
    n_positions: int
    intercept: bool = True

    @property
    def window(self):
        """Context length r."""
        return self.contexts.shape[1]

    @property
    def n_contexts(self):
        """Number K of distinct contexts."""
        return self.contexts.shape[0]

    @property
    def counts(self):
        """Total count :math:`n_k = n^1_k + n^0_k` of each context."""
        return self.ones + self.zeros

    @property
    def n_rows(self):
        """Number F of (context, target) rows represented."""
        return float(np.sum(self.counts))

    @property
    def n_weights(self):
        """Length of one weight vector: the window plus 1 with an intercept."""
        return self.window + int(self.intercept)

    @property
    def features(self):
        """Float64 design of shape (n_contexts, n_weights) that every model multiplies."""
        features = self.contexts.astype(np.float64)
        if self.intercept:
            features = np.hstack([features, np.ones((self.n_contexts, 1))])
        return features

    def with_intercept(self, intercept):
        """Return the same counts with or without the constant feature."""
        return replace(self, intercept=bool(intercept))

    def __repr__(self):
        return (
            f"WeightedDesign(n_contexts={self.n_contexts}, window={self.window}, "
            f"n_rows={self.n_rows:.0f}, n_vectors={self.n_vectors:g}, "
            f"n_positions={self.n_positions}, intercept={self.intercept})"
        )


def _context_codes(X, window):
    """Return the integer code of every window, most significant bit first."""
    n_positions = X.shape[1] - window
    powers = (1 << np.arange(window - 1, -1, -1, dtype=np.int64)).astype(np.int64)
    codes = np.empty(X.shape[0] * n_positions, dtype=np.int64)
    vectors_per_chunk = max(1, _CHUNK_ROWS // max(n_positions, 1))

    for start in range(0, X.shape[0], vectors_per_chunk):
        block = X[start : start + vectors_per_chunk]
        views = np.lib.stride_tricks.sliding_window_view(block, window, axis=1)
        chunk = views[:, :n_positions].astype(np.int64) @ powers
        codes[start * n_positions : start * n_positions + chunk.size] = chunk.reshape(-1)
    return codes


def _decode(codes, window):
    shifts = np.arange(window - 1, -1, -1, dtype=np.int64)
    return ((codes[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


def compress(X_lagged, y, n_vectors, n_positions, intercept=True):
    """Compress windowed rows to their distinct contexts with target counts.

    Parameters
    ----------
    X_lagged : array-like of shape (n_rows, window)
        Binary contexts.
    y : array-like of shape (n_rows,)
        Binary targets.
    n_vectors : float
        Normaliser N of the loss, usually the number of vectors the rows came from.
    n_positions : int
        Modelled positions per vector, T.
    intercept : bool, default=True
        Whether the design carries a constant feature.

    Returns
    -------
    WeightedDesign
    """
    X_lagged = check_binary_matrix(X_lagged, name="X_lagged")
    y = check_binary_matrix(np.asarray(y).reshape(-1, 1), name="y").reshape(-1)
    if y.shape[0] != X_lagged.shape[0]:
        raise InvalidDataError(
            f"X_lagged has {X_lagged.shape[0]} rows but y has {y.shape[0]} entries."
        )

    contexts, inverse = np.unique(X_lagged, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    ones = np.bincount(inverse, weights=y, minlength=contexts.shape[0])
    counts = np.bincount(inverse, minlength=contexts.shape[0]).astype(np.float64)
    return WeightedDesign(
        contexts=np.ascontiguousarray(contexts, dtype=np.uint8),
        ones=ones.astype(np.float64),
        zeros=counts - ones,
        n_vectors=float(n_vectors),
        n_positions=int(n_positions),
        intercept=bool(intercept),
    )


def build_design(X, window, intercept=True):
    """Window binary vectors and compress them in one pass, without storing the rows.

    Equivalent to ``compress(*window_data(X, window), len(X), n_features - window)``
    but uses integer context codes, so a data set of millions of rows needs memory
    for one code per row only.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Binary vectors.
    window : int
        Context length r.
    intercept : bool, default=True
        Whether the design carries a constant feature (intercept).

    Returns
    -------
    WeightedDesign
    """
    X = check_binary_matrix(X)
    window = check_window(window, X.shape[1])
    n_positions = X.shape[1] - window

    if window > 62:
        X_lagged, y = window_data(X, window)
        return compress(X_lagged, y, X.shape[0], n_positions, intercept)

    codes = _context_codes(X, window)
    targets = X[:, window:].reshape(-1).astype(np.float64)

    if window <= _DENSE_CODE_LIMIT:
        n_bins = 1 << window
        counts = np.bincount(codes, minlength=n_bins).astype(np.float64)
        ones = np.bincount(codes, weights=targets, minlength=n_bins)
        present = np.flatnonzero(counts)
        unique_codes = present.astype(np.int64)
        counts = counts[present]
        ones = ones[present]
    else:
        unique_codes, inverse = np.unique(codes, return_inverse=True)
        counts = np.bincount(inverse).astype(np.float64)
        ones = np.bincount(inverse, weights=targets)

    design = WeightedDesign(
        contexts=_decode(unique_codes, window),
        ones=ones,
        zeros=counts - ones,
        n_vectors=float(X.shape[0]),
        n_positions=n_positions,
        intercept=bool(intercept),
    )
    logger.debug("compressed %d rows to %r", codes.size, design)
    return design


def balance_design(design, random_state=None):
    """Subsample the majority target class so that ones and zeros are equally many.

    This is the training-set balancing of Gabbur et al.'s protocol: rows of the larger
    class are drawn uniformly without replacement, done exactly on the counts by a
    multivariate hypergeometric draw. The normaliser becomes rows kept / T, so the
    loss keeps its per-vector scale.

    Warnings
    --------
    Limitations: balancing changes the estimator. It is no longer maximum likelihood
    for the data distribution, and on sparse data it raises the test NLL a lot.
    """
    rng = np.random.default_rng(random_state)
    total_ones = int(round(design.ones.sum()))
    total_zeros = int(round(design.zeros.sum()))
    if total_ones == 0 or total_zeros == 0:
        raise InvalidDataError(
            f"cannot balance a training set with {total_ones} targets equal to 1 and "
            f"{total_zeros} equal to 0; turn balancing off."
        )

    ones = design.ones.copy()
    zeros = design.zeros.copy()
    if total_ones > total_zeros:
        ones = rng.multivariate_hypergeometric(ones.astype(np.int64), total_zeros).astype(float)
    else:
        zeros = rng.multivariate_hypergeometric(zeros.astype(np.int64), total_ones).astype(float)
    return _keep_present(design, ones, zeros)


def subsample_design(design, n_rows, random_state=None):
    """Draw ``n_rows`` of the represented rows uniformly without replacement."""
    total = int(round(design.n_rows))
    n_rows = check_int(n_rows, "n_rows", 1, total, hint=" It cannot exceed the rows present.")
    rng = np.random.default_rng(random_state)

    stacked = np.concatenate([design.ones, design.zeros]).astype(np.int64)
    drawn = rng.multivariate_hypergeometric(stacked, n_rows).astype(float)
    return _keep_present(design, drawn[: design.n_contexts], drawn[design.n_contexts :])


def _keep_present(design, ones, zeros):
    present = (ones + zeros) > 0
    kept_rows = float(np.sum(ones + zeros))
    return WeightedDesign(
        contexts=design.contexts[present],
        ones=ones[present],
        zeros=zeros[present],
        n_vectors=kept_rows / design.n_positions,
        n_positions=design.n_positions,
        intercept=design.intercept,
    )
