"""Read CLIP weights from any file format users have, and build the Python model from them.

Supported (detected from the content, not the extension):
- OpenAI's TorchScript archives (``RN50.pt``, ``ViT-B-16.pt``, ...): only their state dict is used;
- ``torch.save`` files (``.pt/.pth/.bin``) of a state dict, also nested under ``"state_dict"``
  and with a ``"module."`` prefix (DataParallel); loaded with ``weights_only=True``;
- ``.safetensors`` files (e.g. the Hugging Face mirror's ``open_clip_model.safetensors``).
Anything unreadable, truncated or holding other weights raises ``CheckpointError`` naming the file.
"""
from __future__ import annotations

import os
import pickle
import warnings
import zipfile

import torch

from .model import CLIP, build_model

__all__ = ["CheckpointError", "read_state_dict", "model_from_file"]


class CheckpointError(ValueError):
    """A weights file cannot be read or does not hold OpenAI-layout CLIP weights."""


def _is_safetensors(path: str) -> bool:
    """safetensors = 8-byte little-endian header length, then a JSON header starting with '{'."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + int.from_bytes(head[:8], "little") <= os.path.getsize(path)


def _is_torchscript(path: str) -> bool:
    """TorchScript zips hold ``<archive>/constants.pkl``; plain ``torch.save`` zips do not."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _unwrap(obj, path: str) -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping inside a loaded object."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Load the tensors of a weights file onto the CPU (dtypes as stored)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP weights file not found: {path}")
    try:
        if _is_safetensors(path):
            from safetensors.torch import load_file
            obj = load_file(path, device="cpu")
        elif _is_torchscript(path):
            with warnings.catch_warnings():
                # torch >= 2.9 flags torch.jit as deprecated; only the weights are used here.
                warnings.simplefilter("ignore", FutureWarning)
                obj = torch.jit.load(path, map_location="cpu").state_dict()
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # Only "Unsupported global" means real pickled objects; torch's weights-only unpickler
        # reports random bytes (a corrupt file, an HTML error page) as "weights only" too.
        if "unsupported global" not in str(err).lower():
            raise CheckpointError(f"cannot read CLIP weights from {path} (truncated or corrupt file?): "
                                  f"{err}") from err
        raise CheckpointError(f"{path} contains Python objects other than tensors and is not loaded "
                              f"with weights_only=True; re-save it as a plain state dict ({err})") from err
    except Exception as err:  # torch/safetensors raise RuntimeError, EOFError, OSError, ...
        raise CheckpointError(f"cannot read CLIP weights from {path} (truncated or corrupt file?): "
                              f"{type(err).__name__}: {err}") from err
    return _unwrap(obj, path)


def model_from_file(path: str) -> CLIP:
    """``build_model`` on the state dict of ``path``; mixed fp16, eval mode, on the CPU."""
    state_dict = read_state_dict(path)
    try:
        return build_model(state_dict)
    except ValueError as err:
        raise CheckpointError(f"{path} does not hold OpenAI-layout CLIP weights: {err}") from err
