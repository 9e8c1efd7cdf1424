"""Tests of regularization paths and of beta_max."""

import warnings

import numpy as np
import pytest

from convexar_opt import (
    ExactProblem,
    HingeProblem,
    InvalidDataError,
    InvalidParameterError,
    RelaxedProblem,
    build_design,
    certify,
)
from convexar_opt.datasets import load_dataset
from convexar_opt.objectives import gated_logits, loss
from convexar_opt.path import beta_max, regularization_path, validation_nll
from convexar_opt.patterns import gate_masks

PROBLEMS = {"exact": ExactProblem, "relaxed": RelaxedProblem, "hinge": HingeProblem}


@pytest.fixture(scope="module")
def mushrooms():
    return load_dataset("mushrooms")


def build(program, data, beta=1e-3, window=4, **kwargs):
    if program == "hinge":
        kwargs.setdefault("rho", 1e-3)
    return PROBLEMS[program](
        data, window=window, n_patterns=8, beta=beta, random_state=0, **kwargs
    )


@pytest.mark.parametrize("program", sorted(PROBLEMS))
def test_path_solves_largest_beta_first(program, mushrooms):
    problem = build(program, mushrooms.train[:200])
    top = beta_max(problem)
    path = regularization_path(problem, top * np.array([0.01, 1.0, 0.1, 0.001]))
    np.testing.assert_array_equal(path.betas, top * np.array([1.0, 0.1, 0.01, 0.001]))
    assert np.all(np.diff(path.objectives) < 0.0)
    assert np.all(path.relative_gaps <= 1e-6)
    assert [point.status for point in path] == ["optimal"] * 4
    assert problem.beta == pytest.approx(top * 0.001)
    assert path.solver == "IPM"


def test_path_reuses_previous_solution(mushrooms):
    problem = build("relaxed", mushrooms.train[:200])
    betas = beta_max(problem) * np.logspace(-1, -2, 6)
    path = regularization_path(problem, betas, solver="FISTA", tol=1e-7)
    assert len(path) == 6

    cold_iterations = []
    for beta in path.betas[1:]:
        fresh = build("relaxed", mushrooms.train[:200], beta=beta)
        fresh.solve(solver="FISTA", tol=1e-7)
        cold_iterations.append(fresh.solver_stats.iterations)
    warm_iterations = [point.iterations for point in path][1:]
    assert sum(warm_iterations) < sum(cold_iterations)


def test_path_ipm_warm_starts_recorded(mushrooms):
    problem = build("relaxed", mushrooms.train[:200])
    problem.solve()
    assert not problem.solver_stats.extra["warm_started"]
    path = regularization_path(problem, [2e-3, 1e-3])
    assert len(path) == 2
    assert problem.solver_stats.extra["warm_started"]
    assert problem.solver_stats.extra["warm_start_use"] in ("start", "returned")


def test_path_validation_nll(mushrooms):
    problem = build("exact", mushrooms.train[:200])
    valid = build_design(mushrooms.valid[:100], 4)
    path = regularization_path(problem, [1e-2, 1e-3], valid_design=valid)

    point = path[1]
    masks = gate_masks(valid.features, problem.gates)
    expected = loss(valid, gated_logits(valid.features, masks, point.v, point.w))
    assert point.valid_nll == pytest.approx(expected, rel=1e-12)
    assert validation_nll(problem, valid, point.v, point.w) == pytest.approx(expected, rel=1e-12)
    assert path.best() is path[int(np.argmin(path.valid_nll))]


def test_path_best_without_validation_raises(mushrooms):
    problem = build("relaxed", mushrooms.train[:200])
    path = regularization_path(problem, [1e-2])
    with pytest.raises(InvalidParameterError, match="no validation scores"):
        path.best()


@pytest.mark.parametrize(
    ("betas", "message"),
    [
        ([], "betas is empty"),
        ([1e-3, -1.0], r"betas must be finite and >= 0; got -1.0"),
        ([np.inf], "betas must be finite and >= 0; got inf"),
    ],
)
def test_path_rejects_bad_betas(betas, message, mushrooms):
    problem = build("relaxed", mushrooms.train[:50])
    with pytest.raises(InvalidParameterError, match=message):
        regularization_path(problem, betas)


def test_path_rejects_mismatched_validation(mushrooms):
    problem = build("relaxed", mushrooms.train[:50])
    wrong_window = build_design(mushrooms.valid[:50], 5)
    with pytest.raises(InvalidDataError, match=r"valid_design has window=5, intercept=True but the training design has window=4"):
        regularization_path(problem, [1e-3], valid_design=wrong_window)
    with pytest.raises(InvalidDataError, match="valid_design must be a WeightedDesign"):
        regularization_path(problem, [1e-3], valid_design=mushrooms.valid[:50])


@pytest.mark.parametrize("program", sorted(PROBLEMS))
def test_beta_max_makes_zero_optimal(program, mushrooms):
    problem = build(program, mushrooms.train[:200])
    top = beta_max(problem)
    zeros = np.zeros((problem.n_patterns, problem.design.n_weights))
    at_threshold = certify(program, problem.design, problem.masks, zeros, zeros, top, problem.rho)
    assert at_threshold.scale == 1.0
    assert abs(at_threshold.gap) <= 1e-12 * at_threshold.primal

    below = certify(program, problem.design, problem.masks, zeros, zeros, 0.5 * top, problem.rho)
    assert below.gap > 1e-6 * below.primal

    problem.beta = 0.5 * top
    value = problem.solve()
    assert value < at_threshold.primal - problem.certificate.gap


def test_beta_max_ordering(mushrooms):
    data = mushrooms.train[:200]
    relaxed = beta_max(build("relaxed", data))
    hinge = beta_max(build("hinge", data))
    exact = beta_max(build("exact", data))
    assert exact <= hinge + 1e-12
    assert hinge <= relaxed + 1e-12


def test_path_progress_bar(mushrooms, capsys):
    problem = build("relaxed", mushrooms.train[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = regularization_path(problem, [1e-2, 1e-3], progress=True)
    assert len(path) == 2
    assert "relaxed path" in capsys.readouterr().err
