"""Figures of SGD training runs: validation accuracy and loss curves per epoch.

The figures are drawn on matplotlib's Agg canvas without pyplot, so plotting works
without a display and leaves the caller's pyplot backend and open figures alone.
matplotlib is imported only when a function is called.
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
        if isinstance(result, Mapping):
            history, model = result.get("history"), result.get("model")
        else:
            history, model = getattr(result, "history", None), getattr(result, "model", None)
        if not history:
            raise InvalidParameterError(
                f"cannot plot {label or model or type(result).__name__!r}: it has no history. "
                "Pass SGDResult objects from train_sgd or their to_dict() output."
            )
        pairs.append((label or _MODEL_LABELS.get(model, str(model)), history))

    if not pairs:
        raise InvalidParameterError("results is empty. Pass at least one SGDResult.")
    return pairs


def _new_figure():
    """Return a 6 x 4 inch figure with one axes, attached to an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.0, 4.0), dpi=120)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def plot_validation_accuracy(results, path, *, title="Validation accuracy during training"):
    """Plot the validation accuracy per epoch of several runs on one figure and save it as PNG.

    Parameters
    ----------
    results : sequence or mapping of SGDResult
        Runs to compare. The keys of a mapping become the legend labels, and otherwise
        the model names label the curves. ``SGDResult.to_dict()`` output is accepted
        as well.
    path : str or os.PathLike
        Output file. matplotlib picks the format from the suffix, PNG for ``.png``.
    title : str, default="Validation accuracy during training"

    Returns
    -------
    pathlib.Path or str
        ``path``, for chaining.
    """
    pairs = _labelled_histories(results)
    figure, axes = _new_figure()
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
    logger.info("saved validation accuracy of %d runs to %s", len(pairs), path)
    return path


def plot_training_curves(results, path, *, title="Training curves"):
    """Plot training objective, training NLL and validation NLL per epoch, and save the figure.

    Parameters
    ----------
    results : SGDResult, sequence or mapping of SGDResult
        One run or several. Each run gets one colour. Solid lines show the training NLL,
        dashed lines the validation NLL and dotted lines the training objective.
    path : str or os.PathLike
    title : str, default="Training curves"

    Returns
    -------
    pathlib.Path or str
        ``path``.
    """
    pairs = _labelled_histories(results)
    figure, axes = _new_figure()
    for index, (label, history) in enumerate(pairs):
        # Epoch 0 is the initial model, whose NLL usually dwarfs the rest of the curve.
        records = [record for record in history if record["epoch"] > 0] or history
        epochs = [record["epoch"] for record in records]
        colour = f"C{index % 10}"
        curves = (
            ("train_nll", "-", "training NLL"),
            ("valid_nll", "--", "validation NLL"),
            ("train_objective", ":", "objective"),
        )
        for key, linestyle, name in curves:
            values = [record[key] for record in records]
            axes.plot(epochs, values, color=colour, linestyle=linestyle, label=f"{label} {name}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("nats per vector")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    logger.info("saved training curves of %d runs to %s", len(pairs), path)
    return path
