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
import logging
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._sgd_checkpoint import restore_checkpoint, run_fingerprint, write_checkpoint
from ._sgd_settings import DTYPES, SGDResult, SGDSettings
from ._sgd_stopping import EarlyStopping, apply_stopping_rule
from ._validation import check_int, check_nonnegative
from .data import WeightedDesign
from .exceptions import InvalidDataError, InvalidParameterError
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
STOPPING_REASONS = ("patience", "max_epochs", "diverged")
_FIGURES = ("train_objective", "train_nll", "valid_nll", "train_accuracy", "valid_accuracy")


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
    stopping = EarlyStopping(settings.patience, settings.min_delta)
    fingerprint = run_fingerprint(
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
        run = restore_checkpoint(
            checkpoint_path, fingerprint, module, optimizer, generator, stopping
        )
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

        apply_stopping_rule(model, record, evaluated, stopping, optimizer, settings, run)
        if checkpoint_path is not None:
            write_checkpoint(
                checkpoint_path, fingerprint, module, optimizer, generator, stopping, run, settings
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
