"""Small fixtures shared by the tests: synthetic Markov-chain data and real data subsets."""

import numpy as np
import pytest

from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset


def markov_chain_vectors(n_vectors, length, seed=0):
    """Return binary vectors from an order-2 Markov chain, so that contexts matter."""
    rng = np.random.default_rng(seed)
    table = np.array([[0.1, 0.6], [0.7, 0.3]])
    X = np.zeros((n_vectors, length), dtype=np.uint8)
    X[:, :2] = rng.integers(0, 2, size=(n_vectors, 2))
    for position in range(2, length):
        probability = table[X[:, position - 2], X[:, position - 1]]
        X[:, position] = rng.random(n_vectors) < probability
    return X


@pytest.fixture
def markov_vectors():
    return markov_chain_vectors(60, 16, seed=0)


@pytest.fixture
def small_design(markov_vectors):
    return build_design(markov_vectors, window=3, intercept=True)


@pytest.fixture(scope="session")
def mushrooms():
    return load_dataset("mushrooms")
