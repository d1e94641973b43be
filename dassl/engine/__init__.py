"""Trainers: registry, factory, the base classes, best-epoch selection and graceful Ctrl-C
handling."""
from .base import TrainerBase
from .build import TRAINER_REGISTRY, build_trainer
from .interrupt import InterruptGuard, TrainingInterrupted
from .selection import BestEpochSelector, Evaluation, TrainingResult
from .trainer import SimpleTrainer, TrainerX, check_test_cfg

__all__ = ["TRAINER_REGISTRY", "build_trainer", "TrainerBase", "SimpleTrainer", "TrainerX",
           "InterruptGuard", "TrainingInterrupted", "check_test_cfg", "BestEpochSelector",
           "Evaluation", "TrainingResult"]
