"""Figures of SGD training runs: validation accuracy and loss curves per epoch.

matplotlib is imported inside the functions with the non-interactive Agg backend, so
plotting works without a display and importing this module costs nothing.
"""

import logging
from collections.abc import Mapping

from .exceptions import InvalidParameterError

logger = logging.getLogger(__name__)

_MODEL_LABELS = {"nn": "NN", "ptr": "PTR", "pth": "PTH"}


def _labelled_histories(results):
    """Return (label, history) pairs from SGDResults, their ``to_dict()`` or a mapping of them."""
    if isinstance(results, Mapping) and "history" not in results:
        items = list(results.items())
    else:
        if isinstance(results, Mapping) or hasattr(results, "history"):
            results = [results]
        items = [(None, result) for result in results]

    pairs = []
    for label, result in items:
        history = result["history"] if isinstance(result, Mapping) else getattr(result, "history", None)
        model = result.get("model") if isinstance(result, Mapping) else getattr(result, "model", None)
        if not history:
            raise InvalidParameterError(
                f"cannot plot {label or model or type(result).__name__!r}: it has no history. "
                "Pass SGDResult objects from train_sgd or their to_dict() output."
            )
        pairs.append((label or _MODEL_LABELS.get(model, str(model)), history))

    if not pairs:
        raise InvalidParameterError("results is empty; pass at least one SGDResult.")
    return pairs


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_validation_accuracy(results, path, *, title="Validation accuracy during training"):
    """Plot the validation accuracy per epoch of several runs on one figure and save it as PNG.

    Parameters
    ----------
    results : sequence or mapping of SGDResult
        Runs to compare. A mapping uses its keys as legend labels; otherwise the model
        names label the curves. ``SGDResult.to_dict()`` output is accepted as well.
    path : str or os.PathLike
        Output file; the format follows its suffix, PNG for ``.png``.
    title : str, default="Validation accuracy during training"

    Returns
    -------
    pathlib.Path or str
        ``path``, for chaining.
    """
    pairs = _labelled_histories(results)
    plt = _pyplot()

    figure, axes = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for label, history in pairs:
        epochs = [record["epoch"] for record in history]
        accuracy = [record["valid_accuracy"] for record in history]
        axes.plot(epochs, accuracy, marker="o", markersize=3, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    logger.info("saved validation accuracy of %d runs to %s", len(pairs), path)
    return path


def plot_training_curves(results, path, *, title="Training curves"):
    """Plot training objective, training NLL and validation NLL per epoch, and save the figure.

    Parameters
    ----------
    results : SGDResult, sequence or mapping of SGDResult
        One run or several; each gets one colour, solid for training NLL, dashed for
        validation NLL, dotted for the training objective.
    path : str or os.PathLike
    title : str, default="Training curves"

    Returns
    -------
    pathlib.Path or str
        ``path``.
    """
    pairs = _labelled_histories(results)
    plt = _pyplot()

    figure, axes = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for index, (label, history) in enumerate(pairs):
        # Epoch 0 is the initial model, whose NLL usually dwarfs the rest of the curve.
        records = [record for record in history if record["epoch"] > 0] or history
        epochs = [record["epoch"] for record in records]
        colour = f"C{index % 10}"
        axes.plot(epochs, [r["train_nll"] for r in records], color=colour, label=f"{label} train NLL")
        axes.plot(epochs, [r["valid_nll"] for r in records], color=colour, linestyle="--", label=f"{label} validation NLL")
        axes.plot(epochs, [r["train_objective"] for r in records], color=colour, linestyle=":", label=f"{label} objective")
    axes.set_xlabel("epoch")
    axes.set_ylabel("nats per vector")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    logger.info("saved training curves of %d runs to %s", len(pairs), path)
    return path
