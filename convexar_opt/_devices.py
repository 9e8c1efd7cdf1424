"""Validation of the PyTorch device strings of SGD training and of FISTA's tensors.

``"auto"`` and ``"cpu"`` are checked without importing torch, so convex-only runs
never load it.
"""

from .exceptions import InvalidParameterError


def check_device(device):
    """Raise InvalidParameterError for a device string that PyTorch cannot use here.

    ``"auto"`` and ``"cpu"`` are always accepted. Other strings must parse as a
    ``torch.device``, and a CUDA device needs a GPU that PyTorch can see.
    """
    if not isinstance(device, str) or not device:
        raise InvalidParameterError(
            f"device must be 'auto', 'cpu' or a CUDA device such as 'cuda'; got {device!r}."
        )
    if device in ("auto", "cpu"):
        return
    try:
        import torch
    except ImportError:
        raise InvalidParameterError(
            f"device {device!r} needs PyTorch, which is not installed. Install torch, or "
            "use device 'auto' or 'cpu'."
        ) from None
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise InvalidParameterError(
            f"device {device!r} is not a valid torch device. Use 'auto', 'cpu' or 'cuda'."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device {device!r} was requested, but PyTorch {torch.__version__} sees no CUDA "
            "GPU on this machine. Use device 'cpu', or 'auto', which falls back to the CPU."
        )


def torch_device(device):
    """Return the ``torch.device`` that ``device`` selects; ``"auto"`` picks CUDA when available."""
    check_device(device)

    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
