"""Checked device names: a device the machine does not have is a user error, not a traceback."""
from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)`` after checking that this machine can run on it.

    Accepts ``cpu``, ``cuda``, ``cuda:N`` and ``mps``. Raises ``ConfigError`` (one line: what was
    asked, what the machine has, what to pass instead) for an unknown name, a CUDA device without
    a usable GPU or CUDA build, a GPU index beyond the visible GPUs, and an unavailable MPS.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N or mps") \
            from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA GPU is visible (driver, CUDA_VISIBLE_DEVICES?)")
            raise ConfigError(f"device {str(device)!r} was asked for but {why}; use cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(f"device {str(device)!r} was asked for but only {count} CUDA "
                              f"GPU(s) are visible (cuda:0 .. cuda:{count - 1})")
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r} was asked for but MPS (Apple GPU) is not "
                              "available on this machine; use cpu")
    elif resolved.type != "cpu":
        raise ConfigError(f"device {str(device)!r} is not supported: use cpu, cuda, cuda:N or mps")
    return resolved
