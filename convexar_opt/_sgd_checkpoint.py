"""Checkpoints of :func:`convexar_opt.training.train_sgd`, written after every epoch."""

import hashlib
import os
import pickle
from dataclasses import asdict

import numpy as np
import torch

from .exceptions import InvalidParameterError, ModelFileError

CHECKPOINT_FORMAT = 1


def run_fingerprint(model, train_design, valid_design, gates, hidden_units, beta, rho, settings):
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


def save_checkpoint(path, state):
    """Write to a temporary file and rename it, so an interruption keeps the previous checkpoint."""
    temporary = f"{os.fspath(path)}.tmp"
    torch.save(state, temporary)
    os.replace(temporary, path)


def load_checkpoint(path, fingerprint):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(
            f"cannot read checkpoint {os.fspath(path)!r}: torch.load failed with "
            f"{type(error).__name__}. Delete the file or pass resume=False to start again."
        ) from error

    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(
            f"{os.fspath(path)!r} is not a train_sgd checkpoint of format "
            f"{CHECKPOINT_FORMAT}. Delete it or pass resume=False."
        )
    if state.get("fingerprint") != fingerprint:
        raise InvalidParameterError(
            f"checkpoint {os.fspath(path)!r} was written for another model, data, gates, "
            "beta, rho or settings. Only device and max_epochs may change on resume. Pass "
            "the arguments of the saved run, or resume=False to start again."
        )
    return state


def restore_checkpoint(path, fingerprint, module, optimizer, generator, stopping):
    """Load a checkpoint into the training objects and return its run record."""
    state = load_checkpoint(path, fingerprint)
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    stopping.load_state_dict(state["stopping"])
    return state["run"]


def write_checkpoint(path, fingerprint, module, optimizer, generator, stopping, run, settings):
    """Save the training objects, the run record and the settings after one epoch."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "stopping": stopping.state_dict(),
        "run": run,
        "settings": asdict(settings),
    }
    save_checkpoint(path, state)
