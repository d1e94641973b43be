"""``SimpleTrainer`` (data, evaluation, model selection, checkpoint policy) and ``TrainerX``
(the labelled-data epoch loop). Method trainers subclass ``TrainerX`` and implement
``build_model`` and ``forward_backward``.
"""
from __future__ import annotations

import datetime
import itertools
import os
import sys
import time
import warnings
from collections import OrderedDict
from typing import Any, Optional

import torch
from tqdm import tqdm

from dassl.data import DataManager, check_dataloader_cfg
from dassl.data.transforms import check_input_cfg
from dassl.evaluation import build_evaluator
from dassl.optim import check_optim_cfg
from dassl.utils import (AverageMeter, BEST_MODEL_NAME, ConfigError, MetricMeter,
                         checkpoint_file_name,
                         mkdir_if_missing, read_checkpoint_pointer)

from .base import TrainerBase, checkpoint_epoch
from .selection import BestEpochSelector, Evaluation, TrainingResult

_FINAL_MODELS = ("last_step", "best_val")
# Default of the trainers' `validated` argument: the constructor validates the config itself.
NOT_VALIDATED = object()


def check_test_cfg(cfg) -> None:
    """Raise ``ConfigError`` for an invalid ``TEST.FINAL_MODEL`` or ``TEST.SPLIT``."""
    if cfg.TEST.FINAL_MODEL not in _FINAL_MODELS:
        raise ConfigError(f"TEST.FINAL_MODEL must be one of {_FINAL_MODELS}, "
                          f"got {cfg.TEST.FINAL_MODEL!r}")
    if cfg.TEST.SPLIT not in ("val", "test"):
        raise ConfigError(f"TEST.SPLIT must be 'val' or 'test', got {cfg.TEST.SPLIT!r}")


def _format_metrics(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())


class SimpleTrainer(TrainerBase):
    """Trainer with one data manager, one evaluator and Dassl's model-selection policy.

    Construction: ``check_cfg`` -> device -> ``build_data_loader`` -> split files in
    ``OUTPUT_DIR/splits`` -> ``build_model`` (subclass) -> evaluator.
    """

    def __init__(self, cfg, validated: Any = NOT_VALIDATED) -> None:
        """``validated``: what ``validate_cfg(cfg)`` returned, when the caller (train.py)
        already validated ``cfg``; by default the constructor validates it. Either way the
        config is validated once and the result kept as ``self.validated``."""
        super().__init__()
        self.validated = self.validate_cfg(cfg) if validated is NOT_VALIDATED else validated
        self.check_cfg(cfg)
        use_cuda = torch.cuda.is_available() and cfg.USE_CUDA
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        # Model selection (its state is persisted in checkpoints, restored on resume).
        self.selector = BestEpochSelector()
        self.register_hook(self.selector)
        self.training_result: Optional[TrainingResult] = None
        self.last_test_results: OrderedDict = OrderedDict()
        self.last_test_split: Optional[str] = None
        self._last_eval: Optional[Evaluation] = None
        self._finished_epochs = 0
        self.build_data_loader()
        self.dm.dataset.save_splits(os.path.join(cfg.OUTPUT_DIR, "splits"))
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)

    @classmethod
    def validate_cfg(cls, cfg) -> Any:
        """Check everything this trainer reads from ``cfg`` that needs no data, and return what
        it builds from it (here nothing: ``TEST.FINAL_MODEL``, ``TEST.SPLIT``, ``OPTIM``,
        ``DATALOADER``, ``INPUT`` and ``TRAIN.PRINT_FREQ`` are checked, so that torch never meets
        a bad value after the run folder is written).

        Called once per run, before any data is read: by train.py (which passes the result to
        ``build_trainer``) or by the constructor. Subclasses extend it (``super()`` first) and
        raise ``ConfigError`` / ``ValueError`` on invalid values.
        """
        check_test_cfg(cfg)
        check_optim_cfg(cfg.OPTIM)
        check_dataloader_cfg(cfg)
        check_input_cfg(cfg)
        if isinstance(cfg.TRAIN.PRINT_FREQ, bool) or not isinstance(cfg.TRAIN.PRINT_FREQ, int) \
                or cfg.TRAIN.PRINT_FREQ < 1:
            raise ConfigError("TRAIN.PRINT_FREQ must be a whole number >= 1 (batches between log "
                              f"lines), got {cfg.TRAIN.PRINT_FREQ!r}")
        return None

    def check_cfg(self, cfg) -> None:
        """Dassl's hook for method-specific config checks (raise on invalid values); runs after
        ``validate_cfg``."""

    def build_data_loader(self) -> None:
        """Create ``self.dm`` and expose its loaders and dataset facts as attributes
        (``level_names``: the dataset's ``classnames``, the quality levels worst first); the test
        images go through ``test_transform()`` when it gives one."""
        dm = DataManager(self.cfg, custom_tfm_test=self.test_transform(),
                         training=not self.evaluation_only())
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        # Dassl's class names are quality levels here, worst first: translated once, where the
        # trainer meets the data manager, so methods speak of levels.
        self.level_names = list(dm.dataset.classnames)
        self.dm = dm

    def evaluation_only(self) -> bool:
        """Whether this trainer only evaluates a trained model: then no training loader or
        transform is built and no training image is read. False by default."""
        return False

    def test_transform(self):
        """The test images' transform when it is not the one ``cfg.INPUT`` describes (e.g. that
        of a trained model being evaluated); None by default."""
        return None

    def build_model(self) -> None:
        """Build ``self.model`` and ``register_model`` every trained module (subclass)."""
        raise NotImplementedError("Trainers must implement build_model() and register their "
                                  "modules with register_model()")

    def train(self) -> None:
        super().train(self.start_epoch, self.max_epoch)

    # ----------------------------------------------------------------- selection policy
    def selection_split(self) -> str:
        """Split used to pick the best epoch with ``FINAL_MODEL best_val``: "val", or "test"
        only when ``TEST.ALLOW_SELECTION_ON_TEST`` is set (raises otherwise)."""
        if self.val_loader is not None:
            return "val"
        if self.cfg.TEST.ALLOW_SELECTION_ON_TEST:
            return "test"
        raise ConfigError(
            "TEST.FINAL_MODEL is 'best_val' but the dataset has no validation split, so the best "
            "epoch would be selected on the test set. Create a validation split (e.g. "
            "DATASET.VAL_RATIO > 0), use TEST.FINAL_MODEL last_step, or set "
            "TEST.ALLOW_SELECTION_ON_TEST True to reproduce the original protocol knowingly.")

    # The selector's state, under the names trainers have always exposed (read-only).
    best_result = property(lambda self: self.selector.best_result)
    best_epoch = property(lambda self: self.selector.best_epoch)
    best_split = property(lambda self: self.selector.best_split)
    best_metrics = property(lambda self: self.selector.best_metrics)

    @property
    def final_results(self) -> dict:
        """``training_result`` as a dict (``{}`` before training ends or with NO_TEST)."""
        return self.training_result.to_dict() if self.training_result is not None else {}

    def _last_evaluation(self) -> Evaluation:
        """The last ``test()`` as an ``Evaluation`` of the model after the finished epochs."""
        return Evaluation(self._finished_epochs, self.last_test_split,
                          dict(self.last_test_results))

    # ----------------------------------------------------------------- lifecycle
    def before_train(self) -> None:
        cfg = self.cfg
        if cfg.TEST.FINAL_MODEL == "best_val" and not cfg.TEST.NO_TEST:
            if self.selection_split() == "test":
                # A chosen protocol, said once as a plain line (console and log), not as a
                # Python warning with a source line.
                print("WARNING: TEST.ALLOW_SELECTION_ON_TEST is set and there is no validation "
                      "split: the best epoch is SELECTED ON THE TEST SET (the original code's "
                      "protocol); the selected score is optimistic. The last-epoch test score is "
                      "reported too.")
        self.start_epoch = self.resume_model_if_exist(cfg.RESUME or self.output_dir)
        self._finished_epochs = self.start_epoch
        writer_dir = os.path.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_epoch(self) -> None:
        """Step the schedulers, evaluate for model selection (best_val), save checkpoints."""
        cfg = self.cfg
        self.update_lr()
        self._finished_epochs = self.epoch + 1
        best_val_result = None  # set when this epoch is the best so far
        if cfg.TEST.FINAL_MODEL == "best_val" and not cfg.TEST.NO_TEST:
            self.test(split=self.selection_split())
            self._last_eval = self._last_evaluation()
            best_val_result = self.selector.update(self._last_eval)
        self.save_latest_checkpoint(self.epoch, best_val_result)

    def is_kept_checkpoint(self, fname: str) -> bool:
        """Periodic files kept on disk: every ``CHECKPOINT_FREQ`` epochs and the last epoch."""
        epoch = checkpoint_epoch(fname)
        if epoch is None:
            return True  # never delete files this policy did not create
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        return (freq > 0 and epoch % freq == 0) or epoch == self.max_epoch

    def save_latest_checkpoint(self, epoch: int, best_val_result: Optional[float] = None) -> None:
        """Save the resumable ``model.pth.tar-<epoch+1>`` of every model, point ``checkpoint``
        at it, then delete the previous one unless :meth:`is_kept_checkpoint`. With
        ``best_val_result`` (this epoch is the best so far) the file is also copied to
        ``model-best.pth.tar`` (pointer ``checkpoint-best``) instead of being serialised twice."""
        names = self.get_model_names()
        previous = {n: read_checkpoint_pointer(os.path.join(self.output_dir, n)) for n in names}
        self.save_model(epoch, self.output_dir, is_best=best_val_result is not None,
                        val_result=best_val_result)
        current = checkpoint_file_name(epoch + 1)
        for name, prev in previous.items():
            if prev and prev != current and not self.is_kept_checkpoint(prev):
                path = os.path.join(self.output_dir, name, prev)
                if os.path.isfile(path):
                    os.remove(path)

    def after_train(self) -> None:
        print("Finish training")
        if not self.cfg.TEST.NO_TEST:
            self.training_result = self._final_evaluation()
        elapsed = str(datetime.timedelta(seconds=round(time.time() - self.time_start)))
        print(f"Elapsed: {elapsed}")

    def _final_evaluation(self) -> TrainingResult:
        """Test the last-epoch model and (best_val) the selected one."""
        cfg = self.cfg
        split = cfg.TEST.SPLIT
        last = self._last_eval
        if last is None or last.epoch != self._finished_epochs or last.split != split:
            print("Evaluate the last-epoch model")
            self.test(split=split)
            last = self._last_evaluation()
        # else: already evaluated after the final epoch, no second pass
        result = TrainingResult.last_epoch(cfg.TEST.FINAL_MODEL, last)
        if cfg.TEST.FINAL_MODEL == "best_val":
            if self.best_epoch is None:
                warnings.warn("No epoch improved the selection metric (undefined/NaN results); "
                              "deploying the last-epoch model", UserWarning, stacklevel=2)
            else:
                print(f"Deploy the model with the best {self.best_split} performance "
                      f"(epoch {self.best_epoch})")
                self.load_model(self._best_model_dir())
                # Own tags: the last epoch's point under <split>/ stays the last-epoch model's.
                self.test(split=split, tag=f"selected/{split}")
                result = TrainingResult(cfg.TEST.FINAL_MODEL, result.last,
                                        self.selector.selected(self._last_evaluation()))
        else:
            print("Deploy the last-epoch model")
        last, selected = result.last, result.selected
        print(f"* last-epoch model (epoch {last['epoch']}) on {last['split']}: "
              f"{_format_metrics(last['metrics'])}")
        print(f"* selected model (epoch {selected['epoch']}, selected on {selected['selected_on']}) "
              f"on {selected['split']}: {_format_metrics(selected['metrics'])}")
        return result

    def _best_model_dir(self) -> str:
        """OUTPUT_DIR, or RESUME when the best epoch predates a resume into a new directory."""
        first = self.get_model_names()[0]
        if (self.cfg.RESUME and not os.path.isfile(
                os.path.join(self.output_dir, first, BEST_MODEL_NAME))):
            return self.cfg.RESUME
        return self.output_dir

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def test(self, split: Optional[str] = None, tag: Optional[str] = None) -> float:
        """Evaluate on ``split`` (default ``TEST.SPLIT``); return the first metric.

        The full ordered result is kept in ``self.last_test_results`` and written to
        TensorBoard as ``<tag>/<metric>`` (tag defaults to the split) at step ``self.epoch``.
        """
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            loader = self.val_loader
        elif split == "val" and not self.cfg.TEST.ALLOW_SELECTION_ON_TEST:
            raise ConfigError("Asked to evaluate on the val split, but the dataset has none (set "
                              "TEST.ALLOW_SELECTION_ON_TEST True to fall back to the test split)")
        elif split in ("val", "test"):
            split, loader = "test", self.test_loader
        else:
            raise ValueError(f"Unknown split {split!r}; expected 'val' or 'test'")
        if loader is None:
            # Only DATASET.TEST_RATIO 0 without a validation part (train on every row, keep
            # the last-epoch model): the metrics of no images are NaN.
            print(f"No {split} split (DATASET.TEST_RATIO 0): the model is not evaluated")
            loader = ()
        else:
            print(f"Evaluate on the *{split}* set")
        for batch in tqdm(loader, disable=not sys.stderr.isatty()):
            inputs, target = self.parse_batch_test(batch)
            output = self.model_inference(inputs)
            self.evaluator.process(output, target, names=batch.get("impath"))
        results = self.evaluator.evaluate()
        self.last_test_results = OrderedDict((k, float(v)) for k, v in results.items())
        self.last_test_split = split
        for key, value in self.last_test_results.items():
            self.write_scalar(f"{tag or split}/{key}", value, self.epoch)
        return next(iter(self.last_test_results.values()))

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch: dict):
        """``(images, target)`` on the device (see ``test_target``)."""
        return batch["img"].to(self.device), self.test_target(batch)

    def test_target(self, batch: dict) -> torch.Tensor:
        """What a test batch's predictions are scored against, on the device: ``mos`` (float32)
        when the batch has it, else Dassl's class ``label`` (the level index)."""
        if "mos" in batch:
            return batch["mos"].to(self.device, dtype=torch.float32)
        return batch["label"].to(self.device)


class TrainerX(SimpleTrainer):
    """Trainer over labelled data only (``train_loader_x``)."""

    def run_epoch(self) -> None:
        """One pass over ``train_loader_x``: ``forward_backward`` per batch, log lines every
        ``PRINT_FREQ`` batches, TensorBoard ``train/*`` scalars every batch; stops after the
        current step on Ctrl-C (see ``TrainerBase.train``)."""
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        print_freq = self.cfg.TRAIN.PRINT_FREQ
        end = time.time()
        for self.batch_idx, batch in enumerate(self._train_batches()):
            data_time.update(time.time() - end)
            # The rate this step trains with: logged, and named if the run diverges (the
            # scheduler steps after the epoch, before the checkpoint's finiteness check).
            self.step_lr = self.get_current_lr()
            loss_summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)

            if (self.batch_idx + 1) % print_freq == 0 or self.num_batches < print_freq:
                nb_remain = (self.num_batches - self.batch_idx - 1
                             + (self.max_epoch - self.epoch - 1) * self.num_batches)
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                print(" ".join([
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.step_lr:.4e}",
                    f"eta {eta}",
                ]))

            n_iter = self.epoch * self.num_batches + self.batch_idx
            for name, meter in losses.meters.items():
                self.write_scalar("train/" + name, meter.avg, n_iter)
            self.write_scalar("train/lr", self.step_lr, n_iter)
            names = self.get_model_names()
            if len(names) > 1:  # each module's own optimizer may follow its own schedule
                for name in names:
                    self.write_scalar(f"train/lr/{name}", self.get_current_lr([name]), n_iter)
            if self.stop_requested():
                self.stopped_at = (self.batch_idx + 1, self.num_batches)
                return
            end = time.time()

    def _train_batches(self):
        """Batches of ``train_loader_x``; ends early (setting ``stopped_at``) when a fetch fails
        after Ctrl-C: a terminal's Ctrl-C also reaches DataLoader workers, which then exit and
        make the next fetch fail; that is the interruption, not a data error."""
        batches = iter(self.train_loader_x)
        for done in itertools.count():
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception:
                if not self.stop_requested():
                    raise
                self.stopped_at = (done, self.num_batches)
                return
            yield batch

    def parse_batch_train(self, batch: dict):
        """``(images, labels, domains)`` on the device."""
        return (batch["img"].to(self.device), batch["label"].to(self.device),
                batch["domain"].to(self.device))
