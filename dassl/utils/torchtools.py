"""Checkpoint files: the one place that writes and reads them.

Saving is atomic. Reading: ``read_checkpoint`` (weights-only ``torch.load``, falling back to
``restricted_pickle`` for files that embed pickled objects, e.g. the original code's schedulers;
no pickled code ever runs), ``load_checkpoint`` (Dassl's API: weights-only, or fully trusted
``weights_only=False``). Every failure on an existing file is a ``CheckpointFileError``; a state
dict that does not fit its module a ``CheckpointMismatchError``. DataParallel's ``module.`` prefix
is removed by one rule (``strip_module_prefix``) on saving and on reading.
``ModuleCheckpoints`` reads one file per module of a run, each once (trainer and scorer use it).

Layout (per registered model, Dassl's): ``<dir>/model.pth.tar-<epoch>``, ``<dir>/model-best.pth.tar``
and a one-line text pointer ``<dir>/checkpoint`` naming the latest regular checkpoint. Best saves
update a separate pointer (``checkpoint-best``) so that resuming always reads the latest epoch.
"""
from __future__ import annotations

import os
import pickle
import shutil
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Collection, Mapping, Optional

import torch
import torch.nn as nn

from .errors import CheckpointFileError, CheckpointMismatchError
from .restricted_pickle import restricted_pickle
from .tools import atomic_write, atomic_write_text, mkdir_if_missing

BEST_MODEL_NAME = "model-best.pth.tar"
LATEST_POINTER = "checkpoint"
BEST_POINTER = "checkpoint-best"


def checkpoint_file_name(epoch: Optional[int] = None) -> str:
    """``model.pth.tar-<epoch>`` (1-based epoch), or ``model-best.pth.tar`` when ``epoch`` is
    None."""
    return BEST_MODEL_NAME if epoch is None else f"model.pth.tar-{int(epoch)}"


_MODULE_PREFIX = "module."


def strip_module_prefix(state_dict: Mapping) -> OrderedDict:
    """Drop the ``module.`` prefix DataParallel adds to parameter names."""
    n = len(_MODULE_PREFIX)
    return OrderedDict((k[n:] if k.startswith(_MODULE_PREFIX) else k, v)
                       for k, v in state_dict.items())


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
        state["state_dict"] = strip_module_prefix(state["state_dict"])
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
    """File name stored in ``fdir/<pointer>``, or None if the pointer file does not exist;
    raises ``CheckpointFileError`` for an empty pointer file."""
    fpath = os.path.join(fdir, pointer)
    if not os.path.isfile(fpath):
        return None
    with open(fpath, "r", encoding="utf-8") as f:
        name = f.readline().strip()
    if not name:
        raise CheckpointFileError(f"Checkpoint pointer {fpath} is empty: delete it to use the "
                                  "checkpoint files next to it, or delete the folder")
    return name


def _check_exists(fpath: str) -> None:
    if not fpath:
        raise ValueError("File path is empty")
    if not os.path.exists(fpath):
        raise FileNotFoundError(f'Checkpoint not found at "{fpath}"')


def _holds_pickled_objects(exc: BaseException) -> bool:
    # torch's weights-only unpickler reports random bytes as "weights only" failures too;
    # only "Unsupported global" means the file really holds pickled objects.
    return isinstance(exc, pickle.UnpicklingError) and "unsupported global" in str(exc).lower()


def _torch_load(fpath: str, **kwargs: Any) -> Any:
    """``torch.load`` onto the CPU (devices kept when CUDA is available); any failure on the
    existing file becomes ``CheckpointFileError`` (pickled objects refused by the weights-only
    unpickler stay ``pickle.UnpicklingError`` for the caller to decide)."""
    map_location = None if torch.cuda.is_available() else "cpu"
    try:
        return torch.load(fpath, map_location=map_location, **kwargs)
    except pickle.UnpicklingError as exc:
        if _holds_pickled_objects(exc):
            raise
        raise _unreadable(fpath, exc) from exc
    except Exception as exc:
        # torch reports a truncated zip archive as RuntimeError, an empty file as EOFError and
        # random bytes as KeyError: every failure on an existing file means "unreadable".
        raise _unreadable(fpath, exc) from exc


def _unreadable(fpath: str, exc: BaseException) -> CheckpointFileError:
    """One line: the file, the likely cause and the first line of the library's reason, without
    PyTorch's advice to load with weights_only=False (which would run code from the file)."""
    with open(fpath, "rb") as handle:
        head = handle.read(64).lstrip().lower()
    if not head:
        cause = "it is empty (0 bytes)"
    elif head.startswith((b"<!doctype", b"<html", b"<?xml")):
        cause = "it is an HTML page, not a checkpoint"
    else:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        useful = [ln for ln in lines if "weights_only" not in ln
                  and not ln.startswith(("(1)", "(2)", "Check the documentation"))]
        return CheckpointFileError(f"Cannot read checkpoint {fpath} (truncated or corrupt "
                                   f"file?): {type(exc).__name__}: {(useful or lines or [''])[0]}")
    return CheckpointFileError(f"Cannot read checkpoint {fpath} ({cause})")


def load_checkpoint(fpath: str, weights_only: bool = True) -> Any:
    """Load a checkpoint onto the CPU (or keep devices when CUDA is available).

    ``weights_only=True`` (default) only unpickles tensors and plain containers, which is safe for
    untrusted files; every checkpoint this package writes loads that way. Legacy checkpoints that
    embed objects (e.g. original Dassl warm-up schedulers) need ``weights_only=False`` and must
    come from a trusted source (``read_checkpoint`` reads them without trusting them).
    """
    _check_exists(fpath)
    try:
        return _torch_load(fpath, weights_only=weights_only)
    except pickle.UnpicklingError as exc:
        raise CheckpointFileError(
            f"Cannot load {fpath} with weights_only=True: it contains pickled Python objects "
            "(e.g. an original-Dassl scheduler). Load it with weights_only=False only if you "
            "trust the file.") from exc


def read_checkpoint(fpath: str) -> Any:
    """Load any ``torch.save`` file without executing pickled code.

    Weights-only first; a file that embeds pickled objects (the original code's schedulers) is
    read again with ``restricted_pickle``: tensors and plain data come back intact, objects of
    other classes as inert stubs. Raises ``FileNotFoundError`` naming ``fpath``, or
    ``CheckpointFileError`` for an unreadable file.
    """
    fpath = os.fspath(fpath)
    _check_exists(fpath)
    try:
        return _torch_load(fpath, weights_only=True)
    except pickle.UnpicklingError:
        return _torch_load(fpath, weights_only=False, pickle_module=restricted_pickle)


def read_module_checkpoint(fpath: str) -> tuple[dict, "OrderedDict[str, torch.Tensor]"]:
    """``(checkpoint dict, state_dict without module.)`` of one module's checkpoint file (ours
    or the original code's). Raises ``FileNotFoundError``, ``CheckpointFileError``, or
    ``CheckpointMismatchError`` when the file holds no ``state_dict`` dictionary."""
    checkpoint = read_checkpoint(fpath)
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(f'"{fpath}" holds no "state_dict" dictionary')
    return checkpoint, strip_module_prefix(state)


def load_state_dict_checked(module: nn.Module, state_dict: Mapping,
                            ignore: Collection[str] = frozenset(), source: str = "") -> None:
    """Load ``state_dict`` into ``module`` strictly, except for the keys in ``ignore``.

    Missing or unexpected keys and shape mismatches raise ``CheckpointMismatchError`` naming
    ``source`` and the keys.
    """
    state = {k: v for k, v in state_dict.items() if k not in ignore}
    own = {k: v for k, v in module.state_dict().items() if k not in ignore}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"Checkpoint {source!r} does not match the model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    for key, value in state.items():
        if not torch.is_tensor(value) or value.shape != own[key].shape:
            shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            raise CheckpointMismatchError(
                f"Checkpoint {source!r}: {key} has shape {shape}, the model expects "
                f"{tuple(own[key].shape)} (check N_CTX, CSC, CTX_INIT, the level names and the "
                "backbone)"
            )
    module.load_state_dict(state, strict=False)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """What ``ModuleCheckpoints.load`` read for one module: absolute ``path``, the stored
    ``epoch`` and ``val_result`` (None when absent or not a number) and the whole
    ``checkpoint`` dict."""

    path: str
    epoch: Optional[int]
    val_result: Optional[float]
    checkpoint: dict = field(repr=False)

    def summary(self) -> dict:
        """``{path, epoch, val_result}`` as plain data (e.g. for results.json)."""
        return {"path": self.path, "epoch": self.epoch, "val_result": self.val_result}


def _number(value: Any, kind: type) -> Any:
    try:
        return None if value is None else kind(value)
    except (TypeError, ValueError):
        return None


class ModuleCheckpoints:
    """The checkpoint files ``directory/<name>/<file_name>`` of one run's modules, each read at
    most once (``read``) however often its checkpoint, state or weights are asked for.

    Any file ``read_checkpoint`` accepts works, including the original code's. Missing files
    raise ``FileNotFoundError``, unreadable ones ``CheckpointFileError``.
    """

    def __init__(self, directory: str, file_name: str) -> None:
        self.directory = os.path.abspath(directory)
        self.file_name = file_name
        self._read: dict[str, tuple[dict, OrderedDict]] = {}

    def path(self, name: str) -> str:
        """Absolute path of module ``name``'s file."""
        return os.path.join(self.directory, name, self.file_name)

    def read(self, name: str) -> tuple[dict, "OrderedDict[str, torch.Tensor]"]:
        """``(checkpoint dict, state_dict without module.)`` of module ``name``
        (``read_module_checkpoint``), read on the first call only."""
        if name not in self._read:
            self._read[name] = read_module_checkpoint(self.path(name))
        return self._read[name]

    def load(self, modules: Mapping[str, nn.Module],
             ignore: Optional[Mapping[str, Collection[str]]] = None
             ) -> dict[str, LoadedCheckpoint]:
        """Load every module of ``modules`` (in order) from its file, strictly
        (``load_state_dict_checked``) except for the keys ``ignore[name]``; raises
        ``CheckpointMismatchError`` naming the file."""
        ignore = ignore or {}
        loaded = {}
        for name, module in modules.items():
            checkpoint, state_dict = self.read(name)
            path = self.path(name)
            load_state_dict_checked(module, state_dict, ignore.get(name, frozenset()), source=path)
            loaded[name] = LoadedCheckpoint(
                path=path, epoch=_number(checkpoint.get("epoch"), int),
                val_result=_number(checkpoint.get("val_result"), float), checkpoint=checkpoint)
        return loaded


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
    state_dict = strip_module_prefix(state_dict)
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
