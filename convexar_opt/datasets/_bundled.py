"""Loading of the data sets shipped inside the package."""

import hashlib
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .._validation import check_binary_matrix
from ..exceptions import InvalidDataError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits of one binary data set.

    Attributes
    ----------
    name : str
        Name of the data set or path of the file it was read from.
    train, valid, test : ndarray of shape (n_samples, n_features) or None
        uint8 arrays with entries 0 and 1. A missing split is None.
    """

    name: str
    train: np.ndarray | None
    valid: np.ndarray | None
    test: np.ndarray | None

    @property
    def n_features(self):
        """Dimension D' of the vectors."""
        for split in (self.train, self.valid, self.test):
            if split is not None:
                return split.shape[1]
        raise InvalidDataError(f"data set {self.name!r} contains no split.")

    def split(self, name):
        """Return split ``name`` or raise a clear error if the data set lacks it."""
        if name not in SPLITS:
            raise InvalidDataError(f"unknown split {name!r}; use one of {list(SPLITS)}.")
        array = getattr(self, name)
        if array is None:
            raise InvalidDataError(
                f"data set {self.name!r} has no {name!r} split. Provide a file with a "
                f"{name!r} array, or choose a data set that has one."
            )
        return array


def _data_folder():
    return resources.files(__package__) / "data"


def _checksums():
    with (_data_folder() / "checksums.json").open("r", encoding="utf-8") as handle:
        return json.load(handle)


def list_datasets():
    """Return the names of the bundled data sets, sorted."""
    return sorted(_checksums())


def dataset_path(name):
    """Return the path of the bundled ``.npz`` file of data set ``name``."""
    table = _checksums()
    if name not in table:
        raise InvalidDataError(
            f"unknown data set {name!r}. Bundled data sets: {sorted(table)}. To read a "
            ".npz, LIBSVM or .amat file, use convexar_opt.datasets.load_file(path) (the CLI's "
            "--dataset accepts either)."
        )
    return _data_folder() / table[name]["file"]


def load_dataset(name, verify=True):
    """Load a bundled data set with its train, validation and test splits.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`.
    verify : bool, default=True
        Compare the sha256 of every array with the value recorded when it was bundled.

    Returns
    -------
    Dataset
        uint8 arrays with entries 0 and 1; a split the file lacks is None.

    Raises
    ------
    InvalidDataError
        If the name is unknown or a checksum does not match.
    """
    path = dataset_path(name)
    expected = _checksums()[name]["arrays"]

    splits = {}
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
        for split in SPLITS:
            if split not in archive.files:
                splits[split] = None
                continue
            array = archive[split]
            if verify:
                digest = hashlib.sha256(array.tobytes()).hexdigest()
                if digest != expected[split]["sha256"]:
                    raise InvalidDataError(
                        f"bundled data set {name!r}, split {split!r}: sha256 {digest} does "
                        f"not match the recorded {expected[split]['sha256']}. The package "
                        "files are damaged; reinstall convexar_opt."
                    )
            splits[split] = check_binary_matrix(array, name=f"{name}.{split}")

    return Dataset(name=name, **splits)
