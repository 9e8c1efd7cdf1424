"""CVXPY problem builders of the exact (5), relaxed (6) and hinge (7) programs."""

from .base import ConvexARProblem, ConvexSolution, SolverStats
from .exact import ExactProblem
from .hinge import HingeProblem
from .relaxed import RelaxedProblem

PROBLEM_CLASSES = {"exact": ExactProblem, "relaxed": RelaxedProblem, "hinge": HingeProblem}

__all__ = [
    "PROBLEM_CLASSES",
    "ConvexARProblem",
    "ConvexSolution",
    "ExactProblem",
    "HingeProblem",
    "RelaxedProblem",
    "SolverStats",
]
