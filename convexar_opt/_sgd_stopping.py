"""Stopping rule of :func:`convexar_opt.training.train_sgd`: patience on the validation NLL."""

import copy
import logging

import numpy as np

logger = logging.getLogger(__name__)


class EarlyStopping:
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


def apply_stopping_rule(model, record, evaluated, stopping, optimizer, settings, run):
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
