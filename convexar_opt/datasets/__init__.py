"""Bundled real binary data sets and readers for a user's own files.

The bundled files are NumPy ``.npz`` archives with uint8 arrays ``train``, ``valid`` and
``test``; ``data/README.md`` gives their provenance and ``data/checksums.json`` the
sha256 of every array, which :func:`load_dataset` verifies on each load.
"""

from ._bundled import Dataset, dataset_path, list_datasets, load_dataset
from ._readers import load_file, load_name_or_file, read_amat, read_libsvm, read_npz

__all__ = [
    "Dataset",
    "dataset_path",
    "list_datasets",
    "load_dataset",
    "load_file",
    "load_name_or_file",
    "read_amat",
    "read_libsvm",
    "read_npz",
]
