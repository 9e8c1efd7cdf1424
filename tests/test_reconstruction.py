import numpy as np
import pytest
from conftest import markov_chain_vectors

from convexar_opt.certificates import project_to_cones
from convexar_opt.data import build_design
from convexar_opt.exceptions import InvalidDataError, InvalidParameterError
from convexar_opt.objectives import constraint_violation, gated_logits, program_objective
from convexar_opt.patterns import enumerate_patterns, gate_masks, sample_gates
from convexar_opt.problems import ExactProblem, HingeProblem, RelaxedProblem
from convexar_opt.reconstruction import (
    ReLUNetwork,
    check_reconstruction,
    cone_decomposition,
    network_to_convex,
    reconstruct_network,
    to_torch,
    torch_network_objective,
)

BETA = 0.1


@pytest.fixture(scope="module", params=[False, True], ids=["no_intercept", "intercept"])
def design(request):
    return build_design(markov_chain_vectors(60, 16, seed=0), window=3, intercept=request.param)


@pytest.fixture(scope="module")
def all_gates(design):
    return enumerate_patterns(design.features)


@pytest.fixture(scope="module")
def exact_problem(design, all_gates):
    problem = ExactProblem(design, gates=all_gates, beta=BETA)
    problem.solve()
    return problem


def random_feasible_point(design, masks, seed):
    rng = np.random.default_rng(seed)
    shape = (masks.shape[1], design.n_weights)
    v = project_to_cones(design, masks, rng.standard_normal(shape))
    w = project_to_cones(design, masks, rng.standard_normal(shape))
    return v, w


def test_exact_network_matches_convex(exact_problem):
    report = check_reconstruction(exact_problem)
    scale = abs(report.convex_objective)

    assert report.program == "exact"
    assert abs(report.network_objective - report.convex_objective) <= 1e-7 * scale
    assert abs(report.network_objective_torch - report.convex_objective) <= 1e-7 * scale
    assert report.difference == pytest.approx(report.network_objective - report.convex_objective)


def test_exact_report_objective_is_optimum(exact_problem):
    report = check_reconstruction(exact_problem, include_torch=False)
    certificate = exact_problem.certificate
    assert certificate.dual - 1e-9 <= report.convex_objective <= certificate.primal + 1e-9


def test_lemma_a_any_masks_any_feasible_point(design):
    masks = gate_masks(design.features, sample_gates(design.n_weights, 7, random_state=4))
    v, w = random_feasible_point(design, masks, seed=1)
    network = reconstruct_network(v, w)

    np.testing.assert_allclose(
        network.logits(design.features), gated_logits(design.features, masks, v, w), rtol=0, atol=1e-12
    )
    convex = program_objective("exact", design, masks, v, w, BETA)
    assert network.objective(design, BETA) == pytest.approx(convex, rel=1e-13)


def test_units_are_balanced_with_signed_outputs():
    v = np.array([[3.0, 4.0], [0.0, 0.0]])
    w = np.array([[0.0, 0.0], [0.0, 2.0]])
    network = reconstruct_network(v, w)

    assert network.hidden_units == 2
    np.testing.assert_allclose(np.linalg.norm(network.U, axis=1), np.abs(network.alpha))
    np.testing.assert_allclose(network.alpha, [np.sqrt(5.0), -np.sqrt(2.0)])
    np.testing.assert_allclose(network.alpha[:, None] * network.U, [[3.0, 4.0], [0.0, -2.0]])


def test_tol_drops_small_blocks():
    v = np.array([[1e-9, 0.0], [1.0, 1.0]])
    assert reconstruct_network(v, None, tol=1e-6).hidden_units == 1
    assert reconstruct_network(v, None).hidden_units == 2


def test_all_zero_point_gives_empty_network(design):
    zero = np.zeros((4, design.n_weights))
    network = reconstruct_network(zero, zero)

    assert network.hidden_units == 0
    assert network.U.shape == (0, design.n_weights)


def test_empty_network_objective_is_log_two_per_position(design):
    network = reconstruct_network(np.zeros((2, design.n_weights)))
    expected = design.n_rows * np.log(2.0) / design.n_vectors
    assert network.objective(design, BETA) == pytest.approx(expected, rel=1e-14)


def test_torch_objective_rejects_empty_network(design):
    network = reconstruct_network(np.zeros((2, design.n_weights)))
    with pytest.raises(InvalidParameterError, match="no hidden unit"):
        torch_network_objective(network, design, BETA)


def test_to_torch_gives_same_logits(exact_problem):
    import torch

    network = reconstruct_network(exact_problem.solution.v, exact_problem.solution.w)
    module = to_torch(network)
    features = exact_problem.design.features
    logits = module(torch.as_tensor(features, dtype=torch.float64)).detach().numpy()

    assert module.U.dtype == torch.float64
    np.testing.assert_allclose(logits, network.logits(features), rtol=1e-13, atol=1e-13)


def test_relaxed_solution_reports_violation(design, all_gates):
    problem = RelaxedProblem(design, gates=all_gates, beta=BETA)
    problem.solve()
    report = check_reconstruction(problem)

    assert report.program == "relaxed"
    assert report.constraint_violation > 1e-3
    assert abs(report.difference) > 1e-3
    assert report.network_objective_torch == pytest.approx(report.network_objective, rel=1e-12)


def test_decomposition_feasible_upper_bound(design, all_gates, exact_problem):
    problem = RelaxedProblem(design, gates=all_gates, beta=BETA)
    problem.solve()
    report = check_reconstruction(problem, include_torch=False)

    assert report.decomposition_violation == 0.0
    assert report.decomposition_objective >= exact_problem.certificate.dual - 1e-9
    assert report.decomposition_objective >= report.convex_objective


def test_cone_decomposition_keeps_gated_logits(design):
    gates = sample_gates(design.n_weights, 6, random_state=2)
    masks = gate_masks(design.features, gates)
    z = np.random.default_rng(3).standard_normal(gates.shape)
    v, w = cone_decomposition(design, gates, z)

    np.testing.assert_allclose(v - w, z, atol=1e-12)
    assert constraint_violation(design.features, masks, v, w) == 0.0
    np.testing.assert_allclose(
        gated_logits(design.features, masks, v, w), gated_logits(design.features, masks, z), atol=1e-12
    )


def test_cone_decomposition_rejects_boundary_gate():
    design = build_design(markov_chain_vectors(20, 10, seed=1), window=2, intercept=False)
    gates = np.array([[1.0, 0.0]])
    z = np.array([[0.0, -1.0]])
    with pytest.raises(InvalidParameterError, match="gate 0 is not interior"):
        cone_decomposition(design, gates, z)


def test_hinge_report_has_no_decomposition(design, all_gates):
    problem = HingeProblem(design, gates=all_gates, beta=BETA, rho=1e-3)
    problem.solve()
    report = check_reconstruction(problem, include_torch=False)

    assert report.program == "hinge"
    assert report.decomposition_objective is None
    assert report.convex_objective == pytest.approx(problem.objective(problem.solution.v, problem.solution.w), rel=1e-12)


def test_lemma_b_round_trip(exact_problem):
    design = exact_problem.design
    network = reconstruct_network(exact_problem.solution.v, exact_problem.solution.w)
    v, w = network_to_convex(network.U, network.alpha, design, exact_problem.gates)

    assert constraint_violation(design.features, exact_problem.masks, v, w) <= 1e-12
    np.testing.assert_allclose(
        gated_logits(design.features, exact_problem.masks, v, w), network.logits(design.features), atol=1e-10
    )
    convex = program_objective("exact", design, exact_problem.masks, v, w, BETA)
    assert convex <= network.objective(design, BETA) + 1e-12


def test_lemma_b_random_network(design, all_gates):
    rng = np.random.default_rng(7)
    network = ReLUNetwork(U=rng.standard_normal((12, design.n_weights)), alpha=rng.standard_normal(12))
    masks = gate_masks(design.features, all_gates)
    v, w = network_to_convex(network.U, network.alpha, design, masks)

    assert constraint_violation(design.features, masks, v, w) <= 1e-12
    np.testing.assert_allclose(
        gated_logits(design.features, masks, v, w), network.logits(design.features), atol=1e-10
    )
    convex = program_objective("exact", design, masks, v, w, BETA)
    assert convex <= network.objective(design, BETA) + 1e-12
    assert convex < network.objective(design, BETA) - 1e-3


def test_lemma_b_accepts_gates_or_masks(design, all_gates):
    rng = np.random.default_rng(8)
    U, alpha = rng.standard_normal((5, design.n_weights)), rng.standard_normal(5)
    from_gates = network_to_convex(U, alpha, design, all_gates)
    from_masks = network_to_convex(U, alpha, design, gate_masks(design.features, all_gates))
    np.testing.assert_array_equal(from_gates[0], from_masks[0])
    np.testing.assert_array_equal(from_gates[1], from_masks[1])


def test_lemma_b_rejects_missing_pattern(design):
    gates = sample_gates(design.n_weights, 1, random_state=0)
    rng = np.random.default_rng(9)
    U = rng.standard_normal((20, design.n_weights))
    with pytest.raises(InvalidParameterError, match=r"unit \d+ has an activation pattern that is not among the 1 masks"):
        network_to_convex(U, np.ones(20), design, gates)


def test_mismatched_blocks_rejected():
    with pytest.raises(InvalidDataError, match=r"same shape; got \(2, 3\) and \(2, 2\)"):
        reconstruct_network(np.ones((2, 3)), np.ones((2, 2)))


def test_negative_tol_rejected():
    with pytest.raises(InvalidParameterError, match="tol must be finite and >= 0; got -1.0"):
        reconstruct_network(np.ones((2, 3)), tol=-1.0)
