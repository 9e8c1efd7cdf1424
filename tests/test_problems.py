import numpy as np
import pytest

from convexar_opt import (
    ExactProblem,
    HingeProblem,
    InvalidParameterError,
    NotSolvedError,
    RelaxedProblem,
    SolverNotInstalledError,
    installed_solvers,
)
from convexar_opt.data import WeightedDesign, build_design, window_data
from convexar_opt.patterns import sample_gates

CLASSES = {"exact": ExactProblem, "relaxed": RelaxedProblem, "hinge": HingeProblem}
TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


def _uncompressed(vectors, window, intercept=True):
    """Every raw row as its own weighted row with count 1."""
    X_lagged, y = window_data(vectors, window)
    return WeightedDesign(
        contexts=X_lagged,
        ones=y.astype(float),
        zeros=1.0 - y,
        n_vectors=float(len(vectors)),
        n_positions=vectors.shape[1] - window,
        intercept=intercept,
    )


def _solve(program, design, gates, beta=0.01, rho=1e-3):
    keywords = {"gates": gates, "beta": beta}
    if program == "hinge":
        keywords["rho"] = rho
    problem = CLASSES[program](design, **keywords)
    return problem.solve(solver="CLARABEL", **TIGHT)


@pytest.mark.parametrize("program", ["exact", "relaxed", "hinge"])
def test_compressed_and_raw_optimal_values_agree(markov_vectors, program):
    vectors = markov_vectors[:20]
    compressed = build_design(vectors, window=3)
    raw = _uncompressed(vectors, window=3)
    gates = sample_gates(compressed.n_weights, 4, random_state=1)

    assert raw.n_contexts > compressed.n_contexts
    np.testing.assert_allclose(
        _solve(program, compressed, gates), _solve(program, raw, gates), rtol=1e-6
    )


def test_relaxed_below_hinge_below_exact(markov_vectors):
    design = build_design(markov_vectors, window=4)
    gates = sample_gates(design.n_weights, 6, random_state=2)

    relaxed = _solve("relaxed", design, gates)
    hinge = _solve("hinge", design, gates)
    exact = _solve("exact", design, gates)
    assert relaxed <= hinge + 1e-7
    assert hinge <= exact + 1e-7
    assert relaxed < exact


def test_beta_path_reuses_compiled_problem(small_design):
    problem = RelaxedProblem(small_design, n_patterns=4, beta=0.05, random_state=0)
    first = problem.solve(solver="CLARABEL")
    compiled = problem.to_cvxpy()

    problem.beta = 0.01
    assert problem.to_cvxpy() is compiled
    assert compiled.param_dict["beta"].value == 0.01
    second = problem.solve(solver="CLARABEL")

    fresh = RelaxedProblem(small_design, gates=problem.gates, beta=0.01)
    assert second < first
    np.testing.assert_allclose(second, fresh.solve(solver="CLARABEL"), rtol=1e-6)


def test_rho_is_a_parameter(small_design):
    problem = HingeProblem(small_design, n_patterns=4, beta=0.01, rho=1e-4, random_state=0)
    low = problem.solve(solver="CLARABEL")
    compiled = problem.to_cvxpy()
    problem.rho = 1e-2
    high = problem.solve(solver="CLARABEL")
    assert problem.to_cvxpy() is compiled
    assert high >= low - 1e-8


def test_group_norm_is_vectorised(small_design):
    problem = ExactProblem(small_design, n_patterns=30, random_state=0)
    compiled = problem.to_cvxpy()
    # One column-wise norm per block variable, not a Python sum of 2P norms.
    assert len(str(compiled.objective).split("norm")) - 1 <= 2


def test_exact_solution_is_feasible(small_design):
    problem = ExactProblem(small_design, n_patterns=5, beta=0.01, random_state=0)
    problem.solve(solver="CLARABEL", **TIGHT)
    assert problem.certificate.constraint_violation <= 1e-7


def test_solution_before_solve_raises(small_design):
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.raises(NotSolvedError, match=r"has not been solved; call solve\(\) first"):
        problem.solution


def test_unknown_solver_lists_installed(small_design):
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.raises(InvalidParameterError, match=r"unknown solver 'GUROBY'.*CLARABEL"):
        problem.solve(solver="GUROBY")


def test_unknown_option_lists_known(small_design):
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.raises(InvalidParameterError, match=r"unknown option\(s\) \['max_iterations'\].*max_iter"):
        problem.solve(solver="CLARABEL", max_iterations=10)


def test_options_dict_not_modified(small_design):
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    options = {"max_iter": 200}
    problem.solve(solver="CLARABEL", **options)
    assert options == {"max_iter": 200}


def test_mosek_without_licence_names_alternatives(small_design):
    if "MOSEK" not in installed_solvers():
        pytest.skip("MOSEK is not installed")
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    try:
        problem.solve(solver="MOSEK")
    except SolverNotInstalledError as error:
        assert "CLARABEL" in str(error)
        assert "licence" in str(error)
    else:
        pytest.skip("a MOSEK licence is present; the no-licence error cannot be shown")


@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
def test_cvxpy_backends_agree(small_design, solver):
    if solver not in installed_solvers():
        pytest.skip(f"{solver} is not installed")
    gates = sample_gates(small_design.n_weights, 4, random_state=0)
    reference = _solve("relaxed", small_design, gates)
    problem = RelaxedProblem(small_design, gates=gates, beta=0.01)
    value = problem.solve(solver=solver)
    np.testing.assert_allclose(value, reference, rtol=1e-3 if solver == "SCS" else 1e-6)


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf")])
def test_invalid_beta_rejected(small_design, beta):
    with pytest.raises(InvalidParameterError, match=r"beta must be finite and >= 0"):
        RelaxedProblem(small_design, n_patterns=3, beta=beta)


def test_negative_rho_rejected(small_design):
    with pytest.raises(InvalidParameterError, match=r"rho must be finite and >= 0; got -0.1"):
        HingeProblem(small_design, n_patterns=3, rho=-0.1)


def test_zero_patterns_rejected(small_design):
    with pytest.raises(InvalidParameterError, match=r"n_patterns must be an integer from 1; got 0"):
        ExactProblem(small_design, n_patterns=0)


def test_gates_of_wrong_width_rejected(small_design):
    with pytest.raises(ValueError, match=r"gates must have shape \(n_patterns, 4\)"):
        ExactProblem(small_design, gates=np.ones((3, 3)))
