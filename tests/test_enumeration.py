import itertools

import numpy as np
import pytest

from convexar_opt.data import build_design
from convexar_opt.exceptions import InvalidDataError, InvalidParameterError
from convexar_opt.patterns import enumerate_patterns, gate_masks


def all_contexts(window):
    return np.array(list(itertools.product([0, 1], repeat=window)), dtype=np.float64)


def with_intercept(contexts):
    return np.hstack([contexts, np.ones((contexts.shape[0], 1))])


def mask_set(masks):
    return {column.tobytes() for column in np.asarray(masks, dtype=bool).T}


def sampled_mask_set(features, n_gates, seed):
    gates = np.random.default_rng(seed).standard_normal((n_gates, features.shape[1]))
    return mask_set(gate_masks(features, gates))


@pytest.mark.parametrize(("window", "expected"), [(1, 2), (2, 6), (3, 32), (4, 370)])
def test_count_with_every_context_no_intercept(window, expected):
    contexts = all_contexts(window)
    gates = enumerate_patterns(contexts)
    masks = gate_masks(contexts, gates)

    assert gates.shape == (expected, window)
    assert len(mask_set(masks)) == expected


@pytest.mark.parametrize("window", [1, 2, 3])
def test_intercept_matches_brute_force(window):
    features = with_intercept(all_contexts(window))
    gates = enumerate_patterns(features)
    enumerated = mask_set(gate_masks(features, gates))

    assert len(enumerated) == gates.shape[0]
    assert sampled_mask_set(features, 200_000, seed=window) == enumerated


@pytest.mark.parametrize("intercept", [False, True])
def test_real_design_matches_brute_force(mushrooms, intercept):
    design = build_design(mushrooms.train[:60], window=3, intercept=intercept)
    gates = enumerate_patterns(design.features)
    enumerated = mask_set(gate_masks(design.features, gates))

    assert len(enumerated) == gates.shape[0]
    assert sampled_mask_set(design.features, 200_000, seed=1) == enumerated


def test_subset_of_contexts_matches_brute_force():
    contexts = all_contexts(4)[[1, 3, 6, 9, 10, 12, 15]]
    gates = enumerate_patterns(contexts, random_state=3)
    enumerated = mask_set(gate_masks(contexts, gates))

    assert len(enumerated) == gates.shape[0]
    assert sampled_mask_set(contexts, 200_000, seed=2) == enumerated


def test_witnesses_interior_on_every_context():
    window = 4
    every_context = all_contexts(window)[1:]
    seen = every_context[[0, 2, 5, 7, 11, 13]]
    gates = enumerate_patterns(seen, random_state=0)

    # Interior on the training rows, and off the hyperplanes of the unseen contexts too.
    seen_margins = np.abs(seen @ gates.T) / np.linalg.norm(gates, axis=1)
    all_margins = np.abs(every_context @ gates.T) / np.linalg.norm(gates, axis=1)
    assert seen_margins.min() > 1e-3
    assert all_margins.min() > 1e-9


def test_zero_row_is_on_in_every_pattern():
    contexts = all_contexts(3)
    masks = gate_masks(contexts, enumerate_patterns(contexts))
    assert masks[0].all()


def test_repeated_and_scaled_rows_change_nothing():
    contexts = all_contexts(3)[1:]
    repeated = np.vstack([contexts, contexts[:3], 2.5 * contexts[3:5]])
    assert enumerate_patterns(repeated).shape[0] == enumerate_patterns(contexts).shape[0]


def test_only_zero_rows_give_one_pattern():
    gates = enumerate_patterns(np.zeros((3, 2)))
    assert gates.shape == (1, 2)


def test_same_seed_same_gates():
    contexts = all_contexts(3)
    np.testing.assert_array_equal(
        enumerate_patterns(contexts, random_state=5), enumerate_patterns(contexts, random_state=5)
    )


def test_too_many_patterns_raises_with_limit():
    with pytest.raises(InvalidParameterError, match=r"max_patterns = 10 activation patterns"):
        enumerate_patterns(all_contexts(3), max_patterns=10)


def test_one_dimensional_features_rejected():
    with pytest.raises(InvalidDataError, match=r"got shape \(4,\)"):
        enumerate_patterns(np.ones(4))


def test_non_finite_features_rejected():
    features = all_contexts(2)
    features[1, 0] = np.nan
    with pytest.raises(InvalidDataError, match="must be finite"):
        enumerate_patterns(features)
