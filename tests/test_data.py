import numpy as np
import pytest

from convexar_opt import InvalidDataError, InvalidParameterError
from convexar_opt.data import (
    balance_design,
    build_design,
    compress,
    subsample_design,
    window_data,
)


def test_window_data_hand_worked_example():
    X = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]])
    X_lagged, y = window_data(X, window=2)

    expected_rows = [[1, 0], [0, 1], [1, 1], [0, 0], [0, 1], [1, 0]]
    assert X_lagged.tolist() == expected_rows
    assert y.tolist() == [1, 1, 0, 1, 0, 1]


def test_window_data_row_count_is_n_times_positions():
    X = np.zeros((7, 12), dtype=np.uint8)
    X_lagged, y = window_data(X, window=5)
    assert X_lagged.shape == (7 * 7, 5)
    assert y.shape == (49,)


def test_compress_counts_hand_worked_example():
    X = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]])
    design = compress(*window_data(X, 2), n_vectors=2, n_positions=3, intercept=False)

    assert design.contexts.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert design.ones.tolist() == [1, 1, 2, 0]
    assert design.zeros.tolist() == [0, 1, 0, 1]
    assert design.n_rows == 6


def test_build_design_matches_compress(markov_vectors):
    fast = build_design(markov_vectors, window=4)
    slow = compress(*window_data(markov_vectors, 4), len(markov_vectors), 12)

    np.testing.assert_array_equal(fast.contexts, slow.contexts)
    np.testing.assert_array_equal(fast.ones, slow.ones)
    np.testing.assert_array_equal(fast.zeros, slow.zeros)


def test_build_design_contexts_at_most_two_to_the_window(mushrooms):
    design = build_design(mushrooms.train, window=6)
    assert design.n_contexts <= 2**6
    assert design.n_rows == mushrooms.train.shape[0] * (112 - 6)


def test_intercept_adds_constant_feature(small_design):
    features = small_design.features
    assert features.shape[1] == 4
    np.testing.assert_array_equal(features[:, -1], 1.0)
    assert small_design.with_intercept(False).features.shape[1] == 3


def test_balance_design_equalises_classes(mushrooms):
    design = build_design(mushrooms.train, window=10, intercept=False)
    balanced = balance_design(design, random_state=0)

    assert balanced.ones.sum() == balanced.zeros.sum()
    assert balanced.n_vectors == pytest.approx(balanced.n_rows / design.n_positions)


def test_balance_design_is_seeded(mushrooms):
    design = build_design(mushrooms.train[:300], window=5)
    first = balance_design(design, random_state=3)
    second = balance_design(design, random_state=3)
    np.testing.assert_array_equal(first.zeros, second.zeros)


def test_subsample_design_keeps_requested_rows(mushrooms):
    design = build_design(mushrooms.train[:300], window=5)
    sample = subsample_design(design, 1000, random_state=0)
    assert sample.n_rows == 1000

    index = {tuple(row): k for k, row in enumerate(design.contexts.tolist())}
    original = np.array([index[tuple(row)] for row in sample.contexts.tolist()])
    assert np.all(sample.ones <= design.ones[original])
    assert np.all(sample.zeros <= design.zeros[original])


def test_subsample_too_many_rows_rejected(small_design):
    with pytest.raises(InvalidParameterError, match=r"n_rows must be an integer from 1 to 780; got 5000"):
        subsample_design(small_design, 5000)


@pytest.mark.parametrize("window", [0, 16, 20, -1])
def test_window_out_of_range_rejected(markov_vectors, window):
    with pytest.raises(InvalidParameterError, match=rf"window must be an integer from 1 to 15; got {window}"):
        build_design(markov_vectors, window=window)


def test_window_not_integer_rejected(markov_vectors):
    with pytest.raises(InvalidParameterError, match=r"window must be an integer; got 2.5"):
        build_design(markov_vectors, window=2.5)


def test_non_binary_value_named():
    X = np.zeros((4, 8))
    X[3, 7] = 0.5
    with pytest.raises(InvalidDataError, match=r"X\[3, 7\] = 0.5"):
        build_design(X, window=2)


def test_nan_named():
    X = np.zeros((4, 8))
    X[1, 2] = np.nan
    with pytest.raises(InvalidDataError, match=r"X\[1, 2\] = nan"):
        build_design(X, window=2)


def test_one_dimensional_input_rejected():
    with pytest.raises(InvalidDataError, match=r"2-D array .* shape \(8,\)"):
        build_design(np.zeros(8), window=2)


def test_empty_split_rejected():
    with pytest.raises(InvalidDataError, match=r"empty \(shape \(0, 8\)\)"):
        build_design(np.zeros((0, 8)), window=2)


def test_single_vector_accepted():
    design = build_design(np.array([[1, 0, 1, 1, 0, 1]]), window=2)
    assert design.n_vectors == 1.0
    assert design.n_rows == 4


def test_single_entry_vectors_rejected():
    with pytest.raises(InvalidDataError, match=r"at least 2 entries"):
        build_design(np.zeros((3, 1)), window=1)
