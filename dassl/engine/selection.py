"""Best-epoch selection and the typed result of a training run.

``BestEpochSelector`` is the one owner of the selection state (after detectron2's
``BestCheckpointer``): it is registered with the loop (``TrainerBase.register_hook``), sees each
per-epoch evaluation, and its ``state_dict`` travels in every checkpoint under the keys
``best_result``, ``best_epoch``, ``best_split`` and ``best_metrics`` (the layout checkpoints have
always had). ``TrainingResult`` is what ``SimpleTrainer.train`` leaves for reporting: the
last-epoch model's test and the selected model's test.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional

__all__ = ["Evaluation", "BestEpochSelector", "TrainingResult"]


@dataclass(frozen=True)
class Evaluation:
    """One test pass: the model after ``epoch`` (1-based) on ``split``, its ``metrics`` in
    evaluator order (the first one is the selection metric)."""

    epoch: int
    split: str
    metrics: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "split": self.split, "metrics": dict(self.metrics)}


class BestEpochSelector:
    """Keeps the epoch with the highest first metric (strict improvement; NaN never improves).

    Attributes: ``best_result`` (-inf until an epoch counts), ``best_epoch`` (1-based),
    ``best_split`` and ``best_metrics`` (None until then).
    """

    def __init__(self) -> None:
        self.best_result = -math.inf
        self.best_epoch: Optional[int] = None
        self.best_split: Optional[str] = None
        self.best_metrics: Optional[dict] = None

    @staticmethod
    def is_better(value: float, best: float) -> bool:
        """Strict improvement; NaN (undefined metric) never improves."""
        return not math.isnan(value) and value > best

    def update(self, evaluation: Evaluation) -> Optional[float]:
        """Record ``evaluation``; return its selection value when it is the best so far, else
        None."""
        value = next(iter(evaluation.metrics.values()))
        if not self.is_better(value, self.best_result):
            return None
        self.best_result = value
        self.best_epoch = evaluation.epoch
        self.best_split = evaluation.split
        self.best_metrics = dict(evaluation.metrics)
        return value

    def selected(self, test: Evaluation) -> dict[str, Any]:
        """The ``selected`` entry of a ``TrainingResult`` for ``test``, the best model's test."""
        return dict(test.to_dict(), epoch=self.best_epoch, selected_on=self.best_split,
                    selection_metric=next(iter(self.best_metrics or {}), None),
                    selection_value=float(self.best_result))

    def state_dict(self) -> dict[str, Any]:
        """Plain data, stored in every checkpoint's ``trainer_state``."""
        return {"best_result": float(self.best_result), "best_epoch": self.best_epoch,
                "best_split": self.best_split, "best_metrics": self.best_metrics}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from ``state`` (a checkpoint's ``trainer_state``); absent keys (checkpoints
        of runs without selection state) leave the selector as it is."""
        if "best_result" in state:
            self.best_result = state["best_result"]
            self.best_epoch = state["best_epoch"]
            self.best_split = state["best_split"]
            self.best_metrics = state["best_metrics"]


@dataclass(frozen=True)
class TrainingResult:
    """What a finished ``train()`` measured: ``final_model`` (``TEST.FINAL_MODEL``), ``last``
    (the last-epoch model's test: ``epoch``, ``split``, ``metrics``) and ``selected`` (the deployed
    model's test; also ``selected_on``, ``selection_metric``, ``selection_value``, None for
    ``last_step`` or when no epoch improved)."""

    final_model: str
    last: Mapping[str, Any]
    selected: Mapping[str, Any]

    @classmethod
    def last_epoch(cls, final_model: str, last: Evaluation) -> "TrainingResult":
        """The result when the last-epoch model is deployed."""
        selected = dict(last.to_dict(), selected_on="last_epoch", selection_metric=None,
                        selection_value=None)
        return cls(final_model, last.to_dict(), selected)

    def to_dict(self) -> dict[str, Any]:
        return {key: (dict(value) if isinstance(value, Mapping) else value)
                for key, value in asdict(self).items()}
