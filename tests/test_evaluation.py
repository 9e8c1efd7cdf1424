import numpy as np
import pytest

from convexar_opt._numeric import log_sigmoid, softplus, weighted_bernoulli_nll
from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset
from convexar_opt.evaluation import accuracy, binary_cross_entropy, count_logits, nll_per_vector, trivial_nll
from convexar_opt.objectives import loss


def test_half_everywhere_on_mnist_scores_774_ln2():
    test = load_dataset("binarized_mnist").test[:200]
    design = build_design(test, window=10)

    value = nll_per_vector(design, np.zeros(design.n_contexts))
    assert design.n_positions == 774
    np.testing.assert_allclose(value, 774 * np.log(2.0), rtol=1e-12)
    np.testing.assert_allclose(value, 536.4959, atol=5e-5)
    np.testing.assert_allclose(trivial_nll(design), value, rtol=1e-12)


@pytest.mark.parametrize("logit", [800.0, -800.0])
def test_extreme_logits_give_finite_exact_losses(logit):
    logits = np.array([logit])
    assert np.isfinite(softplus(logits)).all()
    assert log_sigmoid(logits)[0] == pytest.approx(min(logit, 0.0), abs=1e-12)
    wrong_target = 0.0 if logit > 0 else 1.0
    assert binary_cross_entropy(logits, [wrong_target])[0] == pytest.approx(800.0)
    assert binary_cross_entropy(logits, [1.0 - wrong_target])[0] == pytest.approx(0.0, abs=1e-300)


def test_weighted_nll_at_extreme_logits():
    value = weighted_bernoulli_nll(np.array([800.0, -800.0]), np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    assert value == pytest.approx(1600.0)


def test_identical_window_with_both_labels_costs_2_ln2():
    # Two vectors that differ only in the target after the same window.
    X = np.array([[1, 0, 1], [1, 0, 0]])
    design = build_design(X, window=2, intercept=False)
    design = design.__class__(
        contexts=design.contexts,
        ones=design.ones,
        zeros=design.zeros,
        n_vectors=1.0,
        n_positions=design.n_positions,
        intercept=False,
    )
    # The best possible logit for a context seen once with 1 and once with 0 is 0.
    assert loss(design, np.zeros(design.n_contexts)) == pytest.approx(2 * np.log(2.0), abs=1e-12)
    assert loss(design, np.full(design.n_contexts, 0.3)) > 2 * np.log(2.0)


def test_accuracy_predicts_one_only_above_zero():
    X = np.array([[1, 0, 1], [1, 0, 1], [1, 0, 0]])
    design = build_design(X, window=2, intercept=False)
    assert accuracy(design, np.array([0.0])) == pytest.approx(1 / 3)
    assert accuracy(design, np.array([0.1])) == pytest.approx(2 / 3)


def test_count_reference_on_adult_matches_recorded_level():
    adult = load_dataset("adult")
    train = build_design(adult.train, window=10)
    test = build_design(adult.test, window=10)
    value = nll_per_vector(test, count_logits(train, test))
    # Measured once with these files: 30.48 nats per vector.
    assert 30.0 < value < 31.0


def test_count_logits_unseen_context_is_half():
    train = build_design(np.array([[0, 0, 1, 1]]), window=2)
    test = build_design(np.array([[1, 1, 1, 0]]), window=2)
    logits = count_logits(train, test)
    seen = [tuple(row) for row in train.contexts.tolist()]
    for row, logit in zip(test.contexts.tolist(), logits):
        if tuple(row) not in seen:
            assert logit == 0.0
