"""convexar_opt: convex training of two-layer ReLU autoregressive models of binary data.

The public API re-exports the data pipeline, the three convex programs, the solver
registry and the certificates. PyTorch is imported only by the modules that need it.
"""

import logging

from .certificates import Certificate, certify
from .data import (
    WeightedDesign,
    balance_design,
    build_design,
    compress,
    subsample_design,
    window_data,
)
from .exceptions import (
    ConvergenceWarning,
    ConvexARError,
    InvalidDataError,
    InvalidParameterError,
    ModelFileError,
    NotFittedError,
    NotSolvedError,
    SolverError,
    SolverNotInstalledError,
)
from .patterns import enumerate_patterns, gate_masks, sample_gates
from .problems import ExactProblem, HingeProblem, RelaxedProblem
from .solvers import available_solvers, installed_solvers
from .model import FittedModel
from .path import beta_max, regularization_path
from .reconstruction import check_reconstruction, reconstruct_network
from .verify import verify_equivalence

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "Certificate",
    "ConvergenceWarning",
    "ConvexARError",
    "ExactProblem",
    "FittedModel",
    "HingeProblem",
    "InvalidDataError",
    "InvalidParameterError",
    "ModelFileError",
    "NotFittedError",
    "NotSolvedError",
    "RelaxedProblem",
    "SolverError",
    "SolverNotInstalledError",
    "WeightedDesign",
    "available_solvers",
    "beta_max",
    "balance_design",
    "build_design",
    "certify",
    "check_reconstruction",
    "compress",
    "enumerate_patterns",
    "gate_masks",
    "installed_solvers",
    "reconstruct_network",
    "regularization_path",
    "sample_gates",
    "subsample_design",
    "verify_equivalence",
    "window_data",
    "__version__",
]
