"""Cases and timed solves of ``bench_solvers.py`` (imported after the thread count is set)."""

import time
import warnings
from dataclasses import dataclass

import numpy as np

from convexar_opt import (
    ExactProblem,
    HingeProblem,
    RelaxedProblem,
    SolverError,
    balance_design,
    build_design,
    subsample_design,
)
from convexar_opt.datasets import load_dataset

PROBLEM_CLASSES = {"exact": ExactProblem, "relaxed": RelaxedProblem, "hinge": HingeProblem}
WINDOW = 10
N_PATTERNS = 50
BETA = 1e-3
RHO = 1e-4


@dataclass
class Run:
    """One timed solve: seconds, certified relative gap, status and objective."""

    solver: str
    seconds: float
    relative_gap: float
    status: str
    objective: float
    iterations: int | None = None
    timed_out: bool = False


@dataclass
class Row:
    """One benchmark case with its native and CVXPY runs."""

    case: str
    dataset: str
    program: str
    n_contexts: int
    n_rows: float
    runs: dict


def paper_design(n_rows, seed):
    """Return the balanced Adult training design subsampled to ``n_rows`` rows, no intercept."""
    train = load_dataset("adult").train
    design = build_design(train, WINDOW, intercept=False)
    return subsample_design(balance_design(design, seed), n_rows, seed)


def full_design(name):
    """Return the design of a bundled training set (rcv1: its validation split)."""
    data = load_dataset(name)
    vectors = data.train if data.train is not None else data.valid
    return build_design(vectors, WINDOW)


def make_problem(program, design, seed):
    kwargs = {"rho": RHO} if program == "hinge" else {}
    return PROBLEM_CLASSES[program](
        design, n_patterns=N_PATTERNS, beta=BETA, random_state=seed, **kwargs
    )


def time_native(problem, tol, repeats):
    """Return the fastest of ``repeats`` cold native solves."""
    best = None
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # blas_threads=None lets --threads govern the native solver as well as CVXPY.
            problem.solve(solver="IPM", warm_start=False, tol=tol, blas_threads=None)
        seconds = time.perf_counter() - start
        if best is None or seconds < best.seconds:
            best = Run(
                solver="IPM",
                seconds=seconds,
                relative_gap=problem.certificate.relative_gap,
                status=problem.status,
                objective=problem.value,
                iterations=problem.solver_stats.iterations,
            )
    return best


def time_cvxpy(problem, solver, time_limit):
    """Return one CVXPY solve with a fresh compilation, certified as returned."""
    problem._cvxpy = None
    limit = {"SCS": {"time_limit_secs": time_limit}, "CLARABEL": {"time_limit": time_limit}}[solver]
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem.solve(solver=solver, warm_start=False, polish=False, **limit)
    except SolverError as error:
        seconds = time.perf_counter() - start
        status = "solver_error"
        if "user_limit" in str(error) or seconds >= 0.98 * time_limit:
            status = "timeout"
        return Run(solver, seconds, np.nan, status, np.nan, timed_out=status == "timeout")
    seconds = time.perf_counter() - start
    solve_seconds = problem.solver_stats.extra.get("solve_seconds", seconds)
    timed_out = problem.status == "user_limit" or solve_seconds >= 0.98 * time_limit
    certificate = problem.certificate
    if certificate is None:
        return Run(solver, seconds, np.nan, problem.status, np.nan, timed_out=timed_out)
    return Run(
        solver=solver,
        seconds=seconds,
        relative_gap=certificate.relative_gap,
        status="timeout" if timed_out else problem.status,
        objective=certificate.primal,
        iterations=problem.solver_stats.iterations,
        timed_out=timed_out,
    )


def run_case(case, dataset, program, design, arguments, run_cvxpy=True):
    """Solve one case with every selected solver and print a line per solve."""
    problem = make_problem(program, design, arguments.seed)
    runs = {"IPM": time_native(problem, arguments.tol, arguments.repeats)}
    _print_run(case, dataset, program, runs["IPM"])

    solvers = []
    if run_cvxpy and not arguments.skip_clarabel:
        solvers.append("CLARABEL")
    if run_cvxpy and not arguments.skip_scs:
        solvers.append("SCS")
    for solver in solvers:
        runs[solver] = time_cvxpy(problem, solver, arguments.cvxpy_time_limit)
        _print_run(case, dataset, program, runs[solver], runs["IPM"])
    for solver in solvers:
        # The same certified accuracy as the CVXPY point, for an equal-accuracy ratio.
        gap = runs[solver].relative_gap
        if np.isfinite(gap) and gap > arguments.tol:
            runs[f"IPM@{solver}"] = time_native(problem, gap, arguments.repeats)
            _print_run(case, dataset, program, runs[f"IPM@{solver}"])
            print(f"     IPM to {solver}'s gap: speed-up {runs[solver].seconds / runs[f'IPM@{solver}'].seconds:.0f}x")
    return Row(case, dataset, program, design.n_contexts, design.n_rows, runs)


def _print_run(case, dataset, program, run, native=None):
    ratio = ""
    if native is not None and run.status != "solver_error":
        ratio = f"  native speed-up {'>' if run.timed_out else ''}{run.seconds / native.seconds:.0f}x"
    print(
        f"{case:4s} {dataset:16s} {program:7s} {run.solver:8s} {run.status:18s} "
        f"{run.seconds:9.3f} s  gap {run.relative_gap:9.2e}{ratio}",
        flush=True,
    )


def run_all(arguments):
    """Run every selected case and return the rows."""
    rows = []
    if "cpe" in arguments.cases:
        design = paper_design(1000, arguments.seed)
        rows.append(run_case("cpe", "adult (1000 rows)", "exact", design, arguments))
    if "cpr" in arguments.cases:
        design = paper_design(100_000, arguments.seed)
        rows.append(run_case("cpr", "adult (100000 rows)", "relaxed", design, arguments))
    if "full" in arguments.cases:
        for name in arguments.datasets:
            design = full_design(name)
            for program in arguments.programs:
                run_cvxpy = not (arguments.skip_cvxpy_exact and program != "relaxed")
                rows.append(run_case("full", name, program, design, arguments, run_cvxpy))
    return rows
