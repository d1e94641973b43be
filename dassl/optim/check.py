"""``check_optim_cfg``: every ``cfg.OPTIM`` value checked before a run starts, so that a bad
value is one ``error:`` line (``ConfigError``) instead of a traceback from torch or from the
builders once the data is loaded and the run folder is written."""
from __future__ import annotations

import math

from dassl.utils import ConfigError

from .lr_scheduler import AVAI_SCHEDS, AVAI_WARMUPS
from .optimizer import AVAI_OPTIMS


def _number(optim_cfg, key: str) -> float:
    """``OPTIM.<key>`` as a finite float; raises ``ConfigError`` for anything else."""
    value = getattr(optim_cfg, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(float(value)):
        raise ConfigError(f"OPTIM.{key} must be a finite number, got {value!r}")
    return float(value)


def _require(ok: bool, key: str, rule: str, value) -> None:
    if not ok:
        raise ConfigError(f"OPTIM.{key} must be {rule}, got {value!r}")


def _check_optimizer(optim_cfg) -> None:
    """NAME in ``AVAI_OPTIMS``; LR > 0; the other hyper-parameters in torch's ranges."""
    name = optim_cfg.NAME
    if name not in AVAI_OPTIMS:
        raise ConfigError(f"OPTIM.NAME must be one of {AVAI_OPTIMS}, got {name!r}")
    _require(_number(optim_cfg, "LR") > 0, "LR", "> 0", optim_cfg.LR)
    for key in ("WEIGHT_DECAY", "MOMENTUM", "SGD_DAMPNING", "RMSPROP_ALPHA", "BASE_LR_MULT"):
        _require(_number(optim_cfg, key) >= 0, key, ">= 0", getattr(optim_cfg, key))
    for key in ("ADAM_BETA1", "ADAM_BETA2"):
        _require(0 <= _number(optim_cfg, key) < 1, key, "in [0, 1)", getattr(optim_cfg, key))
    if name == "sgd" and optim_cfg.SGD_NESTEROV and (
            float(optim_cfg.MOMENTUM) <= 0 or float(optim_cfg.SGD_DAMPNING) != 0):
        raise ConfigError("OPTIM.SGD_NESTEROV True needs OPTIM.MOMENTUM > 0 and "
                          f"OPTIM.SGD_DAMPNING 0, got {optim_cfg.MOMENTUM!r} and "
                          f"{optim_cfg.SGD_DAMPNING!r}")
    if optim_cfg.STAGED_LR and not list(optim_cfg.NEW_LAYERS):
        raise ConfigError("OPTIM.STAGED_LR is True but OPTIM.NEW_LAYERS is empty: name the "
                          "child modules trained at the full OPTIM.LR")


def _check_schedule(optim_cfg) -> None:
    """MAX_EPOCH >= 0 (>= 1 to train: train.py); LR_SCHEDULER, STEPSIZE, GAMMA and the warm-up."""
    max_epoch = optim_cfg.MAX_EPOCH
    _require(isinstance(max_epoch, int) and not isinstance(max_epoch, bool) and max_epoch >= 0,
             "MAX_EPOCH", "a whole number >= 1", max_epoch)
    name = optim_cfg.LR_SCHEDULER
    if name not in AVAI_SCHEDS:
        raise ConfigError(f"OPTIM.LR_SCHEDULER must be one of {AVAI_SCHEDS}, got {name!r}")
    steps = optim_cfg.STEPSIZE
    steps = list(steps) if isinstance(steps, (list, tuple)) else [steps]
    if name != "cosine":
        _require(len(steps) > 0 and all(isinstance(s, int) and not isinstance(s, bool)
                                        for s in steps), "STEPSIZE", "a list of whole numbers",
                 optim_cfg.STEPSIZE)
    if name == "multi_step":
        _require(all(s > 0 for s in steps), "STEPSIZE", "epochs > 0 for multi_step",
                 optim_cfg.STEPSIZE)
    _require(_number(optim_cfg, "GAMMA") > 0, "GAMMA", "> 0", optim_cfg.GAMMA)
    warmup = optim_cfg.WARMUP_EPOCH
    _require(isinstance(warmup, int) and not isinstance(warmup, bool), "WARMUP_EPOCH",
             "a whole number (> 0 enables warm-up)", warmup)
    if warmup > 0:
        if optim_cfg.WARMUP_TYPE not in AVAI_WARMUPS:
            raise ConfigError(f"OPTIM.WARMUP_TYPE must be one of {AVAI_WARMUPS}, "
                              f"got {optim_cfg.WARMUP_TYPE!r}")
        key = "WARMUP_CONS_LR" if optim_cfg.WARMUP_TYPE == "constant" else "WARMUP_MIN_LR"
        _require(_number(optim_cfg, key) > 0, key, "> 0", getattr(optim_cfg, key))


def check_optim_cfg(optim_cfg) -> None:
    """Check ``cfg.OPTIM`` (the node ``build_optimizer`` / ``build_lr_scheduler`` read).

    Raises ``ConfigError`` naming the key, the rule and the value given.
    """
    _check_optimizer(optim_cfg)
    _check_schedule(optim_cfg)
