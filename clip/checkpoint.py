"""Read CLIP weights from any file format users have, and build the Python model from them.

Supported (detected from the content, not the extension):
- OpenAI's TorchScript archives (``RN50.pt``, ``ViT-B-16.pt``, ...): only their state dict is used;
- ``torch.save`` files (``.pt/.pth/.bin``) of a state dict, also nested under a usual container
  key (``state_dict``, ``model``, ``module``, ``model_state_dict``, ``ema``, ...; open_clip's
  training checkpoints) and with a wrapper prefix on every key (``module.`` from DataParallel,
  ``model.``, ``clip.``, ...); loaded with ``weights_only=True``;
- ``.safetensors`` files (e.g. the Hugging Face mirror's ``open_clip_model.safetensors``).
Anything else raises a one-line ``CheckpointError`` naming the file and the likely cause: an
HTML or JSON error page saved by a failed download, an empty file, a Git LFS pointer, a
compressed archive, a truncated zip or safetensors file, Python objects besides tensors, another
model's weights (transformers' CLIPModel layout, a prompt-learner checkpoint), an unknown
container layout.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import warnings
import zipfile

import torch

from .model import CLIP, build_model

__all__ = ["CheckpointError", "read_state_dict", "model_from_file", "diagnose_file"]


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


# Keys under which training scripts nest a model's state dict, tried in this order.
_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network",
                   "weights", "params", "ema", "model_ema")
# Keys that every OpenAI-layout CLIP state dict has (both the ViT and the ResNet towers).
_CLIP_KEYS = ("token_embedding.weight", "text_projection", "positional_embedding")
_TAR_MAGIC_OFFSET = 257  # "ustar" at this offset marks a tar archive


def _has_clip_keys(keys) -> bool:
    return all(k in keys for k in _CLIP_KEYS)


def _strip_prefix(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``module.``, ``model.``, ``clip.``, ...) in front of CLIP's keys."""
    if _has_clip_keys(tensors):
        return tensors
    prefixes = {k[: -len(_CLIP_KEYS[0])] for k in tensors if k.endswith("." + _CLIP_KEYS[0])}
    for prefix in sorted(prefixes, key=len):
        inner = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if _has_clip_keys(inner):
            return inner
    return tensors


def _find_state_dict(obj, depth: int = 0):
    """The first mapping of tensors in ``obj`` that holds CLIP's keys (possibly behind a prefix),
    looking into the usual container keys up to three levels deep; None when there is none."""
    if not isinstance(obj, dict) or depth > 3:
        return None
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and _has_clip_keys(_strip_prefix(tensors)):
        return _strip_prefix(tensors)
    for key in _CONTAINER_KEYS:
        found = _find_state_dict(obj.get(key), depth + 1)
        if found is not None:
            return found
    return None


def _layout_of(tensors: dict) -> str:
    """In words, which weights a state dict without CLIP's keys holds (for messages)."""
    keys = list(tensors)
    if any(k.startswith(("text_model.", "vision_model.")) for k in keys):
        return ("Hugging Face transformers CLIPModel weights (another key layout): use an OpenAI "
                "or open_clip file, e.g. the mirror timm/vit_base_patch16_clip_224.openai")
    if any(k in ("ctx", "token_prefix", "token_suffix") or k.startswith("prompt_learner.")
           for k in keys):
        return ("a CLIP-AGIQA prompt-learner checkpoint, not CLIP weights: pass a CLIP model "
                "name or CLIP weights file")
    if any(k.startswith(("patch_embed.", "blocks.")) for k in keys):
        return "a timm image model without CLIP's text tower"
    shown = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
    missing = [k for k in _CLIP_KEYS if k not in tensors]
    return f"weights of another model (keys {shown}; missing key(s) {', '.join(missing)} of CLIP)"


def _first_tensors(obj, depth: int = 0) -> dict[str, torch.Tensor]:
    """The tensors of ``obj`` itself, else of its first container key that has some."""
    if not isinstance(obj, dict) or depth > 3:
        return {}
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for key in _CONTAINER_KEYS:
        if tensors:
            break
        tensors = _first_tensors(obj.get(key), depth + 1)
    return tensors


def _unwrap(obj, path: str) -> dict[str, torch.Tensor]:
    """The flat name -> tensor mapping of CLIP weights inside a loaded object: a plain state
    dict, one nested under a usual container key (``state_dict``, ``model``, ``module``, ...),
    and with a wrapper prefix (``module.``, ``model.``, ...) on every key."""
    found = _find_state_dict(obj)
    if found is not None:
        return found
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict of CLIP "
                              "weights")
    tensors = _first_tensors(obj)
    if tensors:
        return tensors  # not CLIP: model_from_file says what it holds instead
    nested = [k for k in obj if isinstance(obj[k], dict)]
    raise CheckpointError(f"{path} holds a dict with keys {list(obj)[:8]} and no CLIP weights "
                          f"under any of them (nested dicts: {nested[:8]}): unknown container "
                          "layout; save model.state_dict() of the CLIP model itself")


def diagnose_file(path: str) -> str | None:
    """The likely reason, in words, why ``path`` is not a weights file, from its first bytes:
    empty, an HTML/JSON error page, a Git LFS pointer, a compressed archive, a truncated zip or
    safetensors file. None when it looks like a weights file."""
    size = os.path.getsize(path)
    if size == 0:
        return "it is empty (0 bytes): the download did not complete"
    with open(path, "rb") as handle:
        head = handle.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return (f"it is an HTML page ({size:,} bytes), not weights: a failed download saves the "
                "server's error page under the file name; delete it and download again")
    if text.startswith(b"{") and b'"error' in text:
        return f"it is a JSON error message from a server ({size:,} bytes): download it again"
    if head.startswith(b"version https://git-lfs"):
        return ("it is a Git LFS pointer, not the weights: run `git lfs pull` in the clone, or "
                "download the file itself")
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed: unpack it first (gunzip / tar -xzf)"
    if len(head) > _TAR_MAGIC_OFFSET + 5 and head[_TAR_MAGIC_OFFSET:_TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "it is a tar archive: unpack it first (tar -xf)"
    if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(path):
        return (f"it is a truncated archive ({size:,} bytes; the end of the zip is missing): "
                "the download was cut off; download it again")
    if len(head) >= 9 and head[8:9] == b"{" and _safetensors_needs(path) > size:
        return (f"it is a truncated safetensors file ({size:,} of {_safetensors_needs(path):,} "
                "bytes): download it again")
    return None


def _safetensors_needs(path: str) -> int:
    """Bytes a safetensors file must have: its header, plus the end of its last tensor."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if 8 + length > os.path.getsize(path):
            return 8 + length
        try:
            header = json.loads(handle.read(length))
        except ValueError:
            return 0  # not safetensors after all: let the loaders report it
    ends = [entry["data_offsets"][1] for entry in header.values()
            if isinstance(entry, dict) and "data_offsets" in entry]
    return 8 + length + max(ends, default=0)


def _one_line(err: BaseException) -> str:
    """First line of a library error, without PyTorch's advice to use weights_only=False
    (it would run code from the file and does not help with a damaged one)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "weights_only" not in ln and not ln.startswith(
        ("(1)", "(2)", "WeightsUnpickler", "Check the documentation", "Please file an issue"))]
    return f"{type(err).__name__}: {(useful or lines or [''])[0]}"


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Load the tensors of a weights file onto the CPU (dtypes as stored).

    Every failure is a one-line ``CheckpointError`` naming the file and the likely cause.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CLIP weights file not found: {path}")
    cause = diagnose_file(path)
    if cause is not None:
        raise CheckpointError(f"cannot read CLIP weights from {path}: {cause}")
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
        # reports random bytes as "weights only" failures too.
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        if found is None:
            raise CheckpointError(f"cannot read CLIP weights from {path}: not a PyTorch, "
                                  f"TorchScript or safetensors file, or a corrupt one "
                                  f"({_one_line(err)})") from None
        raise CheckpointError(f"{path} stores Python objects ({found.group(1)}) besides tensors; "
                              "they are not loaded (weights_only=True) because unpickling them "
                              "could run code from the file: re-save it as a plain state dict")\
            from None
    except Exception as err:  # torch/safetensors raise RuntimeError, EOFError, OSError, ...
        raise CheckpointError(f"cannot read CLIP weights from {path} (truncated or corrupt "
                              f"file?): {_one_line(err)}") from None
    return _unwrap(obj, path)


def model_from_file(path: str) -> CLIP:
    """``build_model`` on the state dict of ``path``; mixed fp16, eval mode, on the CPU."""
    state_dict = read_state_dict(path)
    if not _has_clip_keys(state_dict):
        raise CheckpointError(f"{path} does not hold OpenAI-layout CLIP weights: it holds "
                              f"{_layout_of(state_dict)}")
    try:
        return build_model(state_dict)
    except ValueError as err:
        details = " ".join(ln.strip() for ln in str(err).splitlines()[:4] if ln.strip())
        raise CheckpointError(f"{path} does not hold OpenAI-layout CLIP weights: {details}") \
            from None
