"""Optimizers and learning-rate schedulers built from ``cfg.OPTIM``."""
from .lr_scheduler import (AVAI_SCHEDS, ConstantWarmupScheduler, LinearWarmupScheduler,
                           build_lr_scheduler)
from .optimizer import AVAI_OPTIMS, build_optimizer
from .check import check_optim_cfg

__all__ = ["build_optimizer", "build_lr_scheduler", "ConstantWarmupScheduler",
           "LinearWarmupScheduler", "AVAI_OPTIMS", "AVAI_SCHEDS", "check_optim_cfg"]
