"""Tests of the PyTorch modules against the NumPy objectives, on real Mushrooms vectors."""

import numpy as np
import pytest
import torch

from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset
from convexar_opt.exceptions import InvalidDataError, InvalidParameterError
from convexar_opt.objectives import loss_gradient, network_objective, program_objective
from convexar_opt.patterns import gate_masks, sample_gates
from convexar_opt.torch_model import (
    GatedAR,
    HingeAR,
    TwoLayerReLUAR,
    design_nll,
    design_objective,
    design_tensors,
    weighted_nll,
)

BETA = 1e-3
RHO = 1e-4


@pytest.fixture(scope="module", params=[True, False], ids=["intercept", "no_intercept"])
def design(request):
    vectors = load_dataset("mushrooms").train[:300]
    return build_design(vectors, window=4, intercept=request.param)


@pytest.fixture(scope="module")
def weights(design):
    rng = np.random.default_rng(7)
    gates = sample_gates(design.n_weights, 6, random_state=3)
    return {
        "gates": gates,
        "masks": gate_masks(design.features, gates),
        "v": rng.standard_normal(gates.shape),
        "w": rng.standard_normal(gates.shape),
        "U": rng.standard_normal((5, design.n_weights)),
        "alpha": rng.standard_normal(5),
    }


def test_network_objective_matches_numpy(design, weights):
    network = TwoLayerReLUAR.from_weights(weights["U"], weights["alpha"])
    expected = network_objective(design, weights["U"], weights["alpha"], BETA)

    value = design_objective(network, design, BETA).item()

    np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-10)


def test_relaxed_objective_matches_numpy(design, weights):
    model = GatedAR.from_weights(weights["gates"], weights["v"])
    expected = program_objective(
        "relaxed", design, weights["masks"], weights["v"], np.zeros_like(weights["v"]), BETA
    )

    value = design_objective(model, design, BETA).item()

    np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-10)


def test_hinge_objective_matches_numpy(design, weights):
    model = HingeAR.from_weights(weights["gates"], weights["v"], weights["w"])
    expected = program_objective(
        "hinge", design, weights["masks"], weights["v"], weights["w"], BETA, RHO
    )

    value = design_objective(model, design, BETA, RHO).item()

    np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-10)


def test_hinge_zero_inside_cones(design, weights):
    # A gate lies in its own cone: (2 d_i - 1) x^T g_i = |x^T g_i| >= 0 on every row.
    model = HingeAR.from_weights(weights["gates"], 2.0 * weights["gates"], 0.5 * weights["gates"])
    tensors = design_tensors(design)

    hinge = model.hinge(tensors["features"], tensors["counts"]).item()

    assert hinge == 0.0


def test_relaxed_gradient_matches_formula(design, weights):
    model = GatedAR.from_weights(weights["gates"], weights["v"])
    design_objective(model, design, BETA).backward()
    logits = model(design_tensors(design)["features"]).detach().numpy()
    residual = loss_gradient(design, logits)
    masked = weights["masks"] * residual[:, None]
    norms = np.linalg.norm(weights["v"], axis=1, keepdims=True)
    expected = masked.T @ design.features + BETA * weights["v"] / norms

    np.testing.assert_allclose(model.z.grad.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_precomputed_masks_give_same_logits(design, weights):
    model = HingeAR.from_weights(weights["gates"], weights["v"], weights["w"])
    features = design_tensors(design)["features"]
    masks = torch.as_tensor(weights["masks"])

    np.testing.assert_array_equal(
        model(features, masks=masks).detach().numpy(), model(features).detach().numpy()
    )


def test_gated_models_start_at_zero(design, weights):
    expected = design.n_rows * np.log(2.0) / design.n_vectors

    for model in (GatedAR(weights["gates"]), HingeAR(weights["gates"])):
        value = design_objective(model, design, BETA, 0.0).item()
        np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_float32_objective_close_to_float64(design, weights):
    double = TwoLayerReLUAR.from_weights(weights["U"], weights["alpha"])
    single = TwoLayerReLUAR.from_weights(weights["U"], weights["alpha"], dtype=torch.float32)

    value = design_objective(single, design, BETA)

    assert value.dtype == torch.float32
    expected = design_objective(double, design, BETA).item()
    np.testing.assert_allclose(value.item(), expected, rtol=1e-5)


def test_weighted_nll_extreme_logits():
    logits = torch.tensor(
        [800.0, -800.0, 800.0, -800.0, 0.0], dtype=torch.float64, requires_grad=True
    )
    ones = torch.tensor([2.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    zeros = torch.tensor([0.0, 3.0, 1.0, 0.0, 1.0], dtype=torch.float64)

    value = weighted_nll(logits, ones, zeros)
    value.backward()

    # Each confident wrong row costs 800 nats, each confident right row 0 and the
    # uncertain row log 2 per count.
    np.testing.assert_allclose(value.item(), 800.0 + 800.0 + 2.0 * np.log(2.0), rtol=1e-14)
    assert torch.all(torch.isfinite(logits.grad))
    np.testing.assert_allclose(logits.grad.numpy(), [0.0, 0.0, 1.0, -1.0, 0.0], atol=1e-14)


def test_network_objective_finite_for_huge_weights(design):
    U = np.full((2, design.n_weights), 200.0)
    alpha = np.array([4.0, 4.0])
    network = TwoLayerReLUAR.from_weights(U, alpha)

    value = design_objective(network, design, 0.0).item()

    assert np.isfinite(value)
    np.testing.assert_allclose(value, network_objective(design, U, alpha, 0.0), rtol=1e-12)


def test_initialisation_uses_given_generator():
    state = torch.random.get_rng_state()

    first = TwoLayerReLUAR(11, 50, generator=torch.Generator().manual_seed(5))
    second = TwoLayerReLUAR(11, 50, generator=torch.Generator().manual_seed(5))

    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first.U, second.U)
    assert torch.equal(first.alpha, second.alpha)
    assert first.U.abs().max().item() <= 1.0 / np.sqrt(11)
    assert first.alpha.abs().max().item() <= 1.0 / np.sqrt(50)


def test_from_weights_leaves_global_generator_alone():
    state = torch.random.get_rng_state()

    TwoLayerReLUAR.from_weights(np.ones((3, 4)), np.ones(3))

    assert torch.equal(torch.random.get_rng_state(), state)


def test_numpy_weights_layout(weights):
    gated = GatedAR.from_weights(weights["gates"], weights["v"]).numpy_weights()
    hinge = HingeAR.from_weights(weights["gates"], weights["v"], weights["w"]).numpy_weights()

    np.testing.assert_array_equal(gated["v"], weights["v"])
    np.testing.assert_array_equal(gated["w"], np.zeros_like(weights["v"]))
    np.testing.assert_array_equal(hinge["w"], weights["w"])


def test_design_nll_excludes_penalty(design, weights):
    model = GatedAR.from_weights(weights["gates"], weights["v"])
    expected = design_objective(model, design, BETA).item() - BETA * model.penalty().item()

    np.testing.assert_allclose(design_nll(model, design).item(), expected, rtol=1e-12)


def test_features_of_wrong_width_rejected(weights):
    model = GatedAR(weights["gates"])
    features = torch.zeros((4, weights["gates"].shape[1] + 1), dtype=torch.float64)

    message = r"features must have shape \(n_rows, \d+\).*got \(4, \d+\)"
    with pytest.raises(InvalidDataError, match=message):
        model(features)


def test_masks_of_wrong_shape_rejected(weights):
    model = GatedAR(weights["gates"])
    features = torch.zeros((4, weights["gates"].shape[1]), dtype=torch.float64)

    with pytest.raises(InvalidDataError, match=r"masks must have shape \(4, 6\).*got \(4, 5\)"):
        model(features, masks=torch.zeros((4, 5), dtype=torch.bool))


def test_nonfinite_gates_rejected():
    gates = np.ones((3, 5))
    gates[1, 2] = np.nan

    with pytest.raises(InvalidDataError, match="gates must be finite"):
        GatedAR(gates)


def test_one_dimensional_gates_rejected():
    with pytest.raises(InvalidDataError, match=r"got shape \(5,\)"):
        HingeAR(np.ones(5))


def test_mismatched_alpha_rejected():
    with pytest.raises(InvalidDataError, match=r"alpha must have shape \(3,\).*got \(4,\)"):
        TwoLayerReLUAR.from_weights(np.ones((3, 5)), np.ones(4))


def test_mismatched_hinge_weights_rejected(weights):
    message = r"w must have the shape of the gates, \(6, \d+\), but got \(2, \d+\)"
    with pytest.raises(InvalidDataError, match=message):
        HingeAR.from_weights(weights["gates"], weights["v"], weights["v"][:2])


def test_zero_hidden_units_rejected():
    message = "hidden_units must be an integer from 1; got 0"
    with pytest.raises(InvalidParameterError, match=message):
        TwoLayerReLUAR(5, 0)


def test_integer_dtype_rejected():
    message = "dtype must be torch.float32 or torch.float64; got torch.int64"
    with pytest.raises(InvalidParameterError, match=message):
        TwoLayerReLUAR(5, 3, dtype=torch.int64)


def test_rho_for_model_without_hinge_rejected(design, weights):
    message = r"rho = 0.0001 applies only to HingeAR.*GatedAR"
    with pytest.raises(InvalidParameterError, match=message):
        design_objective(GatedAR(weights["gates"]), design, BETA, RHO)


def test_negative_beta_rejected(design, weights):
    with pytest.raises(InvalidParameterError, match="beta must be finite and >= 0; got -1.0"):
        design_objective(GatedAR(weights["gates"]), design, -1.0)


def test_unknown_module_rejected(design):
    with pytest.raises(InvalidParameterError, match="got Linear"):
        design_objective(torch.nn.Linear(3, 1), design, BETA)
