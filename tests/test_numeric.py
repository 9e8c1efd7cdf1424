import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from convexar_opt._numeric import binary_entropy, log_sigmoid, softplus, weighted_bernoulli_nll
from convexar_opt.data import build_design, window_data
from convexar_opt.objectives import gated_logits, loss
from convexar_opt.patterns import gate_masks, sample_gates

finite_logits = arrays(np.float64, st.integers(1, 64), elements=st.floats(-1e4, 1e4))


@given(finite_logits)
def test_log_sigmoid_finite_and_nonpositive(t):
    out = log_sigmoid(t)
    assert np.all(np.isfinite(out))
    assert np.all(out <= 0.0)


@given(finite_logits)
def test_softplus_is_log_sigmoid_of_negative(t):
    np.testing.assert_allclose(softplus(t), -log_sigmoid(-t), rtol=1e-12, atol=1e-300)
    assert np.all(softplus(t) >= np.maximum(t, 0.0))


@given(arrays(np.float64, st.integers(1, 32), elements=st.floats(0.0, 1.0)))
def test_binary_entropy_in_range(t):
    out = binary_entropy(t)
    assert np.all(out >= 0.0)
    assert np.all(out <= np.log(2.0) + 1e-15)


@given(finite_logits)
def test_weighted_nll_equals_row_sum(t):
    ones = np.arange(t.size) % 3
    zeros = (np.arange(t.size) + 1) % 2
    expected = np.sum(ones * softplus(-t) + zeros * softplus(t))
    np.testing.assert_allclose(weighted_bernoulli_nll(t, ones, zeros), expected, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(4, 10)), elements=st.integers(0, 1)),
    st.integers(1, 3),
    st.integers(0, 2**16),
)
def test_compressed_loss_equals_raw_loss(X, window, seed):
    design = build_design(X, window=window)
    gates = sample_gates(design.n_weights, 3, random_state=seed)
    z = np.random.default_rng(seed).standard_normal((3, design.n_weights))
    compressed = loss(design, gated_logits(design.features, gate_masks(design.features, gates), z))

    X_lagged, y = window_data(X, window)
    features = np.hstack([X_lagged.astype(float), np.ones((len(y), 1))])
    raw_logits = gated_logits(features, gate_masks(features, gates), z)
    raw = np.sum(softplus(raw_logits) - y * raw_logits) / X.shape[0]
    np.testing.assert_allclose(compressed, raw, rtol=1e-12, atol=1e-12)
