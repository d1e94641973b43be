"""Trainers: registry, factory and the base classes."""
from .base import TrainerBase
from .build import TRAINER_REGISTRY, build_trainer
from .trainer import SimpleTrainer, TrainerX

__all__ = ["TRAINER_REGISTRY", "build_trainer", "TrainerBase", "SimpleTrainer", "TrainerX"]
