"""``TrainerBase``: registered models/optimizers/schedulers, checkpoints, TensorBoard, the loop.

Registration order matters: it is the order of saving, loading and stepping, and the first
model's optimizer supplies the logged learning rate.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections import OrderedDict
from typing import Iterator, Optional

import torch
import torch.nn as nn

from dassl.utils import (BEST_MODEL_NAME, BEST_POINTER, LATEST_POINTER, ModuleCheckpoints,
                         checkpoint_file_name, get_rng_state, read_checkpoint_pointer,
                         remove_stale_temp_files, save_checkpoint, set_rng_state, tolist_if_not)
from dassl.utils.errors import CheckpointFileError, TrainingDiverged

from .interrupt import InterruptGuard, TrainingInterrupted, interruption_message

_PERIODIC_RE = re.compile(r"^model\.pth\.tar-(\d+)$")


def checkpoint_epoch(fname: str) -> Optional[int]:
    """Epoch number of a ``model.pth.tar-<epoch>`` file name, None for other names."""
    match = _PERIODIC_RE.match(fname)
    return int(match.group(1)) if match else None


class TrainerBase:
    """Model registry, checkpoint I/O and the generic epoch loop (no data, no evaluation)."""

    def __init__(self) -> None:
        self._models: "OrderedDict[str, nn.Module]" = OrderedDict()
        self._optims: OrderedDict = OrderedDict()
        self._scheds: OrderedDict = OrderedDict()
        self._hooks: list = []
        self._writer = None
        self.loaded_checkpoints: dict = {}  # filled by load_model
        # Checkpoints a subclass opened before loading them (see `open_checkpoints`).
        self.opened_checkpoints: Optional[ModuleCheckpoints] = None

    # ----------------------------------------------------------------- model registry
    def register_model(self, name: str = "model", model: Optional[nn.Module] = None,
                       optim=None, sched=None) -> None:
        """Register a module with its optimizer and scheduler (either may be None)."""
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if name in self._models:
            raise KeyError(f"Model name {name!r} is already registered")
        if model is None:
            raise ValueError(f"register_model({name!r}) needs a module")
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None) -> list[str]:
        """All registered names, or the validated subset ``names`` (a str or list)."""
        names_real = list(self._models.keys())
        if names is None:
            return names_real
        names = tolist_if_not(names)
        for name in names:
            if name not in names_real:
                raise KeyError(f"Model {name!r} is not registered; registered: {names_real}")
        return names

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        """``"train"`` -> ``.train()``, ``"test"``/``"eval"`` -> ``.eval()`` on registered models."""
        if mode not in ("train", "test", "eval"):
            raise KeyError(f"Unknown model mode {mode!r}; expected train, test or eval")
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def update_lr(self, names=None) -> None:
        """Step every registered scheduler once (called once per epoch by ``after_epoch``)."""
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def get_current_lr(self, names=None) -> float:
        """LR of the first parameter group of the first selected model's optimizer."""
        name = self.get_model_names(names)[0]
        if self._optims[name] is None:
            raise ValueError(f"Model {name!r} has no optimizer")
        return self._optims[name].param_groups[0]["lr"]

    # ----------------------------------------------------------------- optimisation
    def training_precision(self) -> str:
        """The precision the models train in, for messages: the trainer's ``prec`` (e.g.
        ``fp16``, ``amp``), ``fp32`` when it has none."""
        return str(self.__dict__.get("prec") or "fp32")

    def _where(self) -> str:
        """``epoch 3/100, step 7/15`` (1-based) of the current training step."""
        epoch = self.__dict__.get("epoch", 0) + 1
        max_epoch = self.__dict__.get("max_epoch", "?")
        step = self.__dict__.get("batch_idx", 0) + 1
        batches = self.__dict__.get("num_batches", "?")
        return f"epoch {epoch}/{max_epoch}, step {step}/{batches}"

    def _diverged(self, what: str) -> TrainingDiverged:
        """The one-line error of a diverged run: ``what`` went non-finite at this step, the
        learning rate and precision, and what to do. The learning rate is the one the
        diverging step used (``step_lr``, recorded by ``run_epoch`` before each step): the
        scheduler may have stepped since, before the checkpoint check found the weights
        non-finite."""
        step_lr = self.__dict__.get("step_lr")
        try:
            lr = f"{step_lr if step_lr is not None else self.get_current_lr():.4g}"
        except (ValueError, IndexError, KeyError):
            lr = "?"
        precision = self.training_precision()
        also = "" if precision == "fp32" else f" (or train in fp32 instead of {precision})"
        return TrainingDiverged(
            f"training diverged at {self._where()}: {what} (learning rate {lr}, precision "
            f"{precision}); no checkpoint with non-finite values was saved, so running the same "
            "command again resumes from the last finite one and diverges the same way: lower "
            f"OPTIM.LR (the paper's is 0.002) and start again with --force{also}")

    def detect_anomaly(self, loss: torch.Tensor) -> None:
        """Raise ``TrainingDiverged`` (a ``FloatingPointError``) when ``loss`` is not finite."""
        if not torch.isfinite(loss).all():
            value = loss.detach().float().flatten()[:1].item() if loss.numel() else float("nan")
            raise self._diverged(f"the loss is {value}")

    def non_finite_state(self) -> Optional[tuple[str, str]]:
        """``(module, "<module>'s <key> holds non-finite values")`` for the first registered
        model whose weights or optimizer state hold a NaN or infinity; None when all are
        finite."""
        for name in self.get_model_names():
            optim = self._optims[name]
            tensors = list(self._models[name].state_dict().items())
            if optim is not None:
                tensors += [(f"optimizer state {k}", v) for state in optim.state.values()
                            for k, v in state.items()]
            for key, value in tensors:
                if torch.is_tensor(value) and value.is_floating_point() and \
                        not bool(torch.isfinite(value).all()):
                    return name, f"{name}'s {key} holds non-finite values"
        return None

    def check_finite_state(self) -> None:
        """Raise ``TrainingDiverged`` when ``non_finite_state`` finds a non-finite value
        (checked before every checkpoint, so a diverged state never becomes the resume point)."""
        problem = self.non_finite_state()
        if problem:
            raise self._diverged(problem[1])

    def model_zero_grad(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss: torch.Tensor) -> None:
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None) -> None:
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss: torch.Tensor, names=None) -> None:
        """zero_grad -> NaN/Inf check -> backward -> optimizer step, for the selected models."""
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    def register_hook(self, hook) -> None:
        """Register an object with ``state_dict()`` / ``load_state_dict(state)`` (plain data)
        whose state travels in every checkpoint's ``trainer_state`` and is restored on resume
        (e.g. ``dassl.engine.selection.BestEpochSelector``)."""
        self._hooks.append(hook)

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_extra_state(self) -> dict:
        """Plain-data trainer state stored in every checkpoint: RNG states and the state of
        every registered hook."""
        state = {"rng_state": get_rng_state()}
        for hook in self._hooks:
            state.update(hook.state_dict())
        return state

    def restore_extra_state(self, state: dict) -> None:
        """Inverse of :meth:`checkpoint_extra_state`, called when resuming."""
        if state.get("rng_state"):
            set_rng_state(state["rng_state"])
        for hook in self._hooks:
            hook.load_state_dict(state)

    def module_checkpoint_entries(self) -> dict:
        """Plain-data entries added to every module checkpoint (e.g. a description of the
        model); none by default."""
        return {}

    def open_checkpoints(self, directory: str, file_name: str) -> ModuleCheckpoints:
        """The module checkpoints ``directory/<name>/<file_name>`` to load: those in
        ``self.opened_checkpoints`` when they are these (a subclass that read them before
        building its model, e.g. for their precision, hands them over once), else a new reader.
        Either way each file is read once."""
        opened = self.opened_checkpoints
        if opened is not None and (opened.directory, opened.file_name) == (
                os.path.abspath(directory), file_name):
            self.opened_checkpoints = None
            return opened
        return ModuleCheckpoints(directory, file_name)

    def save_model(self, epoch: int, directory: str, is_best: bool = False,
                   val_result: Optional[float] = None, model_name: str = "") -> None:
        """Write ``directory/<name>/<file>`` per registered model (``epoch`` is 0-based; the
        file stores ``epoch + 1``). Best files update ``checkpoint-best``, all others
        ``checkpoint``."""
        self.check_finite_state()
        extra = self.checkpoint_extra_state()
        pointer = BEST_POINTER if model_name == BEST_MODEL_NAME else LATEST_POINTER
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": None if val_result is None else float(val_result),
                "trainer_state": extra,
                **self.module_checkpoint_entries(),
            }
            save_checkpoint(state, os.path.join(directory, name), is_best=is_best,
                            model_name=model_name, pointer=pointer)

    def _resume_file_name(self, directory: str, names: list[str]) -> Optional[str]:
        """File to resume from, or None when some model has no ``checkpoint`` pointer."""
        pointers = {n: read_checkpoint_pointer(os.path.join(directory, n)) for n in names}
        if not names or any(p is None for p in pointers.values()):
            return None
        fnames = set(pointers.values())
        if len(fnames) == 1:
            return fnames.pop()
        # A run killed between the per-model saves leaves models one epoch apart; the previous
        # files are deleted only after all saves, so the oldest epoch exists for every model.
        epochs = [checkpoint_epoch(f) for f in fnames]
        if None in epochs:
            raise RuntimeError(f"Inconsistent checkpoint pointers in {directory}: {pointers}")
        fname = checkpoint_file_name(min(epochs))
        missing = [n for n in names if not os.path.isfile(os.path.join(directory, n, fname))]
        if missing:
            raise RuntimeError(f"Inconsistent checkpoints in {directory}: pointers {pointers}, "
                               f"and {fname} is missing for {missing}")
        print(f"Checkpoint pointers disagree ({pointers}); resuming all models from {fname}")
        return fname

    def resume_model_if_exist(self, directory: str) -> int:
        """Restore models, optimizers, schedulers and trainer state from the files named by the
        ``checkpoint`` pointers under ``directory``; return the number of finished epochs
        (0 when there is nothing to resume)."""
        names = self.get_model_names()
        for name in names:
            for path in remove_stale_temp_files(os.path.join(directory, name)):
                print(f"Removed {path}, left by a write that was interrupted")
        fname = self._resume_file_name(directory, names)
        if fname is None:
            print("No checkpoint found, train from scratch")
            return 0
        start_epoch, extra = 0, {}
        checkpoints = self.open_checkpoints(directory, fname)
        for name in names:
            path = checkpoints.path(name)
            print(f'Loading checkpoint from "{path}"')
            checkpoint = checkpoints.read(name)[0]
            try:
                self._models[name].load_state_dict(checkpoint["state_dict"])
                if self._optims[name] is not None and checkpoint.get("optimizer") is not None:
                    self._optims[name].load_state_dict(checkpoint["optimizer"])
                if self._scheds[name] is not None and checkpoint.get("scheduler") is not None:
                    self._scheds[name].load_state_dict(checkpoint["scheduler"])
                start_epoch = int(checkpoint["epoch"])
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                details = "; ".join(line.strip() for line in str(exc).splitlines()[:3]
                                    if line.strip())
                raise CheckpointFileError(
                    f"Cannot resume from {path}: it does not fit the model of this run "
                    f"({details}). It was probably written with another "
                    f"config; use a new output directory, or move {directory}'s checkpoint "
                    "folders away to train from scratch") from exc
            extra = checkpoint.get("trainer_state") or {}
        problem = self.non_finite_state()
        if problem:
            raise TrainingDiverged(
                f"cannot resume from {checkpoints.path(problem[0])}: {problem[1]} (saved by a run "
                "that had diverged); lower OPTIM.LR and start again with --force")
        self.restore_extra_state(extra)
        print(f"Resumed after epoch {start_epoch}")
        return start_epoch

    def checkpoint_ignored_keys(self) -> dict:
        """``{model name: state-dict keys}`` that ``load_model`` does not require or load (e.g.
        buffers the model recomputes); none by default."""
        return {}

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        """Load the weights of ``model-best.pth.tar`` (or ``model.pth.tar-<epoch>``) into every
        registered model, strictly except for ``checkpoint_ignored_keys``.

        Reads any file ``dassl.utils.read_checkpoint`` accepts (also original Dassl checkpoints
        with pickled schedulers, without running their code). ``self.loaded_checkpoints`` keeps
        ``{name: {path, epoch, val_result}}``.
        """
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        checkpoints = self.open_checkpoints(directory, checkpoint_file_name(epoch))
        loaded = checkpoints.load(self._models, self.checkpoint_ignored_keys())
        self.loaded_checkpoints = {name: item.summary() for name, item in loaded.items()}
        for name, item in loaded.items():
            shown = "n/a" if item.val_result is None else f"{item.val_result:.4f}"
            print(f'Load {item.path} to {name} (epoch={item.epoch}, val_result={shown})')

    # ----------------------------------------------------------------- tensorboard
    def init_writer(self, log_dir: str) -> None:
        if self.__dict__.get("_writer") is None:
            from torch.utils.tensorboard import SummaryWriter  # slow import, only when training

            print(f"Initialize tensorboard (log_dir={log_dir})")
            self._writer = SummaryWriter(log_dir=log_dir)

    def close_writer(self) -> None:
        if self.__dict__.get("_writer") is not None:
            self._writer.close()
            self._writer = None

    @contextlib.contextmanager
    def writer_scope(self) -> Iterator[None]:
        """Close the TensorBoard writer when the block ends, however it ends (an exception,
        Ctrl-C, a divergence): the one place that ends the writer's thread."""
        try:
            yield
        finally:
            self.close_writer()

    def write_scalar(self, tag: str, scalar_value: float, global_step: Optional[int] = None) -> None:
        """Add a TensorBoard scalar; silently dropped when no writer exists (e.g. eval-only)."""
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    # ----------------------------------------------------------------- loop
    def train(self, start_epoch: int, max_epoch: int) -> None:
        """``before_train``; for each epoch ``before_epoch``, ``run_epoch``, ``after_epoch``;
        ``after_train``. The range is read after ``before_train`` (which may resume).

        Ctrl-C (see ``dassl.engine.interrupt``): ``run_epoch`` implementations poll
        :meth:`stop_requested` after each step and, when it is True, set ``self.stopped_at =
        (batches done, batches per epoch)`` and return; the cut-short epoch gets no
        ``after_epoch`` (no scheduler step, no checkpoint), and ``TrainingInterrupted`` is
        raised. A ``run_epoch`` that ignores the request completes its epoch, which is then
        checkpointed as usual before stopping.
        """
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        # The TensorBoard writer (opened by ``before_train``) is closed on every way out of
        # training, the final evaluation included: its thread never outlives the run, nor
        # writes into a run folder that a failed command removes.
        with self.writer_scope():
            with InterruptGuard() as guard:
                self._interrupt_guard = guard
                try:
                    self.before_train()
                    for self.epoch in range(self.start_epoch, self.max_epoch):
                        self.stopped_at = None
                        self.before_epoch()
                        self.run_epoch()
                        if self.stopped_at is None:
                            self.after_epoch()
                        if guard.requested:
                            self._stop_interrupted()
                finally:
                    self._interrupt_guard = None
            self.after_train()

    def stop_requested(self) -> bool:
        """True once Ctrl-C was pressed during :meth:`train`."""
        guard = self.__dict__.get("_interrupt_guard")
        return bool(guard is not None and guard.requested)

    def _stop_interrupted(self) -> None:
        """Raise ``TrainingInterrupted`` naming the resumable checkpoint."""
        cfg = self.__dict__.get("cfg")
        directory = (cfg.RESUME if cfg is not None else "") or self.__dict__.get("output_dir")
        checkpoint, epochs = None, None
        names = self.get_model_names()
        if directory and names:
            fname = read_checkpoint_pointer(os.path.join(directory, names[0]))
            if fname is not None:
                checkpoint = os.path.join(directory, names[0], fname)
                epochs = checkpoint_epoch(fname)
        raise TrainingInterrupted(interruption_message(
            self.epoch + 1, self.max_epoch, self.stopped_at, checkpoint, epochs))

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def run_epoch(self) -> None:
        raise NotImplementedError

    def test(self, split: Optional[str] = None, tag: Optional[str] = None):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch) -> dict:
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError
