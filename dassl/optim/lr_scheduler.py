"""``build_lr_scheduler``: step/cosine schedules with optional constant or linear warm-up.

Schedulers are stepped once per epoch (after the epoch). With warm-up W epochs and
``WARMUP_RECOUNT=True`` (default) the LR of epoch e is the warm-up value for e < W and the
successor's schedule restarted at W, e.g. cosine: ``lr(e) = LR/2 * (1 + cos(pi*(e-W)/MAX_EPOCH))``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, StepLR

AVAI_SCHEDS = ["single_step", "multi_step", "cosine"]
AVAI_WARMUPS = ["constant", "linear"]


class _BaseWarmupScheduler:
    """Warm-up phase in front of a ``successor`` torch scheduler on the same optimizer.

    Protocol of torch schedulers (``step``, ``get_last_lr``, ``state_dict``, ``load_state_dict``),
    but not a subclass, so that construction does not depend on torch-version internals. The
    wrapper's count is the number of ``step()`` calls: count < W uses the warm-up rule; at count W
    the LR becomes the successor's last LR (its construction value, i.e. the base LR); after that
    every step delegates to ``successor.step()``.

    ``state_dict()`` holds only numbers/lists plus ``successor.state_dict()`` (no optimizer, no
    objects), so checkpoints load with ``torch.load(weights_only=True)`` and a restored wrapper
    keeps driving the live optimizer.
    """

    kind = ""

    def __init__(self, optimizer: torch.optim.Optimizer, successor, warmup_epoch: int) -> None:
        if warmup_epoch <= 0:
            raise ValueError(f"warmup_epoch must be > 0, got {warmup_epoch}")
        if successor.optimizer is not optimizer:
            raise ValueError("The successor scheduler must drive the same optimizer")
        self.optimizer = optimizer
        self.successor = successor
        self.warmup_epoch = int(warmup_epoch)
        # "initial_lr" was recorded by the successor's constructor: the base LRs.
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply(self._warmup_lrs(0))

    def _warmup_lrs(self, count: int) -> list[float]:
        raise NotImplementedError

    def _apply(self, lrs: list) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> None:
        """Advance one epoch."""
        self.last_epoch += 1
        if self.last_epoch < self.warmup_epoch:
            self._apply(self._warmup_lrs(self.last_epoch))
        elif self.last_epoch == self.warmup_epoch:
            self._apply(list(self.successor.get_last_lr()))
        else:
            self.successor.step()
            self._last_lr = list(self.successor.get_last_lr())

    def get_last_lr(self) -> list:
        return list(self._last_lr)

    def _hparams(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "warmup_epoch": self.warmup_epoch, "last_epoch": self.last_epoch,
                "base_lrs": list(self.base_lrs), "last_lr": list(self._last_lr),
                "hparams": self._hparams(), "successor": self.successor.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("kind") != self.kind:
            raise ValueError(f"Cannot load a {state_dict.get('kind')!r} warm-up state into a "
                             f"{self.kind!r} warm-up scheduler")
        self.warmup_epoch = state_dict["warmup_epoch"]
        self.last_epoch = state_dict["last_epoch"]
        self.base_lrs = list(state_dict["base_lrs"])
        self._last_lr = list(state_dict["last_lr"])
        for key, value in state_dict["hparams"].items():
            setattr(self, key, value)
        self.successor.load_state_dict(state_dict["successor"])


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    """LR = ``cons_lr`` for the first ``warmup_epoch`` epochs."""

    kind = "constant"

    def __init__(self, optimizer, successor, warmup_epoch: int, cons_lr: float) -> None:
        self.cons_lr = float(cons_lr)
        super().__init__(optimizer, successor, warmup_epoch)

    def _warmup_lrs(self, count: int) -> list[float]:
        return [self.cons_lr for _ in self.base_lrs]

    def _hparams(self) -> dict[str, Any]:
        return {"cons_lr": self.cons_lr}


class LinearWarmupScheduler(_BaseWarmupScheduler):
    """LR = ``min_lr`` at epoch 0, then ``base_lr * e / warmup_epoch`` for 0 < e < warmup_epoch."""

    kind = "linear"

    def __init__(self, optimizer, successor, warmup_epoch: int, min_lr: float) -> None:
        self.min_lr = float(min_lr)
        super().__init__(optimizer, successor, warmup_epoch)

    def _warmup_lrs(self, count: int) -> list[float]:
        if count == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * count / self.warmup_epoch for lr in self.base_lrs]

    def _hparams(self) -> dict[str, Any]:
        return {"min_lr": self.min_lr}


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg):
    """Scheduler named by ``optim_cfg.LR_SCHEDULER`` (``cfg.OPTIM``), wrapped in a warm-up
    scheduler when ``WARMUP_EPOCH > 0``.

    single_step: ``StepLR(STEPSIZE[-1] (<= 0: MAX_EPOCH), GAMMA)``; multi_step:
    ``MultiStepLR(STEPSIZE, GAMMA)``; cosine: ``CosineAnnealingLR(T_max=MAX_EPOCH, eta_min=0)``.
    """
    name = optim_cfg.LR_SCHEDULER
    stepsize = optim_cfg.STEPSIZE
    max_epoch = optim_cfg.MAX_EPOCH
    if name not in AVAI_SCHEDS:
        raise ValueError(f"OPTIM.LR_SCHEDULER must be one of {AVAI_SCHEDS}, got {name!r}")

    if name == "single_step":
        step = stepsize[-1] if isinstance(stepsize, (list, tuple)) else stepsize
        if not isinstance(step, int):
            raise ValueError(f"OPTIM.STEPSIZE for single_step must be an int, got {step!r}")
        scheduler = StepLR(optimizer, step_size=step if step > 0 else max_epoch,
                           gamma=optim_cfg.GAMMA)
    elif name == "multi_step":
        if not isinstance(stepsize, (list, tuple)) or not all(isinstance(s, int) for s in stepsize):
            raise ValueError(f"OPTIM.STEPSIZE for multi_step must be a list of ints, got {stepsize!r}")
        scheduler = MultiStepLR(optimizer, milestones=list(stepsize), gamma=optim_cfg.GAMMA)
    else:
        scheduler = CosineAnnealingLR(optimizer, T_max=float(max_epoch))

    if optim_cfg.WARMUP_EPOCH > 0:
        if not optim_cfg.WARMUP_RECOUNT:
            # The successor continues from epoch WARMUP_EPOCH instead of restarting at 0.
            scheduler.last_epoch = optim_cfg.WARMUP_EPOCH
        if optim_cfg.WARMUP_TYPE == "constant":
            scheduler = ConstantWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH,
                                                optim_cfg.WARMUP_CONS_LR)
        elif optim_cfg.WARMUP_TYPE == "linear":
            scheduler = LinearWarmupScheduler(optimizer, scheduler, optim_cfg.WARMUP_EPOCH,
                                              optim_cfg.WARMUP_MIN_LR)
        else:
            raise ValueError(f"OPTIM.WARMUP_TYPE must be one of {AVAI_WARMUPS}, "
                             f"got {optim_cfg.WARMUP_TYPE!r}")
    return scheduler
