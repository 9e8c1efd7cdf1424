"""Robustness under bad input and solver trouble, through the Python API and the CLI.

Every case ends in a specific error that names the value seen and the fix, or in the
right value. None may end in a traceback from a dependency, a silent wrong number or a
finished run whose results are lost.
"""

import json
import math
import re
import warnings

import numpy as np
import pytest

import convexar_opt.cli as cli
import convexar_opt.solvers as solvers
import convexar_opt.training as training
from convexar_opt import (
    ConvergenceWarning,
    ExactProblem,
    HingeProblem,
    InvalidDataError,
    InvalidParameterError,
    ModelFileError,
    NotSolvedError,
    RelaxedProblem,
    SolverError,
    SolverNotInstalledError,
)
from convexar_opt.cli import main
from convexar_opt.data import build_design
from convexar_opt.datasets import Dataset, load_dataset, load_file, read_amat, read_libsvm, read_npz
from convexar_opt.evaluation import binary_cross_entropy, nll_per_vector
from convexar_opt.experiment import Settings, run_model
from convexar_opt.model import FittedModel
from convexar_opt.objectives import loss, program_objective
from convexar_opt.problems.base import ConvexARProblem
from convexar_opt.solvers import installed_solvers
from convexar_opt.solvers.base import Solver, SolverResult

LN2 = math.log(2.0)
CVXPY_SOLVERS = [name for name in ("CLARABEL", "SCS", "ECOS") if name in installed_solvers()]


def run_cli(capsys, *args):
    """Run ``convexar`` in-process and return (exit status, stdout, stderr)."""
    status = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def without_timings(value):
    """Return ``value`` with every entry whose key mentions seconds or time removed."""
    if isinstance(value, dict):
        return {
            key: without_timings(item)
            for key, item in value.items()
            if "seconds" not in key and "time" not in key
        }
    if isinstance(value, list):
        return [without_timings(item) for item in value]
    return value


@pytest.fixture
def chain_npz(tmp_path, markov_vectors):
    """A user's .npz file of 60 Markov-chain vectors of length 16, split 40 / 10 / 10."""
    path = tmp_path / "chain.npz"
    np.savez(path, train=markov_vectors[:40], valid=markov_vectors[40:50], test=markov_vectors[50:])
    return path


# LIBSVM splits of different widths ---------------------------------------------------------


@pytest.fixture
def narrow_test_split(tmp_path):
    """A 1-based LIBSVM train file reaching index 6 and a test file reaching only index 3."""
    train = tmp_path / "train.svm"
    test = tmp_path / "test.svm"
    train.write_text("+1 1:1 6:1\n-1 2:1 3:1 4:1\n+1 5:1\n")
    test.write_text("-1 1:1 3:1\n+1 2:1\n")
    return train, test


def test_libsvm_narrow_test_split_with_n_features(narrow_test_split):
    train, test = narrow_test_split
    dataset = load_file(train, n_features=6, test_path=test)

    assert dataset.train.shape == (3, 6)
    assert dataset.test.shape == (2, 6)
    assert dataset.train[0].tolist() == [1, 0, 0, 0, 0, 1]
    assert dataset.test.tolist() == [[1, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]]


def test_libsvm_narrow_test_split_without_n_features(narrow_test_split):
    train, test = narrow_test_split
    with pytest.raises(InvalidDataError, match=r"different widths \{'train': 6, 'test': 3\}.*n_features"):
        load_file(train, test_path=test)


def test_libsvm_narrow_test_split_cli(narrow_test_split, tmp_path, capsys):
    train, test = narrow_test_split
    status, _, err = run_cli(capsys, "fit", "--model", "count", "--dataset", train, "--test-file", test, "--window", "2", "--quiet")
    assert status == 2
    assert "different widths" in err
    assert "--n-features" in err

    out = tmp_path / "out.json"
    status, _, _ = run_cli(capsys, "fit", "--model", "count", "--dataset", train, "--test-file", test, "--n-features", "6", "--window", "2", "--json", out, "--quiet")
    assert status == 0
    assert json.loads(out.read_text())["n_positions"] == 4


def test_libsvm_index_base_never_guessed(tmp_path):
    path = tmp_path / "zero.svm"
    path.write_text("1 0:1 2:1\n0 1:1\n")

    with pytest.raises(InvalidDataError, match=r"line 1: feature index 0 found.*zero_based=True.*--zero-based"):
        read_libsvm(path)
    assert read_libsvm(path, zero_based=True).tolist() == [[1, 0, 1], [0, 1, 0]]

    # The same indices read 1-based land one column to the left, only when asked.
    one_based = tmp_path / "one.svm"
    one_based.write_text("1 1:1 3:1\n0 2:1\n")
    assert read_libsvm(one_based).tolist() == [[1, 0, 1], [0, 1, 0]]


def test_libsvm_n_features_below_highest_index(tmp_path):
    path = tmp_path / "wide.svm"
    path.write_text("1 7:1\n")
    with pytest.raises(InvalidDataError, match=r"column 6, but n_features = 4.*zero_based"):
        read_libsvm(path, n_features=4)
    with pytest.raises(InvalidParameterError, match=r"n_features must be an integer from 1; got 0"):
        read_libsvm(path, n_features=0)


# Constant columns, duplicate rows and one window with both labels ---------------------------


@pytest.mark.parametrize("solver", ["IPM", *CVXPY_SOLVERS[:1]])
@pytest.mark.parametrize("problem_class", [RelaxedProblem, ExactProblem])
def test_window_with_both_labels_costs_two_ln2(problem_class, solver):
    # Columns 0-2 are constant and the window (1, 0, 1) is followed once by 1 and once by 0.
    X = np.array([[1, 0, 1, 1], [1, 0, 1, 0]], dtype=np.uint8)
    problem = problem_class(X, window=3, n_patterns=3, beta=1e-3, intercept=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        value = problem.solve(solver=solver)

    fitted = FittedModel(
        kind=problem.program,
        window=3,
        intercept=True,
        weights={"v": problem.solution.v, "w": problem.solution.w},
        gates=problem.gates,
    )
    design = fitted.design_for(X)
    summed_loss = fitted.evaluate(design)["nll"] * design.n_vectors

    assert problem.status == "optimal"
    assert design.n_contexts == 1
    np.testing.assert_allclose(summed_loss, 2 * LN2, atol=1e-6)
    np.testing.assert_allclose(summed_loss, 1.386294, atol=1e-6)
    np.testing.assert_allclose(value, LN2, atol=1e-6)


def test_constant_column_and_duplicates_handled(markov_vectors):
    X = markov_vectors.copy()
    X[:, 5] = 1
    X[:, 9] = 0
    doubled = np.vstack([X, X[:7], X[:7]])
    doubled = np.vstack([doubled, doubled])

    values = {}
    for name, data in (("once", np.vstack([X, X[:7], X[:7]])), ("doubled", doubled)):
        problem = ExactProblem(data, window=4, n_patterns=6, beta=1e-2, random_state=0)
        values[name] = problem.solve(solver="IPM", tol=1e-9)
        assert problem.status == "optimal"
        assert problem.certificate.relative_gap <= 1e-9
        assert np.all(np.isfinite(problem.solution.v))

    once = build_design(np.vstack([X, X[:7], X[:7]]), window=4)
    twice = build_design(doubled, window=4)
    np.testing.assert_array_equal(twice.ones, 2 * once.ones)
    np.testing.assert_array_equal(twice.zeros, 2 * once.zeros)
    np.testing.assert_allclose(values["doubled"], values["once"], rtol=1e-8)


# Invalid settings and data shapes ------------------------------------------------------------


@pytest.fixture
def no_solve(monkeypatch):
    """Fail the test if a convex program is solved."""

    def fail_if_called(*args, **kwargs):
        raise AssertionError("a solve started although the input was invalid")

    monkeypatch.setattr(ConvexARProblem, "solve", fail_if_called)


API_SETTINGS_CASES = [
    ({"window": 0}, InvalidParameterError, r"window must be an integer from 1; got 0"),
    ({"n_patterns": 0}, InvalidParameterError, r"n_patterns must be an integer from 1; got 0"),
    ({"beta": -0.5}, InvalidParameterError, r"beta must be finite and >= 0; got -0.5"),
    ({"rho": -0.5}, InvalidParameterError, r"rho must be finite and >= 0; got -0.5"),
    ({"seed": -1}, InvalidParameterError, r"seed must be an integer from 0; got -1"),
]


@pytest.mark.parametrize("options, error, message", API_SETTINGS_CASES)
def test_invalid_settings_rejected_before_data(options, error, message, markov_vectors, monkeypatch, no_solve):
    import convexar_opt.experiment as experiment

    def fail_if_called(*args):
        raise AssertionError("data were windowed although the settings were invalid")

    monkeypatch.setattr(experiment, "prepare_designs", fail_if_called)
    dataset = Dataset(name="chain", train=markov_vectors, valid=None, test=None)
    with pytest.raises(error, match=message):
        run_model("cph", dataset, Settings(**options))


@pytest.mark.parametrize("window", [16, 19, 0, -2])
@pytest.mark.parametrize("problem_class", [RelaxedProblem, ExactProblem, HingeProblem])
def test_problem_window_out_of_range(problem_class, window, markov_vectors, no_solve):
    with pytest.raises(InvalidParameterError, match=rf"window must be an integer from 1 to 15; got {window}"):
        problem_class(markov_vectors, window=window)


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"n_patterns": 0}, r"n_patterns must be an integer from 1; got 0"),
        ({"beta": -1.0}, r"beta must be finite and >= 0; got -1.0"),
        ({"rho": -1.0}, r"rho must be finite and >= 0; got -1.0"),
    ],
)
def test_problem_invalid_parameters(keywords, message, markov_vectors, no_solve):
    with pytest.raises(InvalidParameterError, match=message):
        HingeProblem(markov_vectors, window=3, **keywords)


def test_empty_split_rejected(tmp_path, markov_vectors, capsys):
    with pytest.raises(InvalidDataError, match=r"X is empty \(shape \(0, 16\)\)"):
        RelaxedProblem(markov_vectors[:0], window=3)

    path = tmp_path / "empty_test.npz"
    np.savez(path, train=markov_vectors, test=markov_vectors[:0])
    with pytest.raises(InvalidDataError, match=r"empty_test.npz.test is empty"):
        read_npz(path)

    status, _, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", path, "--window", "3", "--quiet")
    assert status == 2
    assert "empty_test.npz.test is empty (shape (0, 16))" in err


def test_empty_libsvm_test_file_rejected(tmp_path):
    train = tmp_path / "train.svm"
    test = tmp_path / "test.svm"
    train.write_text("1 1:1 3:1\n")
    test.write_text("# no data\n\n")
    with pytest.raises(InvalidDataError, match=r"test.svm contains no data lines"):
        load_file(train, n_features=3, test_path=test)


def test_single_vector_as_one_dimensional_array(markov_vectors):
    with pytest.raises(InvalidDataError, match=r"shape \(16,\).*reshape\(1, -1\)"):
        RelaxedProblem(markov_vectors[0], window=3)


def test_single_vector_matrix_fits(markov_vectors):
    single = markov_vectors[:1]
    problem = RelaxedProblem(single, window=3, n_patterns=3, beta=1e-2, random_state=0)
    value = problem.solve(solver="IPM")
    fitted = FittedModel(
        kind="relaxed", window=3, intercept=True, weights={"v": problem.solution.v, "w": problem.solution.w}, gates=problem.gates,
    )

    assert problem.design.n_vectors == 1.0
    assert problem.status == "optimal"
    np.testing.assert_allclose(-fitted.score_samples(single)[0], fitted.evaluate(problem.design)["nll"], rtol=1e-12)
    assert 0.0 < value < 13 * LN2


def test_single_vector_cli(tmp_path, markov_vectors, capsys):
    path = tmp_path / "one.npz"
    np.savez(path, train=markov_vectors[:1], test=markov_vectors[1:3])
    out = tmp_path / "one.json"
    status, _, _ = run_cli(capsys, "fit", "--model", "cpr", "--dataset", path, "--window", "3", "--patterns", "3", "--json", out, "--quiet")
    figures = json.loads(out.read_text())

    assert status == 0
    assert figures["status"] == "optimal"
    assert figures["train_rows"] == 13
    assert 0.0 < figures["nll"]["train"] < 13 * LN2


def test_three_dimensional_npz_rejected(tmp_path):
    path = tmp_path / "cube.npz"
    np.savez(path, train=np.zeros((4, 3, 5), dtype=np.uint8))
    with pytest.raises(InvalidDataError, match=r"shape \(4, 3, 5\).*reshape\(.*shape\[0\], -1\)"):
        read_npz(path)


# beta = 0 on separable data --------------------------------------------------------------------


@pytest.fixture
def separable_vectors():
    """Vectors that are all 0 or all 1, so every context is always followed by one value."""
    rng = np.random.default_rng(0)
    return np.repeat(rng.integers(0, 2, size=(40, 1)), 8, axis=1).astype(np.uint8)


@pytest.mark.parametrize("solver", ["IPM", *CVXPY_SOLVERS])
@pytest.mark.parametrize("problem_class", [RelaxedProblem, ExactProblem, HingeProblem])
def test_beta_zero_separable_never_optimal(problem_class, solver, separable_vectors):
    # SCS, Clarabel and ECOS report 'optimal' here with finite weights (cvxpy 1.9), so the
    # problem raises before any backend runs.
    problem = problem_class(separable_vectors, window=2, n_patterns=4, beta=0.0, random_state=0)
    with pytest.raises(SolverError, match=r"beta = 0 .*no minimiser .*Use beta > 0"):
        problem.solve(solver=solver)
    assert problem.status is None
    with pytest.raises(NotSolvedError, match=r"has not been solved"):
        problem.solution


def test_beta_zero_separable_cli(tmp_path, separable_vectors, capsys):
    path = tmp_path / "separable.npz"
    np.savez(path, train=separable_vectors, test=separable_vectors[:5])
    for solver in ("IPM", *CVXPY_SOLVERS[:1]):
        status, out, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", path, "--window", "2", "--patterns", "3", "--beta", "0", "--solver", solver, "--quiet")
        assert status == 2
        assert "no minimiser" in err
        assert "optimal" not in out


# Logits of +-800 -----------------------------------------------------------------------------


@pytest.fixture
def extreme_problem():
    """A relaxed program whose one gate is always on and whose weights give logits +800, -800.

    Context (0) is followed by 0 twice and by 1 once, context (1) by 1 three times.
    """
    X = np.array([[0, 0], [0, 0], [0, 1], [1, 1], [1, 1], [1, 1]], dtype=np.uint8)
    problem = RelaxedProblem(X, window=1, gates=np.array([[0.0, 1.0]]), beta=1e-3)
    z = np.array([[-1600.0, 800.0]])
    # Wrong side: 2 x 800 for context (0) and 3 x 800 for context (1); right side ~ e^-800.
    expected_loss = (2 * 800.0 + 3 * 800.0) / 6
    return problem, z, expected_loss


def test_extreme_logits_numpy_loss(extreme_problem):
    problem, z, expected_loss = extreme_problem
    logits = problem.logits(z)

    np.testing.assert_array_equal(logits, [800.0, -800.0])
    assert loss(problem.design, logits) == pytest.approx(expected_loss, rel=1e-15)
    assert nll_per_vector(problem.design, logits) == pytest.approx(expected_loss, rel=1e-15)
    penalty = 1e-3 * np.linalg.norm(z)
    assert problem.objective(z) == pytest.approx(expected_loss + penalty, rel=1e-15)
    np.testing.assert_allclose(binary_cross_entropy([800.0, -800.0, 800.0], [0.0, 1.0, 1.0]), [800.0, 800.0, 0.0], atol=1e-300)


def test_extreme_logits_cvxpy_objective(extreme_problem):
    problem, z, expected_loss = extreme_problem
    compiled = problem.to_cvxpy()
    problem.set_warm_start(z)

    value = compiled.objective.value
    assert np.isfinite(value)
    assert value == pytest.approx(problem.objective(z), rel=1e-12)
    assert value == pytest.approx(expected_loss + 1e-3 * np.linalg.norm(z), rel=1e-12)


def test_extreme_logits_torch(extreme_problem):
    torch = pytest.importorskip("torch")
    from convexar_opt.torch_model import GatedAR, design_objective, weighted_nll

    problem, z, expected_loss = extreme_problem
    design = problem.design
    for dtype in (torch.float64, torch.float32):
        logits = torch.tensor([800.0, -800.0], dtype=dtype)
        ones = torch.tensor(design.ones, dtype=dtype)
        zeros = torch.tensor(design.zeros, dtype=dtype)
        value = weighted_nll(logits, ones, zeros)
        assert torch.isfinite(value)
        assert float(value) == pytest.approx(expected_loss * design.n_vectors, rel=1e-6)

    module = GatedAR.from_weights(problem.gates, z)
    with torch.no_grad():
        value = float(design_objective(module, design, beta=1e-3))
    assert value == pytest.approx(program_objective("relaxed", design, problem.masks, z, np.zeros_like(z), 1e-3), rel=1e-12)


def test_extreme_logits_log_likelihood_direct(extreme_problem):
    # The log of a probability would give -inf where the direct log-likelihood gives -800.
    problem, z, _ = extreme_problem
    fitted = FittedModel(kind="relaxed", window=1, intercept=True, weights={"v": z, "w": np.zeros_like(z)}, gates=problem.gates)
    # Rows: (context, target) on the right side twice, then on the wrong side twice.
    X = np.array([[0, 1], [1, 0], [0, 0], [1, 1]], dtype=np.uint8)

    scores = fitted.score_samples(X)
    np.testing.assert_allclose(scores, [0.0, 0.0, -800.0, -800.0], atol=1e-300)
    assert np.all(np.isfinite(scores))


# Solver trouble --------------------------------------------------------------------------------


class FakeSolver(Solver):
    """A backend that returns a fixed status and, optionally, fixed weights."""

    name = "FAKE"
    programs = ("exact", "relaxed", "hinge")
    options = {}
    warm_start_effect = "nothing"

    def __init__(self, status, weights="zeros"):
        self.status = status
        self.weights = weights
        self.calls = 0

    def solve(self, problem, warm_start, verbose, options):
        self.calls += 1
        shape = (problem.n_patterns, problem.design.n_weights)
        if self.weights is None:
            v = None
        elif self.weights == "nan":
            v = np.full(shape, np.nan)
        elif self.weights == "wrong_shape":
            v = np.zeros((shape[0] + 1, shape[1]))
        else:
            v = np.zeros(shape)
        return SolverResult(status=self.status, v=v, w=None, iterations=3, seconds=0.0, extra={"message": "fake"})


@pytest.fixture
def register_fake(monkeypatch):
    """Return a function that registers a FakeSolver for this test only."""
    monkeypatch.setattr(solvers, "_REGISTRY", dict(solvers._REGISTRY))

    def register(status, weights="zeros"):
        fake = FakeSolver(status, weights)
        solvers.register_solver(fake)
        return fake

    return register


@pytest.mark.parametrize(
    "status, expected_value",
    [
        ("infeasible", np.inf),
        ("infeasible_inaccurate", np.inf),
        ("unbounded", -np.inf),
        ("unbounded_inaccurate", -np.inf),
        ("user_limit", np.nan),
    ],
)
def test_solve_without_solution_has_status(status, expected_value, register_fake, small_design):
    register_fake(status, weights=None)
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        value = problem.solve(solver="FAKE")

    assert problem.status == status
    np.testing.assert_equal(value, expected_value)
    np.testing.assert_equal(problem.value, expected_value)
    assert problem.certificate is None
    with pytest.raises(NotSolvedError, match=rf"ended with status '{status}'"):
        problem.solution


@pytest.mark.parametrize("status", ["infeasible_inaccurate", "unbounded_inaccurate", "user_limit"])
def test_inaccurate_status_warns(status, register_fake, small_design):
    register_fake(status, weights=None)
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=rf"status '{status}'.*no point that could be certified"):
        problem.solve(solver="FAKE")


@pytest.mark.parametrize(
    "status, weights, message",
    [
        ("solver_error", None, r"failed with status 'solver_error'.*\(fake\)"),
        ("optimal", None, r"failed with status 'optimal'.*returned no weights"),
        ("optimal", "nan", r"non-finite weights in v"),
        ("optimal", "wrong_shape", r"weights v of shape \(4, 4\) instead of \(3, 4\)"),
    ],
)
def test_failed_solve_raises_solver_error(status, weights, message, register_fake, small_design):
    register_fake(status, weights)
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.raises(SolverError, match=message):
        problem.solve(solver="FAKE")

    assert problem.value is None
    assert problem.status == "solver_error"
    with pytest.raises(NotSolvedError, match=r"has no solution"):
        problem.solution


def test_optimal_inaccurate_keeps_point_with_warning(register_fake, small_design):
    register_fake("optimal_inaccurate")
    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"'optimal_inaccurate'.*relative duality gap of") as record:
        value = problem.solve(solver="FAKE")

    # The relaxed program has no cone constraints, so the warning quotes no violation.
    messages = [str(item.message) for item in record if item.category is ConvergenceWarning]
    assert all("constraint violation" not in message for message in messages)
    assert problem.status == "optimal_inaccurate"
    assert value == pytest.approx(small_design.n_rows * LN2 / small_design.n_vectors, rel=1e-12)
    assert problem.certificate is not None


def test_optimal_inaccurate_exact_quotes_violation(register_fake, small_design):
    register_fake("optimal_inaccurate")
    problem = ExactProblem(small_design, n_patterns=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"relative duality gap of .* and a constraint violation of"):
        problem.solve(solver="FAKE")

    assert problem.status == "optimal_inaccurate"


@pytest.mark.parametrize("status", ["infeasible", "unbounded", "user_limit", "solver_error"])
def test_failed_solve_in_experiment_and_cli(status, register_fake, chain_npz, markov_vectors, capsys):
    register_fake(status, weights=None)
    dataset = read_npz(chain_npz)
    expected = NotSolvedError if status != "solver_error" else SolverError
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(expected, match=rf"status '{status}'"):
            run_model("cpr", dataset, Settings(window=3, n_patterns=3, solver="FAKE"))
        status_code, out, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", chain_npz, "--window", "3", "--patterns", "3", "--solver", "FAKE", "--quiet")

    assert status_code == 2
    assert f"status '{status}'" in err
    assert "Traceback" not in err
    assert "NLL" not in out


def test_mosek_without_licence_lists_alternatives(small_design, capsys):
    if "MOSEK" not in installed_solvers():
        pytest.skip("MOSEK is not installed")
    try:
        solvers.get_solver("MOSEK", "relaxed")
    except SolverNotInstalledError as error:
        message = str(error)
    else:
        pytest.skip("a MOSEK licence is present, so the no-licence error cannot be shown")

    assert "licence" in message
    for name in ("IPM", "CLARABEL"):
        assert repr(name) in message
    assert "'MOSEK'" not in message.split("installed solver:")[1]

    problem = RelaxedProblem(small_design, n_patterns=3, random_state=0)
    with pytest.raises(SolverNotInstalledError, match=r"MOSEK.*licence"):
        problem.solve(solver="MOSEK")
    status, _, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", "mushrooms", "--window", "3", "--patterns", "3", "--solver", "mosek", "--quiet")
    assert status == 2
    assert "Install a MOSEK licence, or use an installed solver" in err


# NLL units ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_npz(tmp_path_factory):
    """Twenty real binarized MNIST vectors (784 entries each) as a user's .npz file."""
    mnist = load_dataset("binarized_mnist")
    path = tmp_path_factory.mktemp("mnist") / "mnist20.npz"
    np.savez(path, train=mnist.train[:20], valid=mnist.valid[:20], test=mnist.test[:20])
    return path


def test_half_everywhere_scores_774_ln2(mnist_npz):
    X = read_npz(mnist_npz).test
    gates = np.ones((2, 11))
    fitted = FittedModel(kind="relaxed", window=10, intercept=True, weights={"v": np.zeros((2, 11)), "w": np.zeros((2, 11))}, gates=gates)
    figures = fitted.evaluate(fitted.design_for(X))

    assert figures["n_positions"] == 774
    np.testing.assert_allclose(figures["nll"], 774 * LN2, rtol=1e-13)
    np.testing.assert_allclose(figures["nll"], 536.4959, atol=5e-5)
    np.testing.assert_allclose(figures["nll"] / LN2, 774.0, rtol=1e-13)
    np.testing.assert_allclose(fitted.score_samples(X), -774 * LN2, rtol=1e-13)


ZERO_MODEL_OPTIONS = ("--window", "10", "--patterns", "2", "--no-intercept", "--beta", "1e6", "--solver", "FISTA", "--quiet")


def test_fit_prints_nll_unit(mnist_npz, tmp_path, capsys):
    out = tmp_path / "fit.json"
    status, printed, _ = run_cli(capsys, "fit", "--model", "cpr", "--dataset", mnist_npz, "--json", out, *ZERO_MODEL_OPTIONS)

    assert status == 0
    assert "nats per vector, summed over the 774 modelled positions" in printed
    row = next(line for line in printed.splitlines() if line.startswith("CPR"))
    assert "536.4959" in row.split()[3]
    data = json.loads(out.read_text())
    assert data["nll_unit"] == "nats per vector, summed over 774 modelled positions"
    assert data["nll"]["test"] == pytest.approx(774 * LN2, rel=1e-12)


def test_reproduce_prints_nll_unit(mnist_npz, capsys):
    status, printed, _ = run_cli(capsys, "reproduce", "--models", "cpr", "--dataset", mnist_npz, *ZERO_MODEL_OPTIONS)

    assert status == 0
    assert "nats per vector, summed over the 774 modelled positions" in printed
    row = next(line for line in printed.splitlines() if line.startswith("CPR"))
    assert row.split()[3] == "536.4959"


def test_verify_prints_objective_unit(chain_npz, capsys):
    status, printed, _ = run_cli(capsys, "verify", "--dataset", chain_npz, "--window", "2", "--restarts", "1", "--quiet")
    assert status == 0
    assert "nats per vector" in printed


def test_verify_prints_modelled_positions(chain_npz, capsys):
    status, printed, _ = run_cli(capsys, "verify", "--dataset", chain_npz, "--window", "2", "--restarts", "1", "--quiet")
    assert status == 0
    assert "14 modelled positions" in printed


# Model files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["count", "cpe", "ptr"])
def test_saved_model_reproduces_printed_figures(model, chain_npz, tmp_path, capsys):
    model_path = tmp_path / f"{model}.npz"
    json_path = tmp_path / f"{model}.json"
    status, _, _ = run_cli(capsys, "fit", "--model", model, "--dataset", chain_npz, "--window", "3", "--patterns", "4", "--max-epochs", "2", "--save-model", model_path, "--json", json_path, "--quiet")
    assert status == 0

    loaded = FittedModel.load(model_path)
    figures = json.loads(json_path.read_text())
    test = read_npz(chain_npz).test
    assert loaded.evaluate(loaded.design_for(test))["nll"] == pytest.approx(figures["nll"]["test"], rel=1e-12)
    assert loaded.metadata["settings"]["window"] == 3
    assert loaded.metadata["settings"]["seed"] == 0
    assert loaded.metadata["versions"]["numpy"] == np.__version__
    if model != "count":
        assert loaded.gates is not None or model == "nn"
    with np.load(model_path, allow_pickle=False) as archive:
        assert all(archive[name].dtype != object for name in archive.files)


@pytest.fixture
def saved_model(tmp_path, small_design):
    gates = np.random.default_rng(0).standard_normal((3, 4))
    v = np.random.default_rng(1).standard_normal((3, 4))
    fitted = FittedModel(kind="exact", window=3, intercept=True, weights={"v": v, "w": 0.5 * v}, gates=gates, rule="relu", metadata={"seed": 0})
    path = tmp_path / "model.npz"
    fitted.save(path)
    return path


def _rewrite_header(path, change):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    header = json.loads(str(contents["header"]))
    change(header)
    contents["header"] = np.array(json.dumps(header))
    with open(path, "wb") as handle:
        np.savez(handle, **contents)


@pytest.mark.parametrize(
    "change",
    [
        lambda header: header.update(window=4),
        lambda header: header.update(rule="gated"),
        lambda header: header.update(intercept=False),
        lambda header: header["metadata"].update(seed=1),
    ],
    ids=["window", "rule", "intercept", "metadata"],
)
def test_altered_model_header_detected(change, saved_model):
    _rewrite_header(saved_model, change)
    with pytest.raises(ModelFileError, match=r"header does not match its recorded checksum"):
        FittedModel.load(saved_model)


def test_model_header_without_checksum_rejected(saved_model):
    _rewrite_header(saved_model, lambda header: header.pop("header_sha256"))
    with pytest.raises(ModelFileError, match=r"header has no checksum.*save the model again"):
        FittedModel.load(saved_model)


def test_incompatible_model_version_rejected(saved_model):
    _rewrite_header(saved_model, lambda header: header.update(format_version=2, package_version="9.0"))
    with pytest.raises(ModelFileError, match=r"format version 2, written by convexar_opt '9.0'.*reads format 1 only"):
        FittedModel.load(saved_model)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9])
def test_truncated_model_rejected(keep, saved_model):
    content = saved_model.read_bytes()
    saved_model.write_bytes(content[: int(keep * len(content))])
    with pytest.raises(ModelFileError, match=r"not a readable model file"):
        FittedModel.load(saved_model)


def test_pickle_as_model_never_unpickled(tmp_path):
    import pickle

    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps({"kind": "exact"}))
    with pytest.raises(ModelFileError, match=r"not a readable model file"):
        FittedModel.load(path)


def test_inconsistent_model_arrays_rejected():
    with pytest.raises(InvalidParameterError, match=r"v of a 'exact' model with window 3 and intercept True must have shape \(2, 4\)"):
        FittedModel(kind="exact", window=3, intercept=True, weights={"v": np.zeros((2, 3)), "w": np.zeros((2, 4))}, gates=np.ones((2, 4)))
    with pytest.raises(InvalidParameterError, match=r"alpha of a 'nn' model .* must have shape \(5,\)"):
        FittedModel(kind="nn", window=3, intercept=False, weights={"U": np.zeros((5, 3)), "alpha": np.zeros(4)})


# Reproducibility --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["cpr", "cph", "ptr"])
def test_same_seed_bit_identical(model, chain_npz):
    dataset = read_npz(chain_npz)
    settings = Settings(window=3, n_patterns=4, seed=3, max_epochs=2, device="cpu")
    first = without_timings(run_model(model, dataset, settings).to_dict())
    second = without_timings(run_model(model, dataset, settings).to_dict())

    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_same_seed_identical_json_files(chain_npz, tmp_path, capsys):
    documents = []
    for run in range(2):
        path = tmp_path / f"run{run}.json"
        status, _, _ = run_cli(capsys, "reproduce", "--models", "cpe,nn", "--dataset", chain_npz, "--window", "3", "--patterns", "4", "--max-epochs", "2", "--json", path, "--quiet")
        assert status == 0
        documents.append(json.loads(path.read_text()))

    assert without_timings(documents[0]) == without_timings(documents[1])
    versions = documents[0]["versions"]
    for name in ("python", "convexar_opt", "numpy", "scipy", "cvxpy", "torch"):
        assert versions[name]
    assert versions["cpu_count"] >= 1
    assert versions["torch_threads"] >= 1
    assert set(versions["thread_settings"]) == {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


# Interrupted SGD runs -----------------------------------------------------------------------------


@pytest.fixture
def sgd_designs(markov_vectors):
    return build_design(markov_vectors[:40], window=3), build_design(markov_vectors[40:], window=3)


def _sgd(designs, path=None, resume=False, max_epochs=4):
    from convexar_opt.patterns import sample_gates

    gates = sample_gates(designs[0].n_weights, 4, random_state=0)
    settings = training.SGDSettings(max_epochs=max_epochs, patience=100, device="cpu", seed=2)
    return training.train_sgd("pth", *designs, gates=gates, settings=settings, checkpoint_path=path, resume=resume)


def _assert_same_run(resumed, uninterrupted):
    assert without_timings(resumed.history) == without_timings(uninterrupted.history)
    assert resumed.epochs == uninterrupted.epochs
    assert resumed.iterations == uninterrupted.iterations
    for name, array in uninterrupted.weights.items():
        np.testing.assert_array_equal(resumed.weights[name], array)


def test_resume_after_keyboard_interrupt(sgd_designs, tmp_path, monkeypatch):
    uninterrupted = _sgd(sgd_designs)
    path = tmp_path / "run.pt"
    original = training._train_epoch
    calls = []

    def interrupt_third_epoch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(training, "_train_epoch", interrupt_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        _sgd(sgd_designs, path)
    monkeypatch.setattr(training, "_train_epoch", original)

    _assert_same_run(_sgd(sgd_designs, path, resume=True), uninterrupted)


def test_resume_after_short_run(sgd_designs, tmp_path):
    path = tmp_path / "run.pt"
    short = _sgd(sgd_designs, path, max_epochs=1)
    resumed = _sgd(sgd_designs, path, resume=True, max_epochs=4)

    assert short.epochs == 1
    _assert_same_run(resumed, _sgd(sgd_designs))


SGD_CLI = ("--model", "ptr", "--window", "3", "--patterns", "4", "--patience", "100", "--device", "cpu", "--quiet")


def test_cli_resume_after_short_run(chain_npz, tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    direct, resumed = tmp_path / "direct.json", tmp_path / "resumed.json"
    assert run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "4", "--json", direct)[0] == 0
    assert run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "2", "--checkpoint", checkpoint)[0] == 0
    assert run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "4", "--checkpoint", checkpoint, "--resume", "--json", resumed)[0] == 0

    first = without_timings(json.loads(direct.read_text()))
    second = without_timings(json.loads(resumed.read_text()))
    assert second["epochs"] == 4
    assert second == first


def test_cli_resume_after_keyboard_interrupt(chain_npz, tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "run.pt"
    direct, resumed = tmp_path / "direct.json", tmp_path / "resumed.json"
    assert run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "4", "--json", direct)[0] == 0

    original = training._train_epoch
    calls = []

    def interrupt_third_epoch(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(training, "_train_epoch", interrupt_third_epoch)
    status, _, err = run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "4", "--checkpoint", checkpoint)
    monkeypatch.setattr(training, "_train_epoch", original)
    assert status == 130
    assert "interrupted" in err
    assert checkpoint.exists()

    assert run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "4", "--checkpoint", checkpoint, "--resume", "--json", resumed)[0] == 0
    assert without_timings(json.loads(resumed.read_text())) == without_timings(json.loads(direct.read_text()))


# A new user with broken files and odd settings ----------------------------------------------------


def _write_user_files(folder):
    """Write the broken files a user might pass and return their paths by name."""
    paths = {
        "garbage": folder / "garbage.svm",
        "letters": folder / "letters.txt",
        "binary": folder / "binary.svm",
        "ragged": folder / "ragged.amat",
        "amat_letters": folder / "letters.amat",
        "cube": folder / "cube.npz",
        "strings": folder / "strings.npz",
        "folder": folder / "a_folder",
    }
    paths["garbage"].write_text("1 1:1 3:1\n0 2:1 garbage\n")
    paths["letters"].write_text("a b c\n1 0 1\n")
    paths["binary"].write_bytes(b"\xff\xfe\x00\x01binary\n")
    paths["ragged"].write_text("0 1 1\n1 0 1\n1 0\n")
    paths["amat_letters"].write_text("0 1 1\n1 x 0\n")
    np.savez(paths["cube"], train=np.zeros((2, 3, 4), dtype=np.uint8))
    np.savez(paths["strings"], train=np.array([["0", "1"], ["1", "0"]]))
    paths["folder"].mkdir()
    return paths


BROKEN_FILES = [
    ("garbage", r"garbage.svm, line 2: expected 'index:value', got 'garbage'"),
    ("letters", r"letters.txt, line 1: expected 'index:value', got 'b'.*read as LIBSVM.*end in .amat"),
    ("binary", r"binary.svm is not UTF-8 text, so not a LIBSVM file"),
    ("ragged", r"ragged.amat, line 3: 2 values, but line 1 has 3"),
    ("amat_letters", r"letters.amat, line 2: 'x' is not a number"),
    ("cube", r"cube.npz.train must be a 2-D array .* shape \(2, 3, 4\)\. Flatten each sample"),
    ("strings", r"strings.npz.train must be numeric .* dtype is <U1\. Convert it"),
    ("folder", r"'.*a_folder' is a directory; give the path of a .npz, LIBSVM or .amat file"),
]


@pytest.mark.parametrize("name, message", BROKEN_FILES, ids=[name for name, _ in BROKEN_FILES])
def test_cli_broken_file(name, message, tmp_path, capsys, no_solve):
    paths = _write_user_files(tmp_path)
    status, out, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", paths[name], "--window", "2", "--quiet")

    assert status == 2
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert re.search(message, err), err
    with pytest.raises(InvalidDataError, match=message):
        load_file(paths[name])


@pytest.mark.parametrize("reader, suffix", [(read_libsvm, ".svm"), (read_amat, ".amat")])
def test_unreadable_file_rejected(reader, suffix, tmp_path, monkeypatch, capsys):
    # The tests may run as root, which reads any file, so a denied open is simulated.
    import builtins

    path = tmp_path / f"locked{suffix}"
    path.write_text("1 1:1\n" if suffix == ".svm" else "0 1\n")

    def deny(opener):
        def open_unless_locked(file, *args, **kwargs):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return opener(file, *args, **kwargs)

        return open_unless_locked

    monkeypatch.setattr(builtins, "open", deny(builtins.open))
    monkeypatch.setattr(np, "loadtxt", deny(np.loadtxt))
    with pytest.raises(InvalidDataError, match=r"cannot read .*locked.*: Permission denied"):
        reader(path)

    status, _, err = run_cli(capsys, "fit", "--model", "count", "--dataset", path, "--window", "1", "--quiet")
    assert status == 2
    assert "Permission denied" in err


def _cuda_available():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


BAD_SETTINGS = [
    (("--model", "cpr", "--window", "0"), r"window must be an integer from 1; got 0"),
    (("--model", "cpr", "--patterns", "-3"), r"n_patterns must be an integer from 1; got -3"),
    (("--model", "cpr", "--tol", "0"), r"tol must be finite and > 0; got 0.0"),
    (("--model", "ptr", "--batch-size", "0"), r"batch_size must be an integer from 1; got 0"),
    (("--model", "cpe", "--beta", "-1"), r"beta must be finite and >= 0; got -1.0"),
    (("--model", "cph", "--rho", "-1"), r"rho must be finite and >= 0; got -1.0"),
    (("--model", "cpr", "--seed", "-1"), r"seed must be an integer from 0; got -1"),
    (("--model", "cpr", "--solver", "nope"), r"unknown solver 'nope'.*'CLARABEL'"),
    (("--model", "cpr", "--solver-option", "foo"), r"--solver-option must be KEY=VALUE.*got 'foo'"),
    (("--model", "cpr", "--solver-option", "=3"), r"--solver-option must be KEY=VALUE.*got '=3'"),
    (("--model", "cpr", "--solver-option", "max_iterations=5"), r"unknown option\(s\) \['max_iterations'\].*'max_iter'"),
    (("--model", "ptr", "--resume"), r"--resume needs --checkpoint FILE"),
    (("--model", "cpr", "--checkpoint", "run.pt"), r"--checkpoint and --resume apply to the SGD models"),
    (("--model", "ptr", "--solver", "IPM"), r"--solver choose the solver of the convex models.*--model ptr uses no convex solver"),
    (("--model", "cpr", "--json", "/no/such/folder/out.json"), r"--json '/no/such/folder/out.json': directory '/no/such/folder' does not exist"),
    (("--model", "cpr", "--save-model", "/no/such/folder/model.npz"), r"--save-model .*does not exist"),
    (("--model", "ptr", "--checkpoint", "/no/such/folder/run.pt"), r"--checkpoint .*does not exist"),
]
if not _cuda_available():
    BAD_SETTINGS.append((("--model", "ptr", "--device", "cuda"), r"device 'cuda' was requested, but PyTorch .* sees no CUDA GPU.*'cpu'"))


@pytest.mark.parametrize("arguments, message", BAD_SETTINGS, ids=[" ".join(args[2:]) for args, _ in BAD_SETTINGS])
def test_cli_bad_setting_rejected_before_data(arguments, message, monkeypatch, capsys):
    def fail_if_called(args):
        raise AssertionError("data were loaded although the settings were invalid")

    monkeypatch.setattr(cli, "load_data", fail_if_called)
    status, out, err = run_cli(capsys, "fit", "--dataset", "mushrooms", *arguments, "--quiet")

    assert status == 2
    assert "Traceback" not in err
    assert re.search(message, err), err
    assert out == ""


def test_cli_window_above_dimension(chain_npz, capsys, no_solve):
    status, _, err = run_cli(capsys, "fit", "--model", "cpe", "--dataset", chain_npz, "--window", "16", "--quiet")
    assert status == 2
    assert "window must be an integer from 1 to 15; got 16. The vectors have 16 entries" in err


def test_cli_reproduce_without_models(chain_npz, capsys):
    status, out, err = run_cli(capsys, "reproduce", "--models", ",", "--dataset", chain_npz, "--quiet")
    assert status == 2
    assert "--models ',' names no model" in err
    assert out == ""


def test_cli_file_options_with_bundled_set_warn(caplog, capsys):
    status, _, _ = run_cli(capsys, "fit", "--model", "count", "--dataset", "mushrooms", "--window", "3", "--n-features", "9", "--quiet")
    assert status == 0
    assert "--n-features ignored" in caplog.text


def test_cli_resume_missing_checkpoint_warns(chain_npz, tmp_path, caplog, capsys):
    checkpoint = tmp_path / "typo.pt"
    status, _, _ = run_cli(capsys, "fit", "--dataset", chain_npz, *SGD_CLI, "--max-epochs", "1", "--checkpoint", checkpoint, "--resume")
    assert status == 0
    assert repr(str(checkpoint)) in caplog.text
    assert "not found, so training starts from epoch 0" in caplog.text
    assert checkpoint.exists()


def test_cli_diverged_sgd_run_labelled(chain_npz, tmp_path, caplog, capsys):
    out = tmp_path / "diverged.json"
    status, printed, _ = run_cli(capsys, "fit", "--dataset", chain_npz, "--model", "nn", "--window", "3", "--patterns", "3", "--optimizer", "sgd", "--learning-rate", "1e12", "--max-epochs", "3", "--patience", "10", "--json", out, "--quiet")
    figures = json.loads(out.read_text())

    assert status == 0
    assert figures["extra"]["stopping_reason"] == "diverged"
    assert figures["status"] == "diverged"
    assert "diverged (torch-sgd)" in printed
    assert "Lower the learning rate" in caplog.text


def test_cli_user_limit_shows_no_value(chain_npz, capsys):
    if "CLARABEL" not in installed_solvers():
        pytest.skip("CLARABEL is not installed")
    with warnings.catch_warnings():
        # CVXPY and the package both warn that the solution may be inaccurate.
        warnings.simplefilter("ignore", UserWarning)
        status, out, err = run_cli(capsys, "fit", "--model", "cpr", "--dataset", chain_npz, "--window", "3", "--patterns", "3", "--solver", "CLARABEL", "--solver-option", "max_iter=1", "--quiet")
    assert status == 2
    assert "status 'user_limit'" in err
    assert "-inf" not in out + err
