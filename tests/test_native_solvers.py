"""Tests of the native solvers (IPM, FISTA), their certificates, warm starts and polishing."""

import logging
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convexar_opt import (
    ConvergenceWarning,
    ExactProblem,
    HingeProblem,
    InvalidParameterError,
    RelaxedProblem,
    SolverError,
    certify,
)
from convexar_opt.datasets import load_dataset
from convexar_opt.objectives import cone_residuals
from convexar_opt.solvers import get_solver, installed_solvers
from convexar_opt.solvers._cones import SocScaling, soc_divide, soc_product, soc_step

PROBLEMS = {"exact": ExactProblem, "relaxed": RelaxedProblem, "hinge": HingeProblem}


def markov_chain(n_vectors, length, seed):
    """Draw binary vectors from an order-2 Markov chain with mixed transition probabilities."""
    rng = np.random.default_rng(seed)
    table = np.array([[0.2, 0.7], [0.4, 0.85]])
    X = np.zeros((n_vectors, length), dtype=np.uint8)
    X[:, :2] = rng.random((n_vectors, 2)) < 0.5
    for t in range(2, length):
        probability = table[X[:, t - 2], X[:, t - 1]]
        X[:, t] = rng.random(n_vectors) < probability
    return X


@pytest.fixture(scope="module")
def mushrooms():
    return load_dataset("mushrooms").train[:200]


@pytest.fixture(scope="module")
def chain():
    return markov_chain(80, 16, seed=1)


def build(program, data, window=4, n_patterns=8, beta=1e-3, **kwargs):
    if program == "hinge":
        kwargs.setdefault("rho", 1e-3)
    return PROBLEMS[program](
        data, window=window, n_patterns=n_patterns, beta=beta, random_state=0, **kwargs
    )


def assert_warned(record, text):
    """Assert that one of the recorded warnings contains ``text``.

    ``problem.solve`` adds its own generic warning after the solver's specific one.
    """
    messages = [str(item.message) for item in record]
    assert any(text in message for message in messages), messages


def solve_quietly(problem, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return problem.solve(**kwargs)


# Registry ---------------------------------------------------------------------------


@pytest.mark.parametrize("program", sorted(PROBLEMS))
def test_default_solver_is_ipm(program):
    assert installed_solvers(program)[0] == "IPM"


def test_fista_only_relaxed():
    assert get_solver("FISTA", "relaxed").name == "FISTA"
    with pytest.raises(InvalidParameterError, match="does not support the exact program"):
        get_solver("FISTA", "exact")


@pytest.mark.parametrize("solver", ["IPM", "FISTA"])
def test_unknown_option_rejected_with_list(mushrooms, solver):
    problem = build("relaxed", mushrooms)
    with pytest.raises(InvalidParameterError, match=r"unknown option\(s\) \['max_iters'\].*known options: \[.*'tol'"):
        problem.solve(solver=solver, max_iters=10)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("tol", -1.0, "tol must be a finite number > 0; got -1.0"),
        ("tol", float("nan"), "tol must be a finite number > 0"),
        ("max_iter", 0, "max_iter must be an integer from 1; got 0"),
        ("max_iter", 2.5, "max_iter must be an integer; got 2.5"),
        ("polish", "yes", "polish must be True or False; got 'yes'"),
    ],
)
def test_invalid_option_value_rejected(mushrooms, option, value, message):
    problem = build("exact", mushrooms)
    with pytest.raises(InvalidParameterError, match=message):
        problem.solve(solver="IPM", **{option: value})


# Optimal values and certificates ------------------------------------------------------


@pytest.mark.parametrize("program", sorted(PROBLEMS))
@pytest.mark.parametrize("source", ["mushrooms", "chain"])
def test_ipm_matches_clarabel(program, source, request):
    data = request.getfixturevalue(source)
    problem = build(program, data)
    native = problem.solve(solver="IPM")
    native_gap = problem.certificate.gap
    assert problem.status == "optimal"

    reference = solve_quietly(problem, solver="CLARABEL", warm_start=False)
    reference_gap = problem.certificate.gap
    difference = abs(native - reference)
    assert difference <= max(1e-5 * abs(reference), native_gap + reference_gap + 1e-12)


@pytest.mark.parametrize("program", sorted(PROBLEMS))
@pytest.mark.parametrize("tol", [1e-6, 1e-9])
def test_certified_gap_below_tol(program, tol, chain):
    problem = build(program, chain)
    problem.solve(solver="IPM", tol=tol)
    certificate = problem.solver_stats.extra["certificate"]
    assert problem.status == "optimal"
    assert certificate.relative_gap <= tol
    assert problem.certificate is certificate
    assert problem.value == certificate.primal


def test_certificate_matches_fresh_certify(mushrooms):
    problem = build("exact", mushrooms)
    problem.solve(solver="IPM", tol=1e-8)
    fresh = problem.certify()
    assert fresh.relative_gap <= 1e-8
    assert fresh.primal == pytest.approx(problem.value, rel=1e-14)


@pytest.mark.parametrize("source", ["mushrooms", "chain"])
def test_exact_solution_feasible(source, request):
    problem = build("exact", request.getfixturevalue(source))
    problem.solve(solver="IPM")
    features = problem.design.features
    v, w = problem.solution.v, problem.solution.w
    assert cone_residuals(features, problem.masks, v).min() >= 0.0
    assert cone_residuals(features, problem.masks, w).min() >= 0.0
    assert problem.certificate.constraint_violation == 0.0
    assert not problem.certificate.projected


@pytest.mark.parametrize("source", ["mushrooms", "chain"])
def test_hinge_between_relaxed_and_exact(source, request):
    data = request.getfixturevalue(source)
    values, gaps = {}, {}
    for program in PROBLEMS:
        problem = build(program, data)
        values[program] = problem.solve(solver="IPM", tol=1e-9)
        gaps[program] = problem.certificate.gap
    assert values["relaxed"] <= values["hinge"] + gaps["relaxed"]
    assert values["hinge"] <= values["exact"] + gaps["hinge"]
    assert values["relaxed"] < values["exact"]


def test_fista_matches_ipm_on_relaxed(mushrooms):
    problem = build("relaxed", mushrooms)
    ipm_value = problem.solve(solver="IPM", tol=1e-9)
    fista_value = problem.solve(solver="FISTA", tol=1e-8, warm_start=False)
    assert problem.status == "optimal"
    assert problem.certificate.relative_gap <= 1e-8
    assert fista_value == pytest.approx(ipm_value, rel=1e-7)


def test_fista_torch_cpu_matches_numpy(mushrooms):
    problem = build("relaxed", mushrooms)
    numpy_value = problem.solve(solver="FISTA", tol=1e-8, warm_start=False)
    numpy_iterations = problem.solver_stats.iterations
    numpy_z = problem.solution.v.copy()

    torch_value = problem.solve(solver="FISTA", tol=1e-8, warm_start=False, device="cpu")
    assert problem.status == "optimal"
    assert problem.certificate.relative_gap <= 1e-8
    assert problem.solver_stats.iterations == numpy_iterations
    assert torch_value == pytest.approx(numpy_value, rel=1e-12)
    np.testing.assert_allclose(problem.solution.v, numpy_z, rtol=1e-9, atol=1e-12)


def test_fista_torch_warm_start_saves_iterations(mushrooms):
    problem = build("relaxed", mushrooms, beta=1e-2)
    problem.solve(solver="FISTA", tol=1e-8, device="cpu")
    problem.beta = 5e-3
    problem.solve(solver="FISTA", tol=1e-8, device="cpu")
    warm_iterations = problem.solver_stats.iterations
    problem.solve(solver="FISTA", tol=1e-8, warm_start=False, device="cpu")
    assert warm_iterations < problem.solver_stats.iterations


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu0", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'gpu0'"),
        ("mps", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'mps'"),
        ("meta", "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 'meta'"),
        (3, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got 3"),
    ],
)
def test_fista_invalid_device_rejected(mushrooms, device, message):
    problem = build("relaxed", mushrooms)
    with pytest.raises(InvalidParameterError, match=message):
        problem.solve(solver="FISTA", device=device)


def test_fista_cuda_without_cuda_rejected(mushrooms):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    problem = build("relaxed", mushrooms)
    with pytest.raises(InvalidParameterError, match=r"device 'cuda' was requested, but PyTorch .* sees no CUDA GPU"):
        problem.solve(solver="FISTA", device="cuda")


def test_fista_on_cuda_matches_numpy(mushrooms):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    problem = build("relaxed", mushrooms)
    numpy_value = problem.solve(solver="FISTA", tol=1e-8, warm_start=False)
    cuda_value = problem.solve(solver="FISTA", tol=1e-8, warm_start=False, device="cuda")
    assert problem.certificate.relative_gap <= 1e-8
    assert cuda_value == pytest.approx(numpy_value, rel=1e-7)


def _blas_pool_sizes():
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_threads_limited_during_solve(mushrooms):
    from threadpoolctl import threadpool_limits

    seen = []

    class Recorder(logging.Handler):
        def emit(self, record):
            seen.append(_blas_pool_sizes())

    problem = build("exact", mushrooms)
    handler = Recorder()
    solver_logger = logging.getLogger("convexar_opt.solvers._native")
    level = solver_logger.level
    solver_logger.setLevel(logging.INFO)
    solver_logger.addHandler(handler)
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            before = _blas_pool_sizes()
            problem.solve(solver="IPM", blas_threads=1, verbose=True)
            after = _blas_pool_sizes()
    finally:
        solver_logger.removeHandler(handler)
        solver_logger.setLevel(level)

    assert seen
    assert all(size == 1 for sizes in seen for size in sizes)
    assert after == before


@pytest.mark.parametrize("value", [0, 1.5, "two"])
def test_blas_threads_invalid_rejected(mushrooms, value):
    problem = build("relaxed", mushrooms)
    with pytest.raises(InvalidParameterError, match="blas_threads must be an integer"):
        problem.solve(solver="FISTA", blas_threads=value)


def test_ipm_on_real_window_ten():
    design_source = load_dataset("dna").train[:300]
    problem = ExactProblem(design_source, window=10, n_patterns=20, beta=1e-3, random_state=3)
    problem.solve(solver="IPM")
    assert problem.status == "optimal"
    assert problem.certificate.relative_gap <= 1e-6


# Iteration limits and warnings ------------------------------------------------------------


@pytest.mark.parametrize("program", sorted(PROBLEMS))
def test_ipm_max_iter_warns(program, chain):
    problem = build(program, chain)
    with pytest.warns(ConvergenceWarning) as record:
        problem.solve(solver="IPM", max_iter=2, polish=False)
    assert_warned(record, "stopped at max_iter=2 with a certified relative gap of")
    assert_warned(record, "Raise max_iter (for example to 8)")
    assert problem.status == "optimal_inaccurate"
    assert problem.certificate.relative_gap > 1e-6
    assert problem.solver_stats.extra["stop_reason"] == "iteration_limit"


def test_fista_max_iter_warns(mushrooms):
    problem = build("relaxed", mushrooms)
    with pytest.warns(ConvergenceWarning) as record:
        problem.solve(solver="FISTA", max_iter=5)
    assert_warned(record, "stopped at max_iter=5 with a certified relative gap of")
    assert problem.status == "optimal_inaccurate"


def test_ipm_polish_never_worsens_gap(mushrooms):
    problem = build("exact", mushrooms)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        problem.solve(solver="IPM", max_iter=9, polish=False, warm_start=False)
    unpolished = problem.certificate.relative_gap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        problem.solve(solver="IPM", max_iter=9, polish=True, warm_start=False)
    assert problem.certificate.relative_gap <= unpolished


# Warm starts ---------------------------------------------------------------------------------


def test_fista_warm_start_needs_fewer_iterations(mushrooms):
    problem = build("relaxed", mushrooms, beta=3e-3)
    problem.solve(solver="FISTA", tol=1e-7)
    problem.beta = 2e-3
    problem.solve(solver="FISTA", tol=1e-7, warm_start=False)
    cold = problem.solver_stats.iterations
    problem.beta = 3e-3
    problem.solve(solver="FISTA", tol=1e-7, warm_start=False)
    problem.beta = 2e-3
    problem.solve(solver="FISTA", tol=1e-7, warm_start=True)
    warm = problem.solver_stats.iterations
    assert problem.solver_stats.extra["warm_started"]
    assert warm < cold


def test_ipm_warm_start_at_optimum_returns_it(mushrooms):
    problem = build("relaxed", mushrooms)
    first = problem.solve(solver="IPM")
    second = problem.solve(solver="IPM", warm_start=True)
    assert problem.solver_stats.iterations == 0
    assert problem.solver_stats.extra["warm_start_use"] == "returned"
    assert second == first


@pytest.mark.parametrize("program", ["exact", "hinge"])
def test_ipm_warm_start_same_optimum(program, chain):
    problem = build(program, chain)
    cold = problem.solve(solver="IPM", warm_start=False, tol=1e-9)
    cold_gap = problem.certificate.gap
    problem.beta = 2e-3
    problem.solve(solver="IPM")
    problem.beta = 1e-3
    warm = problem.solve(solver="IPM", warm_start=True, tol=1e-9)
    assert problem.status == "optimal"
    assert abs(warm - cold) <= cold_gap + problem.certificate.gap + 1e-12


# beta = 0 --------------------------------------------------------------------------------


@pytest.mark.parametrize("program", sorted(PROBLEMS))
def test_beta_zero_separable_raises(program, mushrooms):
    problem = build(program, mushrooms, beta=0.0)
    with pytest.raises(SolverError, match=r"beta = 0 .*no minimiser .*Use beta > 0"):
        problem.solve(solver="IPM")


def test_beta_zero_fista_separable_raises(mushrooms):
    problem = build("relaxed", mushrooms, beta=0.0)
    with pytest.raises(SolverError, match="no minimiser"):
        problem.solve(solver="FISTA")


@pytest.mark.parametrize(
    ("solver", "options"), [("IPM", {}), ("FISTA", {}), ("FISTA", {"device": "cpu"})]
)
def test_beta_zero_with_minimiser_not_certified(solver, options):
    rng = np.random.default_rng(0)
    X = (rng.random((300, 12)) < 0.5).astype(np.uint8)
    problem = RelaxedProblem(X, window=3, n_patterns=4, beta=0.0, random_state=0)
    assert np.all((problem.design.ones > 0) & (problem.design.zeros > 0))
    with pytest.warns(ConvergenceWarning) as record:
        value = problem.solve(solver=solver, **options)
    assert_warned(record, "with beta = 0 the duality-gap certificate cannot close")
    assert problem.status == "optimal_inaccurate"
    assert np.isfinite(value)
    assert np.all(np.isfinite(problem.solution.v))


# Polishing CVXPY points --------------------------------------------------------------------


@pytest.mark.parametrize("program", ["exact", "hinge", "relaxed"])
def test_cvxpy_point_polished(program, mushrooms):
    problem = build(program, mushrooms)
    solve_quietly(problem, solver="CLARABEL")
    extra = problem.solver_stats.extra
    raw = extra["unpolished_certificate"]
    assert problem.certificate is extra["certificate"]
    assert problem.certificate.gap <= raw.gap
    assert problem.certificate.relative_gap <= 1e-6


def test_cvxpy_polish_off(mushrooms):
    problem = build("exact", mushrooms)
    solve_quietly(problem, solver="CLARABEL", polish=False)
    assert "unpolished_certificate" not in problem.solver_stats.extra
    fresh = problem.certify()
    assert problem.certificate.gap == fresh.gap


def test_cvxpy_polish_option_checked(mushrooms):
    problem = build("exact", mushrooms)
    with pytest.raises(InvalidParameterError, match="polish must be True or False; got 1"):
        problem.solve(solver="CLARABEL", polish=1)


# Certificate with given multipliers ---------------------------------------------------------


def test_certify_multipliers_valid_bound(chain):
    problem = build("exact", chain)
    problem.solve(solver="IPM", tol=1e-10)
    optimum = problem.value
    rng = np.random.default_rng(5)
    v = problem.solution.v * (1.0 + 0.1 * rng.standard_normal(problem.solution.v.shape))
    w = problem.solution.w
    shape = (problem.n_patterns, problem.design.n_contexts)
    for scale in (0.0, 1e-3, 1.0):
        multipliers = (scale * rng.random(shape), scale * rng.random(shape))
        certificate = certify("exact", problem.design, problem.masks, v, w, problem.beta, multipliers=multipliers)
        assert certificate.gap >= certificate.primal - optimum - 1e-10
        assert certificate.dual <= optimum + 1e-10


def test_certify_multipliers_shape_checked(chain):
    problem = build("exact", chain)
    v = np.zeros((problem.n_patterns, problem.design.n_weights))
    with pytest.raises(InvalidParameterError, match=r"multipliers must be two arrays of shape \(8, "):
        certify("exact", problem.design, problem.masks, v, v, 1e-3, multipliers=(np.zeros(3), np.zeros(3)))


# Cone arithmetic ----------------------------------------------------------------------------


def _interior(rng, n_cones, size):
    x = rng.standard_normal((n_cones, size))
    x[:, 0] = np.linalg.norm(x[:, 1:], axis=1) + rng.uniform(0.01, 2.0, n_cones)
    return x


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 12))
def test_nesterov_todd_scaling_identities(seed, size):
    rng = np.random.default_rng(seed)
    s, z = _interior(rng, 5, size), _interior(rng, 5, size)
    scaling = SocScaling(s, z)
    np.testing.assert_allclose(scaling.apply(z), scaling.apply_inverse(s), rtol=1e-9, atol=1e-9)
    x = rng.standard_normal((5, size))
    np.testing.assert_allclose(scaling.apply_inverse(scaling.apply(x)), x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(soc_product(scaling.scaled, soc_divide(scaling.scaled, x)), x, rtol=1e-8, atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_soc_step_reaches_boundary(seed):
    rng = np.random.default_rng(seed)
    x = _interior(rng, 6, 4)
    dx = 3.0 * rng.standard_normal((6, 4))
    steps = soc_step(x, dx)
    for i in np.flatnonzero(np.isfinite(steps)):
        end = x[i] + steps[i] * dx[i]
        assert end[0] >= -1e-9
        assert abs(end[0] - np.linalg.norm(end[1:])) <= 1e-8 * max(1.0, abs(end[0]))
        inside = x[i] + 0.5 * steps[i] * dx[i]
        assert inside[0] > np.linalg.norm(inside[1:])
