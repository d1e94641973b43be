"""Metrics used by CoOp-style trainers."""
from .accuracy import compute_accuracy

__all__ = ["compute_accuracy"]
