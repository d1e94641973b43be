"""Checkpoint files: atomic saving, safe (``weights_only``) loading, resuming, partial loading.

Layout (per registered model, Dassl's): ``<dir>/model.pth.tar-<epoch>``, ``<dir>/model-best.pth.tar``
and a one-line text pointer ``<dir>/checkpoint`` naming the latest regular checkpoint. Best saves
update a separate pointer (``checkpoint-best``) so that resuming always reads the latest epoch.
"""
from __future__ import annotations

import os
import pickle
import shutil
from collections import OrderedDict
from typing import Any, Optional

import torch
import torch.nn as nn

from .errors import CheckpointFileError
from .tools import atomic_write, atomic_write_text, mkdir_if_missing

BEST_MODEL_NAME = "model-best.pth.tar"
LATEST_POINTER = "checkpoint"
BEST_POINTER = "checkpoint-best"


def checkpoint_file_name(epoch: Optional[int] = None) -> str:
    """``model.pth.tar-<epoch>`` (1-based epoch), or ``model-best.pth.tar`` when ``epoch`` is
    None."""
    return BEST_MODEL_NAME if epoch is None else f"model.pth.tar-{int(epoch)}"


def _strip_module_prefix(state_dict: dict) -> OrderedDict:
    """Drop the ``module.`` prefix DataParallel adds to parameter names."""
    return OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in state_dict.items())


def save_checkpoint(state: dict, save_dir: str, is_best: bool = False,
                    remove_module_from_keys: bool = True, model_name: str = "",
                    pointer: Optional[str] = LATEST_POINTER) -> str:
    """Save ``state`` (a dict with at least ``state_dict`` and ``epoch``) under ``save_dir``.

    File name: ``model_name`` if given, else ``model.pth.tar-<state["epoch"]>``. The file is
    written to a temporary name and renamed, so a killed process never leaves a truncated
    checkpoint. Afterwards the text file ``save_dir/<pointer>`` is (atomically) rewritten with
    the file's basename (``pointer=None``: no pointer). ``is_best`` additionally copies the file
    to ``model-best.pth.tar`` and points ``checkpoint-best`` at it. Returns the file path.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state = dict(state)
        state["state_dict"] = _strip_module_prefix(state["state_dict"])
    fname = model_name or checkpoint_file_name(state["epoch"])
    fpath = os.path.join(save_dir, fname)
    atomic_write(fpath, lambda tmp: torch.save(state, tmp))
    # The best copy comes before the resume pointer moves: a run killed in between resumes from
    # the previous file, never from a state whose best file was not written.
    if is_best and fname != BEST_MODEL_NAME:
        best_path = os.path.join(save_dir, BEST_MODEL_NAME)
        atomic_write(best_path, lambda tmp: shutil.copyfile(fpath, tmp))
        atomic_write_text(os.path.join(save_dir, BEST_POINTER), BEST_MODEL_NAME + "\n")
    if pointer:
        atomic_write_text(os.path.join(save_dir, pointer), fname + "\n")
    print(f"Checkpoint saved to {fpath}")
    return fpath


def read_checkpoint_pointer(fdir: str, pointer: str = LATEST_POINTER) -> Optional[str]:
    """File name stored in ``fdir/<pointer>``, or None if the pointer file does not exist."""
    fpath = os.path.join(fdir, pointer)
    if not os.path.isfile(fpath):
        return None
    with open(fpath, "r", encoding="utf-8") as f:
        name = f.readline().strip()
    if not name:
        raise ValueError(f"Checkpoint pointer {fpath} is empty")
    return name


def load_checkpoint(fpath: str, weights_only: bool = True) -> Any:
    """Load a checkpoint onto the CPU (or keep devices when CUDA is available).

    ``weights_only=True`` (default) only unpickles tensors and plain containers, which is safe for
    untrusted files; every checkpoint this package writes loads that way. Legacy checkpoints that
    embed objects (e.g. original Dassl warm-up schedulers) need ``weights_only=False`` and must
    come from a trusted source.
    """
    if not fpath:
        raise ValueError("File path is empty")
    if not os.path.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    map_location = None if torch.cuda.is_available() else "cpu"
    try:
        return torch.load(fpath, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler reports random bytes as "weights only" failures too;
        # only "Unsupported global" means the file really holds pickled objects.
        if weights_only and "unsupported global" in str(exc).lower():
            raise CheckpointFileError(
                f"Cannot load {fpath} with weights_only=True: it contains pickled Python objects "
                "(e.g. an original-Dassl scheduler). Load it with weights_only=False only if you "
                "trust the file.") from exc
        raise _unreadable(fpath, exc) from exc
    except Exception as exc:
        # torch reports a truncated zip archive as RuntimeError, an empty file as EOFError and
        # random bytes as KeyError: every failure on an existing file means "unreadable".
        raise _unreadable(fpath, exc) from exc


def _unreadable(fpath: str, exc: BaseException) -> CheckpointFileError:
    return CheckpointFileError(
        f"Cannot read checkpoint {fpath} (truncated or corrupt file?): {type(exc).__name__}: "
        f"{exc}")


def resume_from_checkpoint(fdir: str, model: nn.Module, optimizer=None, scheduler=None) -> int:
    """Restore model (strict), optimizer and scheduler from the file named by ``fdir/checkpoint``.

    Returns the stored ``epoch`` (number of finished epochs = the 0-based epoch to run next).
    """
    fname = read_checkpoint_pointer(fdir)
    if fname is None:
        raise FileNotFoundError(f'No checkpoint pointer found at "{os.path.join(fdir, LATEST_POINTER)}"')
    fpath = os.path.join(fdir, fname)
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = int(checkpoint["epoch"])
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Load the tensors of ``weight_path`` whose names and shapes match ``model`` (others skipped).

    Accepts a checkpoint dict with ``state_dict`` or a bare state dict; strips ``module.``.
    """
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    state_dict = _strip_module_prefix(state_dict)
    model_dict = model.state_dict()
    matched, discarded = OrderedDict(), []
    for k, v in state_dict.items():
        if k in model_dict and model_dict[k].size() == v.size():
            matched[k] = v
        else:
            discarded.append(k)
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        print(f'Cannot load "{weight_path}": no layer matched by name and shape')
    else:
        print(f'Successfully loaded pretrained weights from "{weight_path}"')
        if discarded:
            print(f"Layers discarded due to unmatched keys or size: {discarded}")
