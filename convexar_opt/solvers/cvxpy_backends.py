"""CVXPY backends: SCS, Clarabel, ECOS and MOSEK.

| solver   | what ``warm_start=True`` does                                          |
| -------- | ---------------------------------------------------------------------- |
| SCS      | starts from the primal, dual and slack of the previous solve           |
| CLARABEL | re-uses the solver object; no starting point (cvxpy 1.9)               |
| ECOS     | nothing                                                                 |
| MOSEK    | nothing, because cvxpy's interface does not read the flag              |

Every backend polishes the point CVXPY returns before it is certified (option
``polish``, default True). The exact and hinge programs get Newton steps on the
optimal face guessed from the point, and the relaxed one gets FISTA steps, until the
certified gap reaches 1e-9 or stops improving. The certificate of the raw CVXPY point
is kept in ``extra["unpolished_certificate"]``.
"""

import logging
import time
import warnings

import numpy as np

from ..exceptions import (
    ConvergenceWarning,
    InvalidParameterError,
    SolverError,
    SolverNotInstalledError,
)
from ._polish import polish_point
from .base import SOLUTION_STATUSES, SOLVER_ERROR, Solver, SolverResult

logger = logging.getLogger(__name__)

# Polishing stops at this relative certified gap, or earlier when the gap stops improving.
_POLISH_TOLERANCE = 1e-9
_POLISH_OPTION = {"polish": "polish the CVXPY point before certifying it (default True)"}


class CvxpySolver(Solver):
    """Solve the problem's CVXPY form with a conic solver through ``cvxpy.Problem.solve``."""

    programs = ("exact", "relaxed", "hinge")
    warm_start_has_effect = False

    def check_options(self, options):
        """Raise InvalidParameterError for an unknown option or a non-boolean ``polish``."""
        super().check_options(options)
        polish = options.get("polish", True)
        if not isinstance(polish, (bool, np.bool_)):
            raise InvalidParameterError(f"polish must be True or False; got {polish!r}.")

    def solve(self, problem, warm_start, verbose, options):
        import cvxpy as cp

        polish = bool(options.pop("polish", True))
        start = time.perf_counter()
        compiled = problem.to_cvxpy()
        compile_seconds = time.perf_counter() - start

        if warm_start and not self.warm_start_has_effect and problem.warm_start_point() is not None:
            problem._warn_once(
                f"warm_start=True has no effect with solver {self.name!r}: {self.warm_start_effect}."
            )

        solve_start = time.perf_counter()
        try:
            compiled.solve(solver=self.name, warm_start=warm_start, verbose=verbose, **options)
        except cp.error.SolverError as error:
            seconds = time.perf_counter() - start
            logger.info("%s failed after %.3f s: %s", self.name, seconds, error)
            return SolverResult(
                status=SOLVER_ERROR,
                v=None,
                w=None,
                iterations=None,
                seconds=seconds,
                extra={"message": str(error)},
            )
        seconds = time.perf_counter() - start

        stats = compiled.solver_stats
        v, w = problem._read_cvxpy_weights()
        extra = {
            "compile_seconds": compile_seconds,
            "solve_seconds": time.perf_counter() - solve_start,
            "reported_value": None if compiled.value is None else float(compiled.value),
        }
        if polish and v is not None and compiled.status in SOLUTION_STATUSES:
            v, w, extra = _polish_result(problem, v, w, extra)
            seconds = time.perf_counter() - start
        return SolverResult(
            status=compiled.status,
            v=v,
            w=w,
            iterations=getattr(stats, "num_iters", None),
            seconds=seconds,
            extra=extra,
        )


def _polish_result(problem, v, w, extra):
    """Return the polished (v, w) and ``extra`` with both certificates."""
    polish_start = time.perf_counter()
    polished_v, polished_w, certificate, raw_certificate = polish_point(
        problem, v, w, _POLISH_TOLERANCE
    )
    extra = dict(extra)
    extra["unpolished_certificate"] = raw_certificate
    extra["certificate"] = certificate
    extra["polish_seconds"] = time.perf_counter() - polish_start
    logger.info(
        "polished the CVXPY point: relative gap %.3e -> %.3e in %.3f s",
        raw_certificate.relative_gap,
        certificate.relative_gap,
        extra["polish_seconds"],
    )
    return polished_v, polished_w, extra


class ScsSolver(CvxpySolver):
    name = "SCS"
    module = "scs"
    warm_start_has_effect = True
    warm_start_effect = "starts from the primal, dual and slack of the previous solve"
    options = {
        "max_iters": "iteration limit",
        "eps_abs": "absolute tolerance",
        "eps_rel": "relative tolerance",
        "eps_infeas": "infeasibility tolerance",
        "time_limit_secs": "time limit in seconds",
        "acceleration_lookback": "Anderson acceleration memory",
        "use_indirect": "use the indirect linear solver",
        **_POLISH_OPTION,
    }


class ClarabelSolver(CvxpySolver):
    name = "CLARABEL"
    module = "clarabel"
    warm_start_effect = "cvxpy 1.9 re-uses the solver object but passes no starting point"
    options = {
        "max_iter": "iteration limit",
        "time_limit": "time limit in seconds",
        "tol_gap_abs": "absolute duality-gap tolerance",
        "tol_gap_rel": "relative duality-gap tolerance",
        "tol_feas": "feasibility tolerance",
        "tol_ktratio": "KKT ratio tolerance",
        **_POLISH_OPTION,
    }


class EcosSolver(CvxpySolver):
    name = "ECOS"
    module = "ecos"
    warm_start_effect = "ECOS has no warm start"
    options = {
        "max_iters": "iteration limit",
        "abstol": "absolute tolerance",
        "reltol": "relative tolerance",
        "feastol": "feasibility tolerance",
        **_POLISH_OPTION,
    }


class MosekSolver(CvxpySolver):
    name = "MOSEK"
    module = "mosek"
    warm_start_effect = "cvxpy's MOSEK interface does not read the flag"
    options = {
        "mosek_params": "dict of MOSEK parameters",
        "accept_unknown": "accept unknown status",
        **_POLISH_OPTION,
    }
    _licence_error = None
    _licence_checked = False

    def check_usable(self):
        if not MosekSolver._licence_checked:
            MosekSolver._licence_error = _probe_mosek_licence()
            MosekSolver._licence_checked = True
        if MosekSolver._licence_error is not None:
            from . import installed_solvers

            others = [name for name in installed_solvers() if name != "MOSEK"]
            raise SolverNotInstalledError(
                "solver 'MOSEK' is installed but cannot run: "
                f"{MosekSolver._licence_error}. Install a MOSEK licence, or use an "
                f"installed solver: {others}."
            )


def _probe_mosek_licence():
    """Return None if MOSEK can solve a one-variable problem, else the reason it cannot."""
    import cvxpy as cp

    variable = cp.Variable()
    probe = cp.Problem(cp.Minimize(cp.square(variable - 1.0)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.solve(solver="MOSEK")
    except Exception as error:  # noqa: BLE001 - any failure means MOSEK is unusable here
        message = str(error).strip().splitlines()
        return message[0] if message else type(error).__name__
    if probe.status != "optimal" or not np.isfinite(probe.value):
        return f"a one-variable test problem ended with status {probe.status!r}"
    return None


def warn_inaccurate(name, status, problem, certificate=None):
    """Warn that a solve ended with an inaccurate status, quoting the certified gap if any."""
    if certificate is None:
        detail = "the solver produced no point that could be certified"
    else:
        detail = (
            f"the certificate of the returned point shows a relative duality gap of "
            f"{certificate.relative_gap:.1e}"
        )
        # The relaxed program has no cone constraints, so its violation is only informative.
        if certificate.program != "relaxed":
            detail += f" and a constraint violation of {certificate.constraint_violation:.1e}"
    warnings.warn(
        f"solver {name!r} ended with status {status!r} on {problem!r}; {detail}. Check "
        "problem.certificate, raise the iteration limit, or try another solver.",
        ConvergenceWarning,
        stacklevel=3,
    )


def raise_failed(name, status, problem, message=""):
    """Raise SolverError for a solve that produced no usable point."""
    from . import installed_solvers

    detail = f" ({message.rstrip('.')})" if message else ""
    others = [other for other in installed_solvers(problem.program) if other != name]
    raise SolverError(
        f"solver {name!r} failed with status {status!r} on {problem!r}{detail}. Try "
        f"another solver ({others}; the first is the default) or raise its iteration limit."
    )
