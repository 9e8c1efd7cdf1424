"""Readers for a user's own binary data files: LIBSVM, ``.amat`` and ``.npz``."""

import os
import warnings
import zipfile

import numpy as np

from .._validation import check_binary_matrix, check_int
from ..exceptions import InvalidDataError
from ._bundled import SPLITS, Dataset


# A file whose name does not end in .npz or .amat is read as LIBSVM, so a parse error in
# another text format shows up as a LIBSVM error. The hint names this rule.
_LIBSVM_HINT = (
    "Files whose names do not end in .npz or .amat are read as LIBSVM "
    "('label index:value ...' per line); rename an .amat text matrix to end in .amat."
)


def _parse_libsvm_line(line, path, line_number, zero_based):
    tokens = line.split()
    indices = []
    values = []
    # The first token is the label; an unsupervised model ignores it.
    for token in tokens[1:]:
        if token.startswith("#"):
            break
        key, separator, value = token.partition(":")
        if not separator:
            raise InvalidDataError(
                f"{path}, line {line_number}: expected 'index:value', got {token!r}. "
                f"{_LIBSVM_HINT}"
            )
        try:
            index = int(key)
            number = float(value)
        except ValueError:
            raise InvalidDataError(
                f"{path}, line {line_number}: cannot parse {token!r} as 'index:value'."
            ) from None
        if not zero_based and index == 0:
            raise InvalidDataError(
                f"{path}, line {line_number}: feature index 0 found, but LIBSVM indices "
                "are 1-based by default. If this file is 0-based, pass zero_based=True "
                "(command line: --zero-based)."
            )
        if index < 0:
            raise InvalidDataError(f"{path}, line {line_number}: negative index {index}.")
        indices.append(index if zero_based else index - 1)
        values.append(number)
    return indices, values


def read_libsvm(path, n_features=None, zero_based=False):
    """Read a LIBSVM file of binary features into a dense uint8 matrix.

    Labels are ignored. Missing features are 0.

    Parameters
    ----------
    path : str or path-like
        File in LIBSVM format (``label index:value ...`` per line).
    n_features : int or None, default=None
        Width of the matrix. Give it whenever several files must share one width: a file
        whose highest index happens to be lower would otherwise be narrower.
    zero_based : bool, default=False
        Whether indices start at 0. The default is LIBSVM's 1-based convention; an index
        0 in a 1-based file is an error, never a silent shift.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
    """
    if n_features is not None:
        n_features = check_int(
            n_features, "n_features", 1, hint=" Give the number of columns of the data."
        )

    rows = []
    highest = -1
    try:
        with open(path, "r", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                indices, values = _parse_libsvm_line(line, path, line_number, zero_based)
                rows.append((indices, values))
                if indices:
                    highest = max(highest, max(indices))
    except UnicodeDecodeError:
        raise InvalidDataError(
            f"{path} is not UTF-8 text, so not a LIBSVM file. {_LIBSVM_HINT}"
        ) from None
    except OSError as error:
        raise InvalidDataError(f"cannot read {path}: {error.strerror or error}.") from None

    if not rows:
        raise InvalidDataError(f"{path} contains no data lines.")
    if n_features is None:
        n_features = highest + 1
    elif highest >= n_features:
        raise InvalidDataError(
            f"{path}: a feature index maps to column {highest}, but n_features = "
            f"{n_features}. Raise n_features, or check zero_based (now {zero_based})."
        )
    if n_features < 1:
        raise InvalidDataError(f"{path}: every line is empty; pass n_features explicitly.")

    dense = np.zeros((len(rows), n_features), dtype=np.float64)
    for row, (indices, values) in enumerate(rows):
        dense[row, indices] = values
    return check_binary_matrix(dense, name=os.path.basename(str(path)))


def read_amat(path):
    """Read a whitespace-separated ``.amat`` text matrix of 0/1 values.

    Raises
    ------
    InvalidDataError
        If the file cannot be read, is not text, has a token that is not a number, has
        rows of different lengths, or contains a value other than 0 and 1.
    """
    try:
        with warnings.catch_warnings():
            # An empty file is reported below as an error instead of NumPy's warning.
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
            array = np.loadtxt(path, dtype=np.float64, ndmin=2, encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidDataError(
            f"{path} is not UTF-8 text, so not an .amat text matrix of 0/1 values."
        ) from None
    except OSError as error:
        raise InvalidDataError(f"cannot read {path}: {error.strerror or error}.") from None
    except ValueError as error:
        # NumPy's message suggests `usecols`, which does not fit here, so find the line.
        raise InvalidDataError(_describe_bad_amat(path) or f"{path}: {error}") from None
    if array.size == 0:
        raise InvalidDataError(f"{path} contains no data lines.")
    return check_binary_matrix(array, name=os.path.basename(str(path)))


def _describe_bad_amat(path):
    """Return a message naming the first ragged row or non-numeric token of an .amat file."""
    width = None
    with open(path, "r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            tokens = line.split("#", 1)[0].split()
            if not tokens:
                continue
            if width is None:
                width, first_line = len(tokens), line_number
            elif len(tokens) != width:
                return (
                    f"{path}, line {line_number}: {len(tokens)} values, but line "
                    f"{first_line} has {width}. Every row of an .amat matrix must have "
                    "the same number of values."
                )
            for token in tokens:
                try:
                    float(token)
                except ValueError:
                    return (
                        f"{path}, line {line_number}: {token!r} is not a number. An .amat "
                        "file is a whitespace-separated matrix of 0/1 values."
                    )
    return None


def read_npz(path):
    """Read a ``.npz`` archive with arrays ``train`` and optionally ``valid`` and ``test``.

    An archive with a single array of another name is read as the train split.
    Pickled objects are never loaded.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        if "pickle" in str(error):
            # NOTE: numpy reads a file that is not a zip archive as a pickle and reports a pickle error.
            error = "it is not a zip archive of arrays written by numpy.savez"
        raise InvalidDataError(f"{path} is not a readable .npz archive: {error}") from None

    with archive:
        keys = list(archive.files)
        if not set(keys) & set(SPLITS):
            if len(keys) != 1:
                raise InvalidDataError(
                    f"{path} contains arrays {keys}; name them 'train', 'valid' and 'test'."
                )
            mapping = {"train": keys[0]}
        else:
            mapping = {split: split for split in SPLITS if split in keys}
        try:
            splits = {
                split: check_binary_matrix(archive[key], name=f"{os.path.basename(path)}.{key}")
                for split, key in mapping.items()
            }
        except ValueError as error:
            if isinstance(error, InvalidDataError):
                raise
            raise InvalidDataError(f"{path}: {error}") from None

    widths = {split: array.shape[1] for split, array in splits.items()}
    if len(set(widths.values())) > 1:
        raise InvalidDataError(f"{path}: the splits have different widths {widths}.")
    return Dataset(name=str(path), **{split: splits.get(split) for split in SPLITS})


def _read_single(path, n_features, zero_based):
    lowered = str(path).lower()
    if lowered.endswith(".amat"):
        return read_amat(path)
    return read_libsvm(path, n_features=n_features, zero_based=zero_based)


def load_file(path, n_features=None, zero_based=False, valid_path=None, test_path=None):
    """Load a user's data file as a :class:`Dataset`.

    ``.npz`` archives carry their own splits. A LIBSVM or ``.amat`` file is the train
    split; ``valid_path`` and ``test_path`` add the other splits from files of the same
    kind. All LIBSVM files are read with the same ``n_features`` and ``zero_based``.

    Raises
    ------
    InvalidDataError
        If a file is missing or malformed, or the splits have different widths, for
        example because ``n_features`` was not given and the highest index differs.
    """
    for candidate in (path, valid_path, test_path):
        if candidate is None:
            continue
        if os.path.isdir(candidate):
            raise InvalidDataError(
                f"data file {str(candidate)!r} is a directory; give the path of a .npz, "
                "LIBSVM or .amat file."
            )
        if not os.path.isfile(candidate):
            raise InvalidDataError(f"data file {str(candidate)!r} not found.")

    if str(path).lower().endswith(".npz"):
        if valid_path is not None or test_path is not None:
            raise InvalidDataError(
                "a .npz archive carries its own splits; do not pass separate valid/test files."
            )
        return read_npz(path)

    splits = {"train": _read_single(path, n_features, zero_based)}
    if valid_path is not None:
        splits["valid"] = _read_single(valid_path, n_features, zero_based)
    if test_path is not None:
        splits["test"] = _read_single(test_path, n_features, zero_based)

    widths = {split: array.shape[1] for split, array in splits.items()}
    if len(set(widths.values())) > 1:
        raise InvalidDataError(
            f"the splits have different widths {widths}. For LIBSVM files pass "
            "n_features (command line: --n-features) so that every split gets the same "
            "columns; the highest index seen differs between the files."
        )
    return Dataset(name=str(path), **{split: splits.get(split) for split in SPLITS})


def load_name_or_file(name, n_features=None, zero_based=False, valid_path=None, test_path=None):
    """Load a bundled data set by name, or else a user's file by path (see :func:`load_file`).

    Raises
    ------
    InvalidDataError
        If ``name`` is neither a bundled data set nor an existing path.
    """
    from ._bundled import list_datasets, load_dataset

    if name in list_datasets():
        return load_dataset(name)
    if os.path.exists(name):
        return load_file(
            name,
            n_features=n_features,
            zero_based=zero_based,
            valid_path=valid_path,
            test_path=test_path,
        )
    raise InvalidDataError(
        f"--dataset {name!r} is neither a bundled data set {list_datasets()} nor an "
        "existing file. Give a bundled name or the path of a .npz, LIBSVM or .amat file."
    )
