import hashlib

import numpy as np
import pytest

from convexar_opt import InvalidDataError
from convexar_opt.datasets import list_datasets, load_dataset, load_file, read_amat, read_libsvm, read_npz

# sha256 of the uint8 train arrays as recorded in the data sets' provenance README.
RECORDED_TRAIN_SHA256 = {
    "adult": "51f7e476ddebd27c873cfaf59d08af97930089470434483e8023bfb529c37e4f",
    "mushrooms": "bdc96ef5b74d908aa8f0665aad1a060c95c29e3f0140e0c004f538785e7f37f4",
    "dna": "425f2f6eb1b989bd0e41e88fd0c004bfee8c2b1b398b50a974ea0764966a30aa",
}


def test_list_datasets_has_benchmarks():
    names = list_datasets()
    for name in ("adult", "connect4", "dna", "mushrooms", "nips", "ocr_letters", "web_w8a", "binarized_mnist"):
        assert name in names


@pytest.mark.parametrize("name", sorted(RECORDED_TRAIN_SHA256))
def test_bundled_train_matches_recorded_checksum(name):
    train = load_dataset(name).train
    assert hashlib.sha256(train.tobytes()).hexdigest() == RECORDED_TRAIN_SHA256[name]


def test_adult_shapes_and_dtype():
    adult = load_dataset("adult")
    assert adult.train.shape == (5000, 123)
    assert adult.valid.shape == (1414, 123)
    assert adult.test.shape == (26147, 123)
    assert adult.train.dtype == np.uint8


def test_every_bundled_set_loads_and_verifies():
    for name in list_datasets():
        dataset = load_dataset(name)
        assert dataset.n_features > 1


def test_rcv1_has_no_train_split():
    dataset = load_dataset("rcv1_valid_only")
    with pytest.raises(InvalidDataError, match=r"has no 'train' split"):
        dataset.split("train")


def test_unknown_dataset_lists_names():
    with pytest.raises(InvalidDataError, match=r"unknown data set 'adults'.*'adult'"):
        load_dataset("adults")


def test_libsvm_explicit_width(tmp_path):
    train = tmp_path / "train.svm"
    test = tmp_path / "test.svm"
    train.write_text("1 1:1 5:1\n-1 2:1\n")
    test.write_text("1 1:1\n")

    dataset = load_file(train, n_features=6, test_path=test)
    assert dataset.train.shape == (2, 6)
    assert dataset.test.shape == (1, 6)
    assert dataset.train[0].tolist() == [1, 0, 0, 0, 1, 0]


def test_libsvm_mismatched_widths_without_n_features(tmp_path):
    train = tmp_path / "train.svm"
    test = tmp_path / "test.svm"
    train.write_text("1 1:1 5:1\n")
    test.write_text("1 1:1 3:1\n")

    with pytest.raises(InvalidDataError, match=r"different widths \{'train': 5, 'test': 3\}.*n_features"):
        load_file(train, test_path=test)


def test_libsvm_index_zero_in_one_based_file(tmp_path):
    path = tmp_path / "zero.svm"
    path.write_text("1 0:1 2:1\n")
    with pytest.raises(InvalidDataError, match=r"line 1: feature index 0 found.*zero_based=True"):
        read_libsvm(path)


def test_libsvm_zero_based_reads_column_zero(tmp_path):
    path = tmp_path / "zero.svm"
    path.write_text("1 0:1 2:1\n")
    assert read_libsvm(path, zero_based=True).tolist() == [[1, 0, 1]]


def test_libsvm_index_beyond_n_features(tmp_path):
    path = tmp_path / "wide.svm"
    path.write_text("1 9:1\n")
    with pytest.raises(InvalidDataError, match=r"column 8, but n_features = 4"):
        read_libsvm(path, n_features=4)


def test_libsvm_non_binary_value(tmp_path):
    path = tmp_path / "scaled.svm"
    path.write_text("1 1:0.25\n")
    with pytest.raises(InvalidDataError, match=r"\[0, 0\] = 0.25"):
        read_libsvm(path, n_features=2)


def test_amat_reader(tmp_path):
    path = tmp_path / "data.amat"
    path.write_text("0 1 1\n1 0 0\n")
    assert read_amat(path).tolist() == [[0, 1, 1], [1, 0, 0]]


def test_amat_non_binary(tmp_path):
    path = tmp_path / "data.amat"
    path.write_text("0 2 1\n")
    with pytest.raises(InvalidDataError, match=r"\[0, 1\] = 2"):
        read_amat(path)


def test_npz_reader_splits(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, train=np.eye(3, dtype=np.uint8), test=np.ones((2, 3), dtype=np.uint8))
    dataset = read_npz(path)
    assert dataset.train.shape == (3, 3)
    assert dataset.valid is None
    assert dataset.test.shape == (2, 3)


def test_npz_with_nan(tmp_path):
    path = tmp_path / "data.npz"
    train = np.zeros((2, 4))
    train[1, 3] = np.nan
    np.savez(path, train=train)
    with pytest.raises(InvalidDataError, match=r"\[1, 3\] = nan"):
        read_npz(path)


def test_npz_object_array_not_unpickled(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, train=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InvalidDataError, match=r"data.npz"):
        read_npz(path)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidDataError, match=r"not found"):
        load_file(tmp_path / "absent.svm")


def test_truncated_npz(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, train=np.eye(3, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InvalidDataError, match=r"not a readable .npz archive"):
        read_npz(path)
