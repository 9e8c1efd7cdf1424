"""Registry of the solvers, in order of preference.

``solve(solver=None)`` takes the first installed solver that supports the program. The
native solvers come first; CVXPY backends are chosen by name (``'SCS'``,
``'CLARABEL'``, ``'ECOS'``, ``'MOSEK'``).
"""

from ..exceptions import InvalidParameterError, SolverNotInstalledError
from .base import Solver, SolverResult
from .cvxpy_backends import ClarabelSolver, EcosSolver, MosekSolver, ScsSolver
from .fista import FistaSolver
from .ipm import IpmSolver

_REGISTRY = {}


def register_solver(solver, first=False):
    """Add a :class:`Solver` instance to the registry, at the end or at the front."""
    global _REGISTRY
    if first:
        _REGISTRY = {solver.name: solver, **_REGISTRY}
    else:
        _REGISTRY[solver.name] = solver


for _backend in (ClarabelSolver(), ScsSolver(), EcosSolver(), MosekSolver()):
    register_solver(_backend)

# The native solvers go to the front, so that solve() with no solver name uses them.
register_solver(FistaSolver(), first=True)
register_solver(IpmSolver(), first=True)


def available_solvers():
    """Return the names of every registered solver, installed or not, in preference order."""
    return list(_REGISTRY)


def installed_solvers(program=None):
    """Return the names of installed solvers, optionally only those that support ``program``."""
    return [
        name
        for name, solver in _REGISTRY.items()
        if solver.is_installed() and (program is None or program in solver.programs)
    ]


def get_solver(name, program):
    """Return the solver registered as ``name`` (or the default when None) for ``program``.

    Raises
    ------
    InvalidParameterError
        If the name is unknown or the solver does not support the program.
    SolverNotInstalledError
        If the solver is not installed or not licensed.

    Both messages list the installed alternatives.
    """
    candidates = installed_solvers(program)
    if name is None:
        if not candidates:
            raise SolverNotInstalledError(f"no installed solver supports the {program} program.")
        name = candidates[0]

    key = str(name).upper()
    if key not in _REGISTRY:
        raise InvalidParameterError(
            f"unknown solver {name!r}. Registered solvers: {available_solvers()}; "
            f"installed for the {program} program: {candidates}."
        )
    solver = _REGISTRY[key]
    if not solver.is_installed():
        raise SolverNotInstalledError(
            f"solver {key!r} is not installed (import of {solver.module!r} failed). "
            f"Install it, or use an installed solver: {candidates}."
        )
    if program not in solver.programs:
        raise InvalidParameterError(
            f"solver {key!r} does not support the {program} program; use one of {candidates}."
        )
    solver.check_usable()
    return solver


__all__ = [
    "Solver",
    "SolverResult",
    "available_solvers",
    "get_solver",
    "installed_solvers",
    "register_solver",
]
