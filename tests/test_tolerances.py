"""The suite's comparison helpers (tests/tolerances.py) fail on real differences."""
from __future__ import annotations

import math

import pytest

from tolerances import FIT_REL, assert_same_metrics, assert_same_outcome

METRICS = {"srcc": 0.8, "plcc": 0.75, "krcc": 0.6, "rmse": 0.4, "plcc_fitted": 0.77,
           "rmse_fitted": float("nan")}


def test_same_metrics_accepts_fit_rounding_and_rejects_real_differences():
    refit = dict(METRICS, plcc_fitted=0.77 * (1 + FIT_REL / 2))
    assert_same_metrics(refit, METRICS)
    for key, value in (("plcc_fitted", 0.771), ("srcc", 0.8 + 1e-5), ("rmse_fitted", 0.3),
                       ("plcc", math.nan)):
        with pytest.raises(AssertionError):
            assert_same_metrics(dict(METRICS, **{key: value}), METRICS)
    with pytest.raises(AssertionError):
        assert_same_metrics({k: METRICS[k] for k in list(METRICS)[:-1]}, METRICS)


def test_same_outcome_compares_metrics_with_tolerance_and_the_rest_exactly():
    record = {"final": {"metrics": METRICS, "epoch": 2}, "predictions": "name,pred\na,1.5\n"}
    refit = {"final": {"metrics": dict(METRICS, plcc_fitted=0.77 + 1e-9), "epoch": 2},
             "predictions": "name,pred\na,1.5\n"}
    assert_same_outcome(refit, record)
    other_epoch = {"final": {"metrics": METRICS, "epoch": 3}, "predictions": record["predictions"]}
    other_prediction = {"final": record["final"], "predictions": "name,pred\na,1.5000001\n"}
    for changed in (other_epoch, other_prediction):
        with pytest.raises(AssertionError):
            assert_same_outcome(changed, record)
