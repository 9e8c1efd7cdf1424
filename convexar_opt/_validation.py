"""Input checks shared by the data pipeline, the problems, the solvers and the CLI."""

import numbers

import numpy as np

from .exceptions import InvalidDataError, InvalidParameterError


def check_binary_matrix(X, name="X"):
    """Return ``X`` as a C-contiguous uint8 matrix after checking it contains only 0 and 1.

    Raises
    ------
    InvalidDataError
        If ``X`` is not two-dimensional, is empty, contains NaN or a value other than 0 and 1.
    """
    array = np.asarray(X)

    if array.ndim != 2:
        if array.ndim > 2:
            fix = (
                f"Flatten each sample into one vector, for example with "
                f"{name}.reshape({name}.shape[0], -1)."
            )
        else:
            fix = f"Reshape it, for example with {name}.reshape(1, -1) for a single vector."
        raise InvalidDataError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), but it has "
            f"shape {array.shape}. {fix}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidDataError(
            f"{name} is empty (shape {array.shape}). Provide at least one vector with at "
            "least one entry."
        )
    if array.dtype.kind not in "biuf":
        raise InvalidDataError(
            f"{name} must be numeric with entries 0 and 1, but its dtype is {array.dtype}. "
            "Convert it to 0/1 numbers first, for example with np.asarray(..., dtype=np.uint8)."
        )

    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InvalidDataError(
                f"{name} must be finite, but {name}[{row}, {col}] = {array[row, col]}. "
                "Remove or impute missing entries before binarizing."
            )
    bad = (array != 0) & (array != 1)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidDataError(
            f"{name} must contain only 0 and 1, but {name}[{row}, {col}] = "
            f"{array[row, col]}. Binarize it first, for example with "
            f"({name if name.isidentifier() else 'X'} > 0.5).astype(np.uint8)."
        )
    return np.ascontiguousarray(array, dtype=np.uint8)


def check_int(value, name, minimum, maximum=None, hint=""):
    """Return ``value`` as an int after checking ``minimum <= value <= maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer; got {value!r}.{hint}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" to {maximum}"
        raise InvalidParameterError(
            f"{name} must be an integer from {minimum}{upper}; got {value}.{hint}"
        )
    return value


def check_nonnegative(value, name, allow_zero=True):
    """Return ``value`` as a float after checking it is finite and non-negative."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number; got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0.0 or (value == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidParameterError(f"{name} must be finite and {bound}; got {value}.")
    return value


def check_window(window, n_features):
    """Return the window length r after checking 1 <= r <= n_features - 1."""
    if n_features < 2:
        raise InvalidDataError(
            f"the vectors have {n_features} entry; an autoregressive model needs at least "
            "2 entries per vector (one context entry and one target)."
        )
    return check_int(
        window,
        "window",
        1,
        n_features - 1,
        hint=f" The vectors have {n_features} entries, so at least one position must "
        "remain to be predicted after the window.",
    )
