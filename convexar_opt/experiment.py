"""Experiments: one model on one data set, under the default or the paper's protocol.

Models (Gabbur et al.'s names where they exist):

| name    | what is trained                                                     |
| ------- | ------------------------------------------------------------------- |
| `count` | smoothed count of each context (the reference row `COUNT`)          |
| `cpe`   | exact program (5), solved deterministically                         |
| `cpr`   | relaxed program (6), solved deterministically                       |
| `cph`   | hinge program (7), solved deterministically                         |
| `nn`    | two-layer ReLU network, mini-batch SGD                              |
| `ptr`   | relaxed program (6), mini-batch SGD                                 |
| `pth`   | hinge program (7), mini-batch SGD                                   |

The default protocol trains on the whole, unbalanced training set with an intercept,
which exact compression makes cheap. The ``paper`` protocol follows Gabbur et al.'s
appendix: no intercept, class-balanced training rows, and for the deterministic solves of
(5) and (6) a random subset of 1000 and 100,000 rows.
"""

import logging
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from threadpoolctl import threadpool_info

from . import __version__
from ._devices import check_device
from ._validation import check_int, check_nonnegative
from .data import balance_design, build_design, subsample_design
from .evaluation import accuracy, nll_per_vector
from .exceptions import InvalidParameterError
from .model import RULES, FittedModel
from .patterns import gate_masks, sample_gates

logger = logging.getLogger(__name__)

CONVEX_MODELS = {"cpe": "exact", "cpr": "relaxed", "cph": "hinge"}
SGD_MODELS = {"nn": "nn", "ptr": "relaxed", "pth": "hinge"}
MODELS = ("count", *CONVEX_MODELS, *SGD_MODELS)
PROTOCOLS = ("default", "paper")
PAPER_TRAIN_ROWS = {"cpe": 1000, "cph": 1000, "cpr": 100_000}
OPTIMIZERS = ("sgd", "adam")


@dataclass
class Settings:
    """Every setting of an experiment; stored in the results file.

    ``beta`` and ``rho`` are in the units of the per-vector objective (nats per vector),
    the same beta for the network and the convex programs.
    """

    window: int = 10
    n_patterns: int = 50
    beta: float = 1e-3
    rho: float = 1e-4
    intercept: bool = True
    balance: bool = False
    train_rows: int | None = None
    seed: int = 0
    solver: str | None = None
    tol: float = 1e-6
    rule: str = "gated"
    protocol: str = "default"
    learning_rate: float = 1e-3
    batch_size: int = 100
    optimizer: str = "adam"
    max_epochs: int = 200
    patience: int = 5
    min_delta: float = 1e-3
    average_iterates: bool = True
    device: str = "auto"
    solver_options: dict = field(default_factory=dict)

    def validate(self):
        """Raise InvalidParameterError for a setting out of range, before any work starts."""
        check_int(self.window, "window", 1)
        check_int(self.n_patterns, "n_patterns", 1, hint=" Use at least one pattern.")
        check_nonnegative(self.beta, "beta")
        check_nonnegative(self.rho, "rho")
        check_nonnegative(self.tol, "tol", allow_zero=False)

        check_nonnegative(self.learning_rate, "learning_rate", allow_zero=False)
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.max_epochs, "max_epochs", 1)
        check_int(self.patience, "patience", 1)
        check_nonnegative(self.min_delta, "min_delta")

        if self.train_rows is not None:
            check_int(self.train_rows, "train_rows", 1)
        check_int(self.seed, "seed", 0, hint=" Use a non-negative integer seed.")

        for name, value, choices in (
            ("protocol", self.protocol, PROTOCOLS),
            ("rule", self.rule, RULES),
            ("optimizer", self.optimizer, OPTIMIZERS),
        ):
            if value not in choices:
                raise InvalidParameterError(
                    f"{name} must be one of {list(choices)}; got {value!r}."
                )

        if not isinstance(self.solver_options, dict):
            raise InvalidParameterError(
                f"solver_options must be a dict of option names to values; got "
                f"{self.solver_options!r}."
            )
        check_device(self.device)
        return self


def protocol_settings(model, settings):
    """Return the settings ``model`` is trained with under ``settings.protocol``."""
    if settings.protocol != "paper":
        return settings
    rows = PAPER_TRAIN_ROWS.get(model) if settings.train_rows is None else settings.train_rows
    return replace(settings, intercept=False, balance=True, train_rows=rows)


@dataclass
class Designs:
    """Compressed train, validation and test designs built with one set of settings."""

    train: object
    valid: object | None
    test: object | None


def prepare_designs(dataset, settings):
    """Window, compress, balance and subsample the splits of ``dataset``."""
    train = build_design(dataset.split("train"), settings.window, intercept=settings.intercept)
    if settings.balance:
        train = balance_design(train, random_state=settings.seed)
    if settings.train_rows is not None and settings.train_rows < train.n_rows:
        train = subsample_design(train, settings.train_rows, random_state=settings.seed)
    elif settings.train_rows is not None:
        logger.warning(
            "train_rows = %d is not below the %d training rows available, so every row is used",
            settings.train_rows,
            round(train.n_rows),
        )

    others = {}
    for split in ("valid", "test"):
        array = getattr(dataset, split)
        others[split] = None if array is None else build_design(
            array, settings.window, intercept=settings.intercept
        )
    return Designs(train=train, **others)


def package_versions():
    """Return the versions of Python, this package and its numeric dependencies, and threads."""
    import importlib.metadata

    versions = {"python": platform.python_version(), "convexar_opt": __version__}
    for name in ("numpy", "scipy", "cvxpy", "scs", "clarabel", "ecos", "mosek", "torch"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["platform"] = platform.platform()
    versions["cpu_count"] = os.cpu_count()
    versions["thread_settings"] = {
        name: os.environ.get(name)
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    # These are the pools outside a solve. During one, the native solvers limit BLAS to
    # their blas_threads option.
    versions["blas_threads"] = [
        {"library": pool["internal_api"], "threads": pool["num_threads"]}
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    try:
        import torch

        versions["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return versions


@dataclass
class FitResult:
    """Figures of one trained model, ready for a table or a JSON file."""

    dataset: str
    model: str
    settings: dict
    status: str
    objective: float | None
    seconds: float
    nll: dict
    accuracy: dict
    certificate: dict | None
    n_positions: int
    n_contexts: int
    train_rows: int
    solver: str | None = None
    iterations: int | None = None
    epochs: int | None = None
    history: list | None = None
    extra: dict = field(default_factory=dict)
    fitted: FittedModel | None = None

    def to_dict(self):
        """Return every figure as JSON-ready data (the fitted weights are left out)."""
        data = asdict(replace(self, fitted=None))
        data.pop("fitted")
        data["nll_unit"] = f"nats per vector, summed over {self.n_positions} modelled positions"
        data["versions"] = package_versions()
        return data


def _evaluate(fitted, designs):
    nll = {}
    scores = {}
    for split in ("train", "valid", "test"):
        design = getattr(designs, split)
        if design is None:
            nll[split] = None
            scores[split] = None
            continue
        logits = fitted.logits(design)
        nll[split] = nll_per_vector(design, logits)
        scores[split] = accuracy(design, logits)
    return nll, scores


def _model_metadata(settings, **figures):
    """Return what a saved model keeps besides its weights: settings, versions, figures."""
    return {**figures, "settings": asdict(settings), "versions": package_versions()}


def _gates(settings, n_weights):
    return sample_gates(n_weights, settings.n_patterns, random_state=settings.seed)


def _solver_options(settings, program):
    from .solvers import get_solver

    options = dict(settings.solver_options)
    backend = get_solver(settings.solver, program)
    if backend.native and "tol" in backend.options:
        options.setdefault("tol", settings.tol)
    return backend.name, options


def fit_count(designs, settings, dataset_name):
    """Fit the smoothed count reference on the training design."""
    metadata = _model_metadata(settings, pseudo_count=0.5)

    # The count model is its training counts, so its fitting time is that of copying them.
    start = time.perf_counter()
    train = designs.train
    fitted = FittedModel(
        kind="count",
        window=train.window,
        intercept=train.intercept,
        weights={"contexts": train.contexts, "ones": train.ones, "zeros": train.zeros},
        metadata=metadata,
    )
    seconds = time.perf_counter() - start
    nll, scores = _evaluate(fitted, designs)
    return FitResult(
        dataset=dataset_name,
        model="count",
        settings=asdict(settings),
        status="closed_form",
        objective=nll["train"],
        seconds=seconds,
        nll=nll,
        accuracy=scores,
        certificate=None,
        n_positions=train.n_positions,
        n_contexts=train.n_contexts,
        train_rows=int(round(train.n_rows)),
        fitted=fitted,
    )


def fit_convex(model, designs, settings, dataset_name):
    """Solve the exact, relaxed or hinge program deterministically and evaluate it."""
    from .problems import PROBLEM_CLASSES

    program = CONVEX_MODELS[model]
    train = designs.train
    gates = _gates(settings, train.n_weights)
    keywords = {"gates": gates, "beta": settings.beta}
    if program == "hinge":
        keywords["rho"] = settings.rho
    problem = PROBLEM_CLASSES[program](train, **keywords)

    solver_name, options = _solver_options(settings, program)
    start = time.perf_counter()
    problem.solve(solver=solver_name, **options)
    seconds = time.perf_counter() - start

    solution = problem.solution
    fitted = FittedModel(
        kind=program,
        window=train.window,
        intercept=train.intercept,
        weights={"v": solution.v, "w": solution.w},
        gates=gates,
        rule=settings.rule,
        metadata=_model_metadata(settings, beta=settings.beta, rho=problem.rho, seed=settings.seed),
    )
    nll, scores = _evaluate(fitted, designs)
    stats = problem.solver_stats
    return FitResult(
        dataset=dataset_name,
        model=model,
        settings=asdict(settings),
        status=problem.status,
        objective=problem.value,
        seconds=seconds,
        nll=nll,
        accuracy=scores,
        certificate=problem.certificate.to_dict(),
        n_positions=train.n_positions,
        n_contexts=train.n_contexts,
        train_rows=int(round(train.n_rows)),
        solver=stats.solver_name,
        iterations=stats.iterations,
        extra={"solver_extra": _plain(stats.extra)},
        fitted=fitted,
    )


def fit_sgd(model, designs, settings, dataset_name, progress=False, checkpoint_path=None, resume=False):
    """Train NN, PTR or PTH by mini-batch SGD and evaluate it, with a certificate for PTR/PTH."""
    from .certificates import certify
    from .training import SGDSettings, train_sgd

    train = designs.train
    if designs.valid is None:
        raise InvalidParameterError(
            f"SGD training stops on the validation NLL, but data set {dataset_name!r} has "
            "no validation split. Provide one (for example --valid-file)."
        )
    gates = _gates(settings, train.n_weights)
    sgd_settings = SGDSettings(
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        optimizer=settings.optimizer,
        max_epochs=settings.max_epochs,
        patience=settings.patience,
        min_delta=settings.min_delta,
        average_iterates=settings.average_iterates,
        device=settings.device,
        seed=settings.seed,
    )
    result = train_sgd(
        model,
        train,
        designs.valid,
        gates=gates,
        hidden_units=settings.n_patterns,
        beta=settings.beta,
        rho=settings.rho,
        settings=sgd_settings,
        progress=progress,
        checkpoint_path=checkpoint_path,
        resume=resume,
    )

    program = SGD_MODELS[model]
    weights = {name: np.asarray(value, dtype=np.float64) for name, value in result.weights.items()}
    certificate = None
    if program == "nn":
        from .objectives import network_objective

        objective = network_objective(train, weights["U"], weights["alpha"], settings.beta)
        fitted = FittedModel(
            kind="nn",
            window=train.window,
            intercept=train.intercept,
            weights=weights,
            metadata=_model_metadata(settings, model=model),
        )
    else:
        masks = gate_masks(train.features, gates)
        rho = settings.rho if program == "hinge" else 0.0
        cert = certify(program, train, masks, weights["v"], weights["w"], settings.beta, rho)
        certificate = cert.to_dict()
        objective = cert.primal
        fitted = FittedModel(
            kind=program,
            window=train.window,
            intercept=train.intercept,
            weights=weights,
            gates=gates,
            rule=settings.rule,
            metadata=_model_metadata(settings, model=model),
        )

    nll, scores = _evaluate(fitted, designs)
    return FitResult(
        dataset=dataset_name,
        model=model,
        settings=asdict(settings),
        status=_sgd_status(result, settings),
        objective=objective,
        seconds=result.seconds,
        nll=nll,
        accuracy=scores,
        certificate=certificate,
        n_positions=train.n_positions,
        n_contexts=train.n_contexts,
        train_rows=int(round(train.n_rows)),
        solver=f"torch-{settings.optimizer}",
        iterations=result.iterations,
        epochs=result.epochs,
        history=result.history,
        extra={"stopping_reason": result.stopping_reason},
        fitted=fitted,
    )


def _sgd_status(result, settings):
    """Return the status shown for an SGD run: converged, max_epochs or diverged."""
    if result.stopping_reason != "diverged":
        return "converged" if result.converged else "max_epochs"
    logger.warning(
        "%s training diverged (non-finite weights or objective) after %d epochs at learning "
        "rate %g; the figures are those of epoch %d. Lower the learning rate.",
        result.model,
        result.epochs,
        settings.learning_rate,
        result.best_epoch,
    )
    return "diverged"


def check_solver(model, settings):
    """Raise before any data work if a convex model's solver or its options cannot be used.

    Raises
    ------
    SolverNotInstalledError
        If the solver is not installed or not licensed.
    InvalidParameterError
        If the solver is unknown, does not support the model's program, or does not
        know one of the options.
    """
    if model not in CONVEX_MODELS:
        return
    from .solvers import get_solver

    solver_name, options = _solver_options(settings, CONVEX_MODELS[model])
    get_solver(solver_name, CONVEX_MODELS[model]).check_options(options)


def run_model(model, dataset, settings, progress=False, checkpoint_path=None, resume=False):
    """Train ``model`` on ``dataset`` under ``settings`` and return its :class:`FitResult`."""
    if model not in MODELS:
        raise InvalidParameterError(f"model must be one of {list(MODELS)}; got {model!r}.")
    settings = protocol_settings(model, settings.validate())
    if model not in SGD_MODELS and (checkpoint_path is not None or resume):
        raise InvalidParameterError(
            f"checkpoint_path and resume (--checkpoint, --resume) apply to the SGD models "
            f"{list(SGD_MODELS)}; model {model!r} has no epochs to resume. Drop them."
        )
    if model in SGD_MODELS and resume and checkpoint_path is None:
        raise InvalidParameterError(
            "resume (--resume) needs checkpoint_path (--checkpoint FILE), the file to "
            "continue from; got none."
        )
    check_solver(model, settings)
    designs = prepare_designs(dataset, settings)
    logger.info("training %s on %s: %r", model, dataset.name, designs.train)

    if model == "count":
        return fit_count(designs, settings, dataset.name)
    if model in CONVEX_MODELS:
        return fit_convex(model, designs, settings, dataset.name)
    return fit_sgd(model, designs, settings, dataset.name, progress, checkpoint_path, resume)


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
