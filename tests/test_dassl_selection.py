"""Best-epoch selection: one object, its own state, a typed result."""
from __future__ import annotations

import math

from dassl.engine import BestEpochSelector, Evaluation, TrainingResult


def test_selector_keeps_the_strictly_best_epoch_and_ignores_nan():
    selector = BestEpochSelector()
    assert selector.update(Evaluation(1, "val", {"srcc": 0.5, "plcc": 0.1})) == 0.5
    assert selector.update(Evaluation(2, "val", {"srcc": 0.5, "plcc": 0.9})) is None  # a tie
    assert selector.update(Evaluation(3, "val", {"srcc": math.nan})) is None
    assert selector.update(Evaluation(4, "val", {"srcc": 0.7, "plcc": 0.2})) == 0.7
    assert (selector.best_epoch, selector.best_split, selector.best_metrics) == (
        4, "val", {"srcc": 0.7, "plcc": 0.2})


def test_selector_state_round_trips_under_the_checkpoint_keys():
    selector = BestEpochSelector()
    selector.update(Evaluation(3, "test", {"srcc": 0.25}))
    state = selector.state_dict()
    assert state == {"best_result": 0.25, "best_epoch": 3, "best_split": "test",
                     "best_metrics": {"srcc": 0.25}}
    restored = BestEpochSelector()
    restored.load_state_dict({"rng_state": None})  # a checkpoint without selection state
    assert restored.best_epoch is None and restored.best_result == -math.inf
    restored.load_state_dict(state)
    assert restored.state_dict() == state


def test_training_result_names_the_selected_model():
    selector = BestEpochSelector()
    selector.update(Evaluation(2, "val", {"srcc": 0.6}))
    last = Evaluation(5, "test", {"srcc": 0.4})
    plain = TrainingResult.last_epoch("last_step", last).to_dict()
    assert plain["selected"] == {"epoch": 5, "split": "test", "metrics": {"srcc": 0.4},
                                 "selected_on": "last_epoch", "selection_metric": None,
                                 "selection_value": None}
    selected = selector.selected(Evaluation(5, "test", {"srcc": 0.55}))
    assert selected == {"epoch": 2, "split": "test", "metrics": {"srcc": 0.55},
                        "selected_on": "val", "selection_metric": "srcc", "selection_value": 0.6}
