r"""Mini-batch training of the network (NN), the gated program (PTR) and the hinge program (PTH).

An epoch is one pass over a random permutation of the :math:`F = NT` (context, target)
rows that a :class:`~convexar_opt.data.WeightedDesign` represents: context :math:`k` is
repeated :math:`n_k` times with its targets, so the batches are those of the
uncompressed data. A batch :math:`b` of :math:`B` rows minimises

.. math::

    \frac1B \sum_{f \in b} \big[s(a_f) - y_f a_f\big]
    + \frac{\beta}{T}\,\mathrm{penalty}
    + \frac{\rho N}{B} \sum_{f \in b} \mathrm{hinge}_f ,

the mean binary cross-entropy of the batch plus the rescaled penalties. Its expectation
over batches is :math:`J / T`, where :math:`J` is the full objective in nats per vector
(:func:`convexar_opt.torch_model.design_objective`) and :math:`T` the number of modelled
positions per vector. So ``learning_rate`` acts on per-row units, as with PyTorch's
default mean-reduced loss, while ``beta`` and ``rho`` keep the meaning they have in the
convex programs.

After every epoch the trainer evaluates, in float64 on the compressed designs, the
training objective, the training and validation NLL (nats per vector) and accuracies,
and applies the stopping rule of :class:`SGDSettings` to the validation NLL.
"""

import copy
import hashlib
import logging
import os
import pickle
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._validation import check_int, check_nonnegative
from .data import WeightedDesign
from .exceptions import InvalidDataError, InvalidParameterError, ModelFileError
from .patterns import gate_masks
from .torch_model import (
    GatedAR,
    HingeAR,
    TwoLayerReLUAR,
    design_objective,
    design_tensors,
    weighted_nll,
)

logger = logging.getLogger(__name__)

MODELS = ("nn", "ptr", "pth")
OPTIMIZERS = ("sgd", "adam")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
STOPPING_REASONS = ("patience", "max_epochs", "diverged")
_CHECKPOINT_FORMAT = 1
_FIGURES = ("train_objective", "train_nll", "valid_nll", "train_accuracy", "valid_accuracy")


@dataclass
class SGDSettings:
    """Settings of :func:`train_sgd`.

    The defaults are Adam at learning rate 1e-3 with batches of 100 rows and averaged
    iterates. Adam's steps do not depend on the scale of the objective, so they are the
    same whether the batch objective is read per row or per vector. :meth:`paper` gives
    Gabbur et al.'s plain SGD at learning rate 1e-3 instead. In the per-row units of
    this module its steps are T times smaller than the same rate on the per-vector
    objective, so it needs many more epochs.

    Attributes
    ----------
    learning_rate : float, default=1e-3
        Step size, in the per-row units of the batch objective (module docstring).
    batch_size : int, default=100
        Rows per mini-batch. The last batch of an epoch may be smaller.
    optimizer : {"sgd", "adam"}, default="adam"
        ``torch.optim.SGD`` without momentum, or ``torch.optim.Adam`` with its defaults.
    max_epochs : int, default=200
        Upper limit on the number of epochs.
    patience : int, default=5
        Stop after this many epochs in a row whose validation NLL is not below
        ``(1 - min_delta)`` times the reference, where the reference is the validation
        NLL of the last epoch that was.
    min_delta : float, default=1e-3
        Relative improvement of the validation NLL that resets the patience counter.
    average_iterates : bool, default=True
        Evaluate and keep the mean of the iterates of each epoch instead of the last
        iterate. Training itself continues from the last iterate.
    lr_decays : int, default=0
        Number of times the patience rule lowers the learning rate by
        ``lr_decay_factor`` and resets its counter before it stops training.
    lr_decay_factor : float, default=0.1
        Factor in (0, 1) applied to the learning rate at each decay.
    dtype : {"float32", "float64"}, default="float64"
        Precision of the training arithmetic. Evaluation always runs in float64.
    device : str, default="auto"
        ``"auto"`` picks CUDA when available, else the CPU. Any ``torch.device`` string
        is accepted.
    seed : int, default=0
        Seed of the private generator for initial weights and batch permutations.
    """

    learning_rate: float = 1e-3
    batch_size: int = 100
    optimizer: str = "adam"
    max_epochs: int = 200
    patience: int = 5
    min_delta: float = 1e-3
    average_iterates: bool = True
    lr_decays: int = 0
    lr_decay_factor: float = 0.1
    dtype: str = "float64"
    device: str = "auto"
    seed: int = 0

    def __post_init__(self):
        self.learning_rate = check_nonnegative(
            self.learning_rate, "learning_rate", allow_zero=False
        )
        self.batch_size = check_int(self.batch_size, "batch_size", 1)
        self.max_epochs = check_int(self.max_epochs, "max_epochs", 1)
        self.patience = check_int(self.patience, "patience", 1)
        self.min_delta = check_nonnegative(self.min_delta, "min_delta")
        self.lr_decays = check_int(self.lr_decays, "lr_decays", 0)
        self.seed = check_int(self.seed, "seed", 0)

        factor = check_nonnegative(self.lr_decay_factor, "lr_decay_factor", allow_zero=False)
        if factor >= 1.0:
            raise InvalidParameterError(f"lr_decay_factor must be in (0, 1); got {factor}.")
        self.lr_decay_factor = factor
        if self.optimizer not in OPTIMIZERS:
            raise InvalidParameterError(
                f"optimizer must be one of {list(OPTIMIZERS)}; got {self.optimizer!r}."
            )
        if self.dtype not in DTYPES:
            raise InvalidParameterError(f"dtype must be one of {list(DTYPES)}; got {self.dtype!r}.")
        if not isinstance(self.average_iterates, bool):
            raise InvalidParameterError(
                f"average_iterates must be True or False; got {self.average_iterates!r}."
            )
        if not isinstance(self.device, str):
            raise InvalidParameterError(
                f"device must be a string such as 'auto', 'cpu' or 'cuda'; got {self.device!r}."
            )

    @classmethod
    def paper(cls, **overrides):
        """Return Gabbur et al.'s settings: plain SGD, learning rate 1e-3, batch 100, last iterate.

        Gabbur et al. do not say how their loss was reduced, so this method reads their
        learning rate in the per-row units of PyTorch's default mean-reduced loss.
        """
        options = {
            "optimizer": "sgd",
            "learning_rate": 1e-3,
            "batch_size": 100,
            "average_iterates": False,
        }
        options.update(overrides)
        return cls(**options)

    def torch_device(self):
        """Return the torch device that ``device`` selects."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return torch.device(self.device)
        except RuntimeError as error:
            raise InvalidParameterError(
                f"device {self.device!r} is not a valid torch device ({error}). Use 'auto', "
                "'cpu' or 'cuda'."
            ) from error


@dataclass
class SGDResult:
    """Outcome of :func:`train_sgd`.

    Attributes
    ----------
    model : str
        ``"nn"``, ``"ptr"`` or ``"pth"``.
    module : torch.nn.Module
        The weights of the best epoch as a float64 module on the training device.
    weights : dict of str to ndarray
        The same weights as NumPy float64 arrays: ``{"U", "alpha"}`` for nn and
        ``{"v", "w"}`` for ptr (with ``w = 0``) and pth.
    history : list of dict
        One record per epoch, epoch 0 being the initial weights: ``epoch``,
        ``iterations`` so far, ``learning_rate`` (from epoch 1), ``train_objective``,
        ``train_nll``, ``valid_nll`` (nats per vector), ``train_accuracy``,
        ``valid_accuracy`` (count-weighted, predicting 1 when the logit is > 0) and
        ``seconds`` since the start.
    epochs : int
        Epochs run.
    iterations : int
        Mini-batch steps run.
    seconds : float
        Wall-clock seconds of training and per-epoch evaluation.
    converged : bool
        Whether the patience rule stopped training.
    stopping_reason : str
        ``"patience"``, ``"max_epochs"`` or ``"diverged"`` (non-finite weights or objective).
    best_epoch : int
        Epoch whose weights are kept: the one with the lowest validation NLL.
    beta, rho : float
        Penalty weights in the units of the convex programs. rho is 0 for nn and ptr.
    gates : ndarray of shape (n_patterns, n_weights) or None
        Gate vectors of ptr and pth.
    settings : SGDSettings
    """

    model: str
    module: torch.nn.Module
    weights: dict
    history: list
    epochs: int
    iterations: int
    seconds: float
    converged: bool
    stopping_reason: str
    best_epoch: int
    beta: float
    rho: float
    gates: np.ndarray | None = None
    settings: SGDSettings = field(default_factory=SGDSettings)

    def to_dict(self):
        """Return the result without the module, as JSON-serialisable lists and numbers."""
        return {
            "model": self.model,
            "weights": {name: array.tolist() for name, array in self.weights.items()},
            "gates": None if self.gates is None else self.gates.tolist(),
            "history": [dict(record) for record in self.history],
            "epochs": self.epochs,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "converged": self.converged,
            "stopping_reason": self.stopping_reason,
            "best_epoch": self.best_epoch,
            "beta": self.beta,
            "rho": self.rho,
            "settings": asdict(self.settings),
        }


class _EarlyStopping:
    """Patience rule on the validation NLL that also keeps the weights of the best epoch."""

    def __init__(self, patience, min_delta):
        self.patience = patience
        self.min_delta = min_delta
        self.best_nll = float("inf")
        self.best_epoch = 0
        self.best_state = None
        self.reference = float("inf")
        self.stale_epochs = 0

    def update(self, epoch, nll, module):
        """Record one epoch and return True when the patience has run out."""
        if nll < self.best_nll:
            self.best_nll = nll
            self.best_epoch = epoch
            self.best_state = copy.deepcopy(module.state_dict())

        if not np.isfinite(self.reference) or nll < (1.0 - self.min_delta) * self.reference:
            self.reference = nll
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
        return self.stale_epochs >= self.patience

    def state_dict(self):
        return {
            "best_nll": self.best_nll,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "reference": self.reference,
            "stale_epochs": self.stale_epochs,
        }

    def load_state_dict(self, state):
        for name, value in state.items():
            setattr(self, name, value)


def _check_design(design, name):
    if not isinstance(design, WeightedDesign):
        raise InvalidDataError(
            f"{name} must be a WeightedDesign (see convexar_opt.build_design); got "
            f"{type(design).__name__}."
        )
    for counts in (design.ones, design.zeros):
        if not np.array_equal(counts, np.rint(counts)):
            raise InvalidDataError(
                f"{name} has non-integer target counts, so its rows cannot be listed for "
                "mini-batches. Use counts from build_design, balance_design or subsample_design."
            )


def _check_inputs(model, train_design, valid_design, gates, hidden_units):
    """Validate the model name, designs, gates and width, and return float64 gates or None."""
    if model not in MODELS:
        raise InvalidParameterError(f"model must be one of {list(MODELS)}; got {model!r}.")
    _check_design(train_design, "train_design")
    _check_design(valid_design, "valid_design")
    train_layout = (train_design.window, train_design.intercept)
    if (valid_design.window, valid_design.intercept) != train_layout:
        raise InvalidDataError(
            f"valid_design has window {valid_design.window} and intercept "
            f"{valid_design.intercept}, but train_design has window {train_design.window} "
            f"and intercept {train_design.intercept}. Build both with the same settings."
        )

    if model == "nn":
        if hidden_units is None:
            raise InvalidParameterError(
                "model 'nn' needs hidden_units, the number of ReLU units; got None."
            )
        check_int(hidden_units, "hidden_units", 1)
        return None

    if gates is None:
        raise InvalidParameterError(
            f"model {model!r} needs gates of shape (n_patterns, {train_design.n_weights}), "
            "but got None. Draw them with convexar_opt.sample_gates(design.n_weights, "
            "n_patterns, seed)."
        )
    gates = np.asarray(gates, dtype=np.float64)
    if gates.ndim != 2 or gates.shape[1] != train_design.n_weights or gates.shape[0] == 0:
        raise InvalidDataError(
            f"gates must have shape (n_patterns, {train_design.n_weights}) to match the "
            f"design (window {train_design.window}, intercept {train_design.intercept}), "
            f"but got {gates.shape}."
        )
    return gates


def _build_module(model, n_weights, gates, hidden_units, dtype, device, generator):
    if model == "nn":
        return TwoLayerReLUAR(
            n_weights, hidden_units, dtype=dtype, device=device, generator=generator
        )
    if model == "ptr":
        return GatedAR(gates, dtype=dtype, device=device)
    return HingeAR(gates, dtype=dtype, device=device)


def _float64_module(model, module, gates, device):
    """Copy the module's weights into a float64 module with the exact float64 gates."""
    weights = module.numpy_weights()
    if model == "nn":
        return TwoLayerReLUAR.from_weights(weights["U"], weights["alpha"], device=device)
    if model == "ptr":
        return GatedAR.from_weights(gates, weights["v"], device=device)
    return HingeAR.from_weights(gates, weights["v"], weights["w"], device=device)


class _RowSampler:
    """The rows a design represents, as (context index, target) pairs, in mini-batches."""

    def __init__(self, design, gates, dtype, device):
        ones = np.rint(design.ones).astype(np.int64)
        zeros = np.rint(design.zeros).astype(np.int64)
        index = np.arange(design.n_contexts)
        contexts = np.concatenate([np.repeat(index, ones), np.repeat(index, zeros)])
        targets = np.concatenate([np.ones(ones.sum()), np.zeros(zeros.sum())])

        self.n_rows = contexts.size
        self.contexts = torch.as_tensor(contexts, device=device)
        self.targets = torch.as_tensor(targets, dtype=dtype, device=device)
        self.features = torch.as_tensor(design.features, dtype=dtype, device=device)
        self.masks = None
        if gates is not None:
            # The masks come from the float64 gates even when training runs in float32.
            self.masks = torch.as_tensor(gate_masks(design.features, gates), device=device)

    def batches(self, batch_size, generator):
        order = torch.randperm(self.n_rows, generator=generator).to(self.contexts.device)
        for start in range(0, self.n_rows, batch_size):
            rows = order[start : start + batch_size]
            contexts = self.contexts[rows]
            masks = None if self.masks is None else self.masks[contexts]
            yield self.features[contexts], masks, self.targets[rows]


def _batch_objective(model, module, batch, beta_per_row, rho_per_vector):
    """Return the batch objective of the module docstring for one (features, masks, targets)."""
    features, masks, targets = batch
    logits = module(features) if model == "nn" else module(features, masks=masks)
    value = F.binary_cross_entropy_with_logits(logits, targets) + beta_per_row * module.penalty()
    if model == "pth":
        hinge = module.hinge(features, torch.ones_like(targets), masks=masks)
        value = value + (rho_per_vector / features.shape[0]) * hinge
    return value


def _accuracy(module, tensors):
    with torch.no_grad():
        logits = module(tensors["features"])
    correct = torch.where(logits > 0.0, tensors["ones"], tensors["zeros"]).sum()
    return float(correct / tensors["counts"].sum())


def _nll(module, tensors, n_vectors):
    with torch.no_grad():
        logits = module(tensors["features"])
    return float(weighted_nll(logits, tensors["ones"], tensors["zeros"])) / n_vectors


def _evaluate(model, module, gates, train_design, valid_design, beta, rho):
    """Return the float64 figures of one epoch, or NaN for all of them once weights diverged."""
    if not all(bool(torch.isfinite(parameter).all()) for parameter in module.parameters()):
        return dict.fromkeys(_FIGURES, float("nan"))

    evaluation = _float64_module(model, module, gates, "cpu")
    train_tensors = design_tensors(train_design)
    valid_tensors = design_tensors(valid_design)
    with torch.no_grad():
        objective = design_objective(evaluation, train_design, beta, rho)
    return {
        "train_objective": float(objective),
        "train_nll": _nll(evaluation, train_tensors, train_design.n_vectors),
        "valid_nll": _nll(evaluation, valid_tensors, valid_design.n_vectors),
        "train_accuracy": _accuracy(evaluation, train_tensors),
        "valid_accuracy": _accuracy(evaluation, valid_tensors),
    }


def _make_optimizer(settings, module):
    if settings.optimizer == "sgd":
        return torch.optim.SGD(module.parameters(), lr=settings.learning_rate)
    return torch.optim.Adam(module.parameters(), lr=settings.learning_rate)


def _fingerprint(model, train_design, valid_design, gates, hidden_units, beta, rho, settings):
    """Return a digest of everything a resumed run must share with the saved one."""
    digest = hashlib.sha256()
    for design in (train_design, valid_design):
        for array in (design.contexts, design.ones, design.zeros):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(repr((design.n_vectors, design.n_positions, design.intercept)).encode())
    if gates is not None:
        digest.update(np.ascontiguousarray(gates).tobytes())

    # A resumed run may move to another device or raise max_epochs, nothing else.
    fixed_settings = {
        name: value
        for name, value in asdict(settings).items()
        if name not in ("device", "max_epochs")
    }
    digest.update(repr((model, hidden_units, beta, rho, sorted(fixed_settings.items()))).encode())
    return digest.hexdigest()


def _save_checkpoint(path, state):
    """Write to a temporary file and rename it, so an interruption keeps the previous checkpoint."""
    temporary = f"{os.fspath(path)}.tmp"
    torch.save(state, temporary)
    os.replace(temporary, path)


def _load_checkpoint(path, fingerprint):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(
            f"cannot read checkpoint {os.fspath(path)!r}: torch.load failed with "
            f"{type(error).__name__}. Delete the file or pass resume=False to start again."
        ) from error

    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{os.fspath(path)!r} is not a train_sgd checkpoint of format "
            f"{_CHECKPOINT_FORMAT}. Delete it or pass resume=False."
        )
    if state.get("fingerprint") != fingerprint:
        raise InvalidParameterError(
            f"checkpoint {os.fspath(path)!r} was written for another model, data, gates, "
            "beta, rho or settings. Only device and max_epochs may change on resume. Pass "
            "the arguments of the saved run, or resume=False to start again."
        )
    return state


def _train_epoch(
    model, module, optimizer, sampler, generator, settings, beta_per_row, rho_per_vector
):
    """Run one epoch and return the module to evaluate and the number of steps taken."""
    averaged = copy.deepcopy(module) if settings.average_iterates else module
    pairs = list(zip(averaged.parameters(), module.parameters()))
    steps = 0

    for batch in sampler.batches(settings.batch_size, generator):
        optimizer.zero_grad(set_to_none=True)
        _batch_objective(model, module, batch, beta_per_row, rho_per_vector).backward()
        optimizer.step()
        steps += 1
        if settings.average_iterates:
            with torch.no_grad():
                for mean, parameter in pairs:
                    mean.lerp_(parameter, 1.0 / steps)
    return averaged, steps


def _apply_stopping_rule(model, record, evaluated, stopping, optimizer, settings, run):
    """Set ``run["stopping_reason"]`` when training must stop, or lower the learning rate."""
    if not np.isfinite(record["train_objective"]):
        run["stopping_reason"] = "diverged"
    elif stopping.update(record["epoch"], record["valid_nll"], evaluated):
        if run["lr_decays_done"] < settings.lr_decays:
            run["lr_decays_done"] += 1
            stopping.stale_epochs = 0
            for group in optimizer.param_groups:
                group["lr"] *= settings.lr_decay_factor
            logger.info(
                "%s epoch %d: learning rate lowered to %g",
                model, record["epoch"], optimizer.param_groups[0]["lr"],
            )
        else:
            run["stopping_reason"] = "patience"
    elif record["epoch"] >= settings.max_epochs:
        run["stopping_reason"] = "max_epochs"


def train_sgd(
    model,
    train_design,
    valid_design,
    *,
    gates=None,
    hidden_units=None,
    beta=1e-3,
    rho=1e-4,
    settings=None,
    progress=False,
    checkpoint_path=None,
    resume=False,
):
    """Train NN, PTR or PTH by mini-batch SGD or Adam with a stopping rule on the validation NLL.

    Parameters
    ----------
    model : {"nn", "ptr", "pth"}
        The ReLU network (NC), the gated model of the relaxed program (6) or the gated
        model of the hinge program (7).
    train_design, valid_design : WeightedDesign
        Compressed training and validation data with the same window and intercept.
    gates : array-like of shape (n_patterns, n_weights) or None, default=None
        Gate vectors of ptr and pth, reused for validation and test data.
    hidden_units : int or None, default=None
        Number of ReLU units of nn.
    beta : float, default=1e-3
        Penalty weight in the units of the convex programs.
    rho : float, default=1e-4
        Hinge weight of pth. nn and ptr ignore it.
    settings : SGDSettings or None, default=None
        None means ``SGDSettings()``.
    progress : bool, default=False
        Show a tqdm bar that advances once per epoch.
    checkpoint_path : str, os.PathLike or None, default=None
        File rewritten after every epoch with the weights, optimizer state, generator
        state, stopping-rule state and history.
    resume : bool, default=False
        Continue from ``checkpoint_path`` if that file exists, else start from scratch.
        On the same machine and device the result equals that of an uninterrupted run,
        apart from the wall-clock seconds.

    Returns
    -------
    SGDResult

    Raises
    ------
    InvalidParameterError
        For an unknown model, missing gates or hidden units, invalid beta or rho, or
        a checkpoint written with other arguments.
    InvalidDataError
        For inputs that are not WeightedDesigns, designs of different windows or
        intercept settings, or gates of the wrong shape.
    ModelFileError
        If the checkpoint cannot be read.

    Warnings
    --------
    Limitations: PTH converges more slowly than NN and PTR because its hinge term is
    not smooth. On the full Adult training set (window 10, 50 gates, default settings)
    the patience rule stopped it with an objective about 0.3 to 0.4 nats per vector
    above the optimum of program (7) found by SCS.
    """
    settings = SGDSettings() if settings is None else settings
    if not isinstance(settings, SGDSettings):
        raise InvalidParameterError(
            f"settings must be an SGDSettings; got {type(settings).__name__}."
        )
    gates = _check_inputs(model, train_design, valid_design, gates, hidden_units)
    beta = check_nonnegative(beta, "beta")
    rho = check_nonnegative(rho, "rho") if model == "pth" else 0.0
    if resume and checkpoint_path is None:
        raise InvalidParameterError("resume=True needs a checkpoint_path; got None.")

    dtype = DTYPES[settings.dtype]
    device = settings.torch_device()
    generator = torch.Generator().manual_seed(settings.seed)
    module = _build_module(
        model, train_design.n_weights, gates, hidden_units, dtype, device, generator
    )
    optimizer = _make_optimizer(settings, module)
    sampler = _RowSampler(train_design, gates, dtype, device)
    stopping = _EarlyStopping(settings.patience, settings.min_delta)
    fingerprint = _fingerprint(
        model, train_design, valid_design, gates, hidden_units, beta, rho, settings
    )
    run = {
        "epoch": 0,
        "iterations": 0,
        "seconds": 0.0,
        "history": [],
        "stopping_reason": None,
        "lr_decays_done": 0,
    }

    if resume and os.path.exists(checkpoint_path):
        state = _load_checkpoint(checkpoint_path, fingerprint)
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        stopping.load_state_dict(state["stopping"])
        run = state["run"]
        if run["stopping_reason"] == "max_epochs" and run["epoch"] < settings.max_epochs:
            run["stopping_reason"] = None
        logger.info(
            "resumed %s training from %s after epoch %d", model, checkpoint_path, run["epoch"]
        )
    elif resume:
        logger.info(
            "checkpoint %s not found, so %s training starts from scratch", checkpoint_path, model
        )

    logger.info(
        "training %s on %d rows: %s, batch %d, learning rate %g, beta %g, rho %g, device %s",
        model, sampler.n_rows, settings.optimizer, settings.batch_size, settings.learning_rate,
        beta, rho, device,
    )
    beta_per_row = beta / train_design.n_positions
    rho_per_vector = rho * train_design.n_vectors
    start_time = time.perf_counter() - run["seconds"]
    bar = tqdm(
        total=settings.max_epochs,
        initial=run["epoch"],
        disable=not progress,
        unit="epoch",
        desc=model,
    )

    if not run["history"]:
        record = {"epoch": 0, "iterations": 0}
        record.update(_evaluate(model, module, gates, train_design, valid_design, beta, rho))
        record["seconds"] = time.perf_counter() - start_time
        run["history"].append(record)
        stopping.update(0, record["valid_nll"], module)

    while run["stopping_reason"] is None and run["epoch"] < settings.max_epochs:
        evaluated, steps = _train_epoch(
            model, module, optimizer, sampler, generator, settings, beta_per_row, rho_per_vector
        )
        run["iterations"] += steps
        run["epoch"] += 1

        record = {
            "epoch": run["epoch"],
            "iterations": run["iterations"],
            "learning_rate": optimizer.param_groups[0]["lr"],
        }
        record.update(_evaluate(model, evaluated, gates, train_design, valid_design, beta, rho))
        record["seconds"] = time.perf_counter() - start_time
        run["history"].append(record)
        run["seconds"] = record["seconds"]
        bar.update(1)
        bar.set_postfix(valid_nll=f"{record['valid_nll']:.4f}")
        logger.debug("%s epoch %d: %s", model, run["epoch"], record)

        _apply_stopping_rule(model, record, evaluated, stopping, optimizer, settings, run)
        if checkpoint_path is not None:
            _save_checkpoint(
                checkpoint_path,
                {
                    "format": _CHECKPOINT_FORMAT,
                    "fingerprint": fingerprint,
                    "module": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "stopping": stopping.state_dict(),
                    "run": run,
                    "settings": asdict(settings),
                },
            )
    bar.close()

    if run["stopping_reason"] is None:
        run["stopping_reason"] = "max_epochs"
    module.load_state_dict(stopping.best_state)
    best = _float64_module(model, module, gates, device)
    logger.info(
        "%s stopped (reason: %s) after %d epochs (%d iterations, %.1f s). Best epoch %d "
        "has validation NLL %.4f nats per vector",
        model, run["stopping_reason"], run["epoch"], run["iterations"], run["seconds"],
        stopping.best_epoch, stopping.best_nll,
    )
    return SGDResult(
        model=model,
        module=best,
        weights=best.numpy_weights(),
        history=run["history"],
        epochs=run["epoch"],
        iterations=run["iterations"],
        seconds=run["seconds"],
        converged=run["stopping_reason"] == "patience",
        stopping_reason=run["stopping_reason"],
        best_epoch=stopping.best_epoch,
        beta=beta,
        rho=rho,
        gates=gates,
        settings=settings,
    )
