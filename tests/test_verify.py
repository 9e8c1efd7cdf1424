import dataclasses
import json

import numpy as np
import pytest
from conftest import markov_chain_vectors

from convexar_opt import verify
from convexar_opt.cli import main
from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset
from convexar_opt.exceptions import InvalidDataError, InvalidParameterError
from convexar_opt.objectives import network_objective
from convexar_opt.patterns import enumerate_patterns, gate_masks
from convexar_opt.problems import ExactProblem
from convexar_opt.verify import (
    beta_max,
    fit_relu_network,
    network_objective_and_gradient,
    verify_equivalence,
)


@pytest.fixture(scope="module")
def mushrooms_result():
    X = load_dataset("mushrooms").train[:40]
    return verify_equivalence(X, 3, beta=0.1, n_restarts=6, random_state=0)


def test_no_run_below_optimum_on_mushrooms(mushrooms_result):
    assert mushrooms_result["nonconvex"]["below_optimum"] == 0


def test_best_run_reaches_optimum_on_mushrooms(mushrooms_result):
    optimum = mushrooms_result["convex_optimum"]
    assert abs(mushrooms_result["nonconvex"]["best"] - optimum) <= 1e-3 * abs(optimum)
    assert mushrooms_result["nonconvex"]["best"] >= optimum - mushrooms_result["nonconvex"]["tolerance"]


def test_reconstruction_equals_optimum_on_mushrooms(mushrooms_result):
    optimum = mushrooms_result["convex_optimum"]
    assert mushrooms_result["reconstructed_objective"] == pytest.approx(optimum, rel=1e-7)


def test_certificate_fields_and_accuracy(mushrooms_result):
    certificate = mushrooms_result["certificate"]
    for key in ("primal", "dual", "gap", "relative_gap", "status", "solver"):
        assert key in certificate
    assert certificate["gap"] >= -1e-12
    assert certificate["relative_gap"] <= 1e-6


def test_optimality_bound_is_valid(mushrooms_result):
    runs = mushrooms_result["nonconvex"]
    assert runs["optimality_bound"] >= runs["best"] - mushrooms_result["convex_optimum"]
    assert runs["optimality_bound"] >= 0.0


def test_result_counts_and_json(mushrooms_result):
    design = build_design(load_dataset("mushrooms").train[:40], 3)
    assert mushrooms_result["n_contexts"] == design.n_contexts
    assert mushrooms_result["n_patterns"] == enumerate_patterns(design.features).shape[0]
    assert len(mushrooms_result["nonconvex"]["runs"]) == 6
    assert mushrooms_result["settings"]["hidden_units"] >= design.n_contexts + 1
    assert json.loads(json.dumps(mushrooms_result)) == mushrooms_result


def test_markov_no_intercept_small_width():
    X = markov_chain_vectors(60, 16, seed=0)
    result = verify_equivalence(X, 3, beta=0.05, intercept=False, n_restarts=4, hidden_units=8, random_state=1)
    optimum = result["convex_optimum"]

    assert result["n_patterns"] == 32
    assert result["nonconvex"]["below_optimum"] == 0
    assert abs(result["nonconvex"]["best"] - optimum) <= 1e-3 * abs(optimum)


def test_clarabel_fallback_without_native_solver(monkeypatch):
    monkeypatch.setattr(verify, "installed_solvers", lambda program=None: ["CLARABEL", "SCS"])
    X = markov_chain_vectors(60, 16, seed=0)
    result = verify_equivalence(X, 3, beta=0.05, intercept=False, n_restarts=3, hidden_units=8, random_state=2)

    assert result["certificate"]["solver"] == "CLARABEL"
    assert result["nonconvex"]["below_optimum"] == 0
    assert result["reconstructed_objective"] == pytest.approx(result["convex_optimum"], rel=1e-7)


def test_run_below_optimum_is_counted(monkeypatch, capsys):
    def too_low(*args, **kwargs):
        fit = fit_relu_network(*args, **kwargs)
        return dataclasses.replace(fit, objective=fit.objective - 1.0)

    monkeypatch.setattr(verify, "fit_relu_network", too_low)
    status = main(["verify", "--dataset", "mushrooms", "--vectors", "20", "--restarts", "2", "--quiet"])

    assert status == 1
    assert "runs below the optimum minus the certified tolerance" in capsys.readouterr().out


def test_gradient_matches_central_differences():
    design = build_design(markov_chain_vectors(30, 12, seed=2), window=3, intercept=True)
    rng = np.random.default_rng(0)
    hidden_units = 5
    parameters = rng.standard_normal(hidden_units * design.n_weights + hidden_units)
    value, gradient = network_objective_and_gradient(parameters, design, hidden_units, 0.2)

    step = 1e-6
    numeric = np.empty_like(parameters)
    for index in range(parameters.size):
        shift = np.zeros_like(parameters)
        shift[index] = step
        upper, _ = network_objective_and_gradient(parameters + shift, design, hidden_units, 0.2)
        lower, _ = network_objective_and_gradient(parameters - shift, design, hidden_units, 0.2)
        numeric[index] = (upper - lower) / (2 * step)

    split = hidden_units * design.n_weights
    U, alpha = parameters[:split].reshape(hidden_units, -1), parameters[split:]
    assert value == pytest.approx(network_objective(design, U, alpha, 0.2), rel=1e-14)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8)


def test_fit_decreases_objective_and_is_seeded():
    design = build_design(markov_chain_vectors(30, 12, seed=2), window=3, intercept=False)
    first = fit_relu_network(design, 6, 0.05, random_state=3)
    again = fit_relu_network(design, 6, 0.05, random_state=3)
    zero_model = design.n_rows * np.log(2.0) / design.n_vectors

    assert first.objective < zero_model
    assert first.objective == again.objective
    assert first.network.hidden_units == 6


def test_beta_max_separates_zero_solution():
    design = build_design(markov_chain_vectors(60, 16, seed=0), window=3, intercept=False)
    gates = enumerate_patterns(design.features)
    threshold = beta_max(design, gate_masks(design.features, gates))
    zero_model = design.n_rows * np.log(2.0) / design.n_vectors

    above = ExactProblem(design, gates=gates, beta=1.01 * threshold)
    below = ExactProblem(design, gates=gates, beta=0.9 * threshold)
    assert above.solve() == pytest.approx(zero_model, rel=1e-6)
    assert below.solve() < zero_model - 1e-6


def test_cli_writes_json_and_reports(tmp_path, capsys):
    out = tmp_path / "verify.json"
    status = main(["verify", "--dataset", "mushrooms", "--vectors", "40", "--window", "3", "--restarts", "3", "--json", str(out), "--quiet"])
    data = json.loads(out.read_text())
    printed = capsys.readouterr().out

    assert status == 0
    assert data["dataset"] == "mushrooms"
    assert data["settings"]["n_vectors"] == 40
    assert "convex optimum (exact, all patterns)" in printed
    assert "runs below the optimum minus the certified tolerance" in printed


def test_cli_user_npz(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, train=markov_chain_vectors(30, 12, seed=4))
    assert main(["verify", "--dataset", str(path), "--window", "2", "--restarts", "2", "--quiet"]) == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--vectors", "0"], "--vectors must be from 1 to 2000, the number of training vectors of 'mushrooms'; got 0"),
        (["--window", "7"], "window must be at most 6 for exact enumeration of the activation patterns; got 7"),
        (["--dataset", "no_such_set"], "--dataset 'no_such_set' is neither a bundled data set"),
        (["--beta", "0"], "beta must be finite and > 0; got 0.0"),
        (["--restarts", "0"], "n_restarts must be an integer from 1; got 0"),
    ],
)
def test_cli_bad_input_exits_with_message(arguments, message, capsys):
    status = main(["verify", "--quiet", "--vectors", "20", *arguments])
    captured = capsys.readouterr()

    assert status == 2
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_window_above_limit_rejected():
    X = markov_chain_vectors(10, 12, seed=0)
    with pytest.raises(InvalidParameterError, match="window must be at most 6 .*; got 8"):
        verify_equivalence(X, 8)


def test_too_many_patterns_rejected():
    X = markov_chain_vectors(60, 16, seed=0)
    with pytest.raises(InvalidParameterError, match="more than max_patterns = 20 activation patterns"):
        verify_equivalence(X, 3, max_patterns=20)


def test_hidden_units_zero_rejected():
    X = markov_chain_vectors(10, 12, seed=0)
    with pytest.raises(InvalidParameterError, match="hidden_units must be an integer from 1; got 0"):
        verify_equivalence(X, 2, hidden_units=0)


def test_non_binary_data_rejected():
    X = markov_chain_vectors(10, 12, seed=0).astype(float)
    X[2, 5] = 0.5
    with pytest.raises(InvalidDataError, match=r"X_train\[2, 5\] = 0.5"):
        verify_equivalence(X, 2)
