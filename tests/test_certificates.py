"""Validity of the duality-gap certificates against independent high-accuracy solves.

A certificate is valid when its dual value is a lower bound on the optimum, that is
when ``gap >= primal - optimum`` at every point. The reference optima of (5) and (6)
come from an accelerated proximal-gradient method written here. Its prox is the
group soft-threshold, applied after a projection onto the cones for (5), and it runs
until its own iterate is certified to a relative gap of 1e-10. The hinge program with
a small rho uses the package's default solver.
"""

import warnings

import numpy as np
import pytest
from conftest import markov_chain_vectors

from convexar_opt.certificates import certify, project_to_cones
from convexar_opt.data import build_design
from convexar_opt.datasets import load_dataset
from convexar_opt.exceptions import ConvergenceWarning
from convexar_opt.objectives import gated_logits, loss_gradient, program_objective
from convexar_opt.patterns import enumerate_patterns, gate_masks, sample_gates
from convexar_opt.problems import ExactProblem, HingeProblem
from convexar_opt.verify import beta_max

SMALL_RHO = 1e-3
# Far above every optimal cone multiplier on these instances, so (7) equals (5).
LARGE_RHO = 1.0
N_POINTS = 8


def _soft_threshold(blocks, threshold):
    norms = np.linalg.norm(blocks, axis=1, keepdims=True)
    return np.maximum(0.0, 1.0 - threshold / np.maximum(norms, 1e-300)) * blocks


def _lipschitz_constant(design, masks):
    weighted = np.sqrt(design.counts)[:, None] * np.hstack(
        [masks[:, [i]] * design.features for i in range(masks.shape[1])]
    )
    return 2.0 * np.linalg.norm(weighted, 2) ** 2 / (4.0 * design.n_vectors)


def proximal_gradient(program, design, masks, beta, v, w, max_iter=40_000, tol=1e-10):
    """Run FISTA with gradient restart on (5) or (6) until the certified relative gap is below tol.

    For (5) the prox of ``beta * norm + indicator of a cone`` is the group
    soft-threshold of the projection onto the cone.
    """
    n_patterns = masks.shape[1]
    step = 1.0 / _lipschitz_constant(design, masks)
    current = np.vstack([v, w])
    extrapolated = current.copy()
    momentum = 1.0

    for iteration in range(max_iter):
        logits = gated_logits(design.features, masks, extrapolated[:n_patterns], extrapolated[n_patterns:])
        correlations = (masks * loss_gradient(design, logits)[:, None]).T @ design.features
        moved = extrapolated - step * np.vstack([correlations, -correlations])
        if program == "exact":
            moved = np.vstack(
                [project_to_cones(design, masks, moved[:n_patterns]), project_to_cones(design, masks, moved[n_patterns:])]
            )
        following = _soft_threshold(moved, step * beta)

        next_momentum = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum**2))
        if np.sum((extrapolated - following) * (following - current)) > 0.0:
            next_momentum = 1.0
        extrapolated = following + (momentum - 1.0) / next_momentum * (following - current)
        current, momentum = following, next_momentum

        if iteration % 50 == 0:
            certificate = certify(program, design, masks, current[:n_patterns], current[n_patterns:], beta)
            if certificate.relative_gap <= tol:
                break
    return current[:n_patterns], current[n_patterns:]


def _instance(name):
    if name == "markov_r3_all":
        design = build_design(markov_chain_vectors(60, 16, seed=0), window=3, intercept=False)
        gates = enumerate_patterns(design.features)
    elif name == "markov_r4_sampled":
        design = build_design(markov_chain_vectors(60, 16, seed=0), window=4, intercept=False)
        gates = sample_gates(design.n_weights, 6, random_state=1)
    else:
        design = build_design(load_dataset("mushrooms").train[:300], window=3, intercept=True)
        gates = enumerate_patterns(design.features)
    masks = gate_masks(design.features, gates)
    return design, gates, masks, 0.03 * beta_max(design, masks)


def _default_solver_point(problem, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        problem.solve(**options)
    return problem.solution.v, problem.solution.w


@pytest.fixture(scope="module", params=["markov_r3_all", "markov_r4_sampled", "mushrooms_r3_all"])
def instance(request):
    design, gates, masks, beta = _instance(request.param)
    zero = np.zeros((masks.shape[1], design.n_weights))

    # The exact run starts from the default solver's point to save time; the relaxed
    # one starts from zero.
    solutions = {}
    start = _default_solver_point(ExactProblem(design, gates=gates, beta=beta))
    solutions["exact"] = proximal_gradient("exact", design, masks, beta, *start)
    v, w = proximal_gradient("relaxed", design, masks, beta, zero, zero)
    solutions["relaxed"] = (v - w, zero)
    solutions["hinge_large_rho"] = solutions["exact"]
    hinge = HingeProblem(design, gates=gates, beta=beta, rho=SMALL_RHO)
    solutions["hinge_small_rho"] = _default_solver_point(hinge, tol=1e-9)
    return {"design": design, "masks": masks, "beta": beta, "solutions": solutions}


CASES = {
    "exact": ("exact", 0.0),
    "relaxed": ("relaxed", 0.0),
    "hinge_small_rho": ("hinge", SMALL_RHO),
    "hinge_large_rho": ("hinge", LARGE_RHO),
}


def _certify(instance, case, v, w, project=True):
    program, rho = CASES[case]
    return certify(program, instance["design"], instance["masks"], v, w, instance["beta"], rho, project=project)


def _perturbed_points(instance, case, seed):
    """Yield feasible points at relative distances 1e-4 to 3 from the reference solution."""
    rng = np.random.default_rng(seed)
    v, w = instance["solutions"][case]
    scale = max(np.linalg.norm(np.vstack([v, w])), 1e-3)
    for size in np.geomspace(1e-4, 3.0, N_POINTS):
        direction = rng.standard_normal((2,) + v.shape)
        direction *= size * scale / np.linalg.norm(direction)
        point_v, point_w = v + direction[0], w + direction[1]
        if case == "relaxed":
            point_w = np.zeros_like(point_w)
        if case == "exact":
            point_v = project_to_cones(instance["design"], instance["masks"], point_v)
            point_w = project_to_cones(instance["design"], instance["masks"], point_w)
        yield point_v, point_w


def _reference_value(instance, case):
    """Return the best primal value known: an upper bound on the optimum, within its gap of it."""
    v, w = instance["solutions"][case]
    return _certify(instance, case, v, w).primal


@pytest.mark.parametrize("case", list(CASES))
def test_gap_small_at_reference_solution(instance, case):
    v, w = instance["solutions"][case]
    certificate = _certify(instance, case, v, w)

    assert certificate.relative_gap <= 1e-6
    assert certificate.gap >= -1e-12 * abs(certificate.primal)


@pytest.mark.parametrize("case", list(CASES))
def test_gap_bounds_suboptimality_perturbed(instance, case):
    reference = _reference_value(instance, case)
    for index, (v, w) in enumerate(_perturbed_points(instance, case, seed=11)):
        certificate = _certify(instance, case, v, w)
        suboptimality = certificate.primal - reference

        assert np.isfinite(certificate.gap), f"point {index}"
        assert certificate.gap >= suboptimality - 1e-12 * abs(reference), f"point {index}"


@pytest.mark.parametrize("case", list(CASES))
def test_dual_below_every_feasible_primal(instance, case):
    certificates = [_certify(instance, case, v, w) for v, w in _perturbed_points(instance, case, seed=12)]
    best_dual = max(certificate.dual for certificate in certificates)
    lowest_primal = min([certificate.primal for certificate in certificates] + [_reference_value(instance, case)])

    assert best_dual <= lowest_primal + 1e-12 * abs(lowest_primal)


def test_large_rho_hinge_equals_exact(instance):
    v, w = instance["solutions"]["exact"]
    exact = _certify(instance, "exact", v, w)
    hinge = _certify(instance, "hinge_large_rho", v, w)

    assert hinge.primal == pytest.approx(exact.primal, rel=1e-12)
    assert hinge.dual == pytest.approx(exact.dual, rel=1e-9)


def test_values_ordered_relaxed_hinge_exact(instance):
    relaxed = _reference_value(instance, "relaxed")
    hinge = _reference_value(instance, "hinge_small_rho")
    exact = _reference_value(instance, "exact")

    assert relaxed <= hinge + 1e-6 * abs(hinge)
    assert hinge <= exact + 1e-6 * abs(exact)


def test_zero_multiplier_variant_valid_but_looser(instance):
    v, w = instance["solutions"]["exact"]
    design, masks, beta = instance["design"], instance["masks"], instance["beta"]
    with_multipliers = certify("exact", design, masks, v, w, beta)
    # The relaxed certificate at the same logits uses mu = nu = 0, a dual-feasible
    # point of (5) too.
    without_multipliers = certify("relaxed", design, masks, v - w, None, beta)

    assert without_multipliers.dual <= with_multipliers.primal + 1e-12
    assert without_multipliers.dual < with_multipliers.dual - 1e-4


def test_infeasible_exact_point_is_projected(instance):
    design, masks, beta = instance["design"], instance["masks"], instance["beta"]
    v, w = instance["solutions"]["relaxed"]
    certificate = certify("exact", design, masks, v, w, beta)

    assert certificate.constraint_violation > 0.0
    assert certificate.projected
    assert certificate.primal == pytest.approx(
        program_objective(
            "exact", design, masks, project_to_cones(design, masks, v), project_to_cones(design, masks, w), beta
        ),
        rel=1e-12,
    )


def test_unprojected_infeasible_point_infinite_gap(instance):
    design, masks, beta = instance["design"], instance["masks"], instance["beta"]
    v, w = instance["solutions"]["relaxed"]
    certificate = certify("exact", design, masks, v, w, beta, project=False)
    assert certificate.gap == np.inf
