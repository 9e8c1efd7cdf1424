"""Settings and result of :func:`convexar_opt.training.train_sgd`."""

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ._devices import torch_device
from ._validation import check_int, check_nonnegative
from .exceptions import InvalidParameterError

OPTIMIZERS = ("sgd", "adam")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class SGDSettings:
    """Settings of :func:`train_sgd`.

    The defaults are Adam at learning rate 1e-3 with batches of 100 rows and averaged
    iterates. Adam's steps do not depend on the scale of the objective, so they are the
    same whether the batch objective is read per row or per vector. :meth:`paper` gives
    Gabbur et al.'s plain SGD at learning rate 1e-3 instead. In the per-row units of
    :mod:`convexar_opt.training` its steps are T times smaller than the same rate on the per-vector
    objective, so it needs many more epochs.

    Attributes
    ----------
    learning_rate : float, default=1e-3
        Step size, in the per-row units of the batch objective (see :mod:`convexar_opt.training`).
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
        return torch_device(self.device)


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
