"""dassl.evaluation: IQA metrics against SciPy, the logistic fit, NaN safety, predictions."""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from dassl.config import get_cfg_default
from dassl.evaluation import (EVALUATOR_REGISTRY, IQA, Classification, build_evaluator,
                              fit_logistic_4, iqa_metrics, logistic_4)
from tolerances import FP32_EPS, METRIC_REL


def _evaluator(name="IQA"):
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    cfg.TEST.EVALUATOR = name
    return build_evaluator(cfg, lab2cname={0: "a", 1: "b", 2: "c"})


def test_registry_and_default():
    assert isinstance(_evaluator(), IQA)  # TEST.EVALUATOR defaults to "IQA"
    assert isinstance(_evaluator("Classification"), Classification)
    assert {"IQA", "Classification"} <= set(EVALUATOR_REGISTRY.registered_names())
    with pytest.raises(KeyError, match="did you mean IQA"):
        _evaluator("IQa")


def test_iqa_metrics_match_scipy_over_batches(capsys):
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 5, size=57)
    pred = 0.8 * mos + rng.normal(0, 0.7, size=57)
    ev = _evaluator()
    for start in range(0, 57, 10):  # several batches, (B,1) and (B,) shapes, float32 tensors
        p = torch.tensor(pred[start:start + 10], dtype=torch.float32)
        if start % 20 == 0:
            p = p[:, None]
        ev.process(p, torch.tensor(mos[start:start + 10]),
                   names=[f"/root/sub/img{i}.jpg" for i in range(start, start + len(p))])
    res = ev.evaluate()
    assert list(res) == ["srcc", "plcc", "krcc", "rmse", "plcc_fitted", "rmse_fitted"]
    p32 = pred.astype(np.float32).astype(np.float64)
    # Our metrics and scipy's are float64 sums over the 57 images in other orders/formulas:
    # <= 57 * FP64_EPS = 1.3e-14 relative on values <= 1 (RMSE ~1); 1e-12 leaves a factor 100,
    # while one swapped rank moves SRCC by 12 / (n (n^2 - 1)) = 6.5e-5.
    assert res["srcc"] == pytest.approx(stats.spearmanr(p32, mos)[0], abs=1e-12)
    assert res["plcc"] == pytest.approx(stats.pearsonr(p32, mos)[0], abs=1e-12)
    assert res["krcc"] == pytest.approx(stats.kendalltau(p32, mos)[0], abs=1e-12)
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((p32 - mos) ** 2)), abs=1e-12)
    # The logistic family holds (nearly) the identity, so the least-squares fit cannot lose
    # PLCC beyond its optimiser's convergence; 1e-3 is that, not a rounding bound.
    assert res["plcc_fitted"] >= res["plcc"] - 1e-3
    assert res["rmse_fitted"] < res["rmse"]
    out = capsys.readouterr().out
    assert "* SRCC: " in out and "* PLCC (fitted): " in out and "* total: 57" in out
    preds = ev.predictions()
    assert len(preds) == 57 and preds[3][0] == "img3.jpg"
    # The prediction went through float32: rounded by <= FP32_EPS / 2 relative.
    assert preds[3][1] == mos[3] and preds[3][2] == pytest.approx(pred[3], rel=FP32_EPS)
    ev.reset()
    assert ev.predictions() == []


def test_logistic_fit_recovers_known_parameters():
    x = np.linspace(-2, 3, 80)
    true = (4.5, 0.5, 0.4, 0.6)
    y = logistic_4(x, *true)
    params = fit_logistic_4(x, y)
    assert params is not None
    # Noise-free data: curve_fit stops at a relative step of 1.5e-8 (its xtol/ftol), leaving
    # the parameters ~1e-6 from the truth; 1e-4 allows another LAPACK/optimiser path, while a
    # wrong formula misses them by > 0.1. The fitted PLCC/RMSE follow (1e-9, 1e-6).
    assert params[0] == pytest.approx(4.5, abs=1e-4) and params[1] == pytest.approx(0.5, abs=1e-4)
    assert params[2] == pytest.approx(0.4, abs=1e-4) and abs(params[3]) == pytest.approx(0.6, abs=1e-4)
    res = iqa_metrics(x, y)
    assert res["plcc_fitted"] == pytest.approx(1.0, abs=1e-9)
    assert res["rmse_fitted"] < 1e-6
    # Float64 results of exact inputs: pytest.approx's rel 1e-6 is METRIC_REL (tests/tolerances.py).
    assert res["srcc"] == pytest.approx(1.0) and res["plcc"] < 0.999  # raw PLCC sees the curve
    # Formula check at the midpoint: (b1 + b2) / 2.
    assert logistic_4(0.4, *true) == pytest.approx(2.5)


def test_constant_predictions_are_nan_not_crash(capsys):
    ev = _evaluator()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning/OptimizeWarning either
        ev.process(torch.full((6,), 2.0), torch.arange(6.0))
        res = ev.evaluate()
    assert np.isnan(res["srcc"]) and np.isnan(res["plcc"]) and np.isnan(res["krcc"])
    assert np.isnan(res["plcc_fitted"]) and np.isnan(res["rmse_fitted"])
    assert res["rmse"] == pytest.approx(np.sqrt(np.mean((2.0 - np.arange(6.0)) ** 2)),
                                        rel=METRIC_REL)
    assert "undefined" in capsys.readouterr().out
    single = iqa_metrics([1.0], [2.0])
    assert np.isnan(single["srcc"]) and single["rmse"] == 1.0
    assert np.isnan(iqa_metrics([], [])["rmse"])


def test_process_rejects_bad_shapes():
    ev = _evaluator()
    with pytest.raises(ValueError, match="shape"):
        ev.process(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="targets"):
        ev.process(torch.zeros(4), torch.zeros(5))


def test_classification_evaluator(capsys):
    ev = _evaluator("Classification")
    logits = torch.tensor([[2.0, 0, 0], [0, 3, 0], [0, 0, 1], [5, 0, 0]])
    ev.process(logits, torch.tensor([0, 1, 1, 0]))
    res = ev.evaluate()
    assert list(res) == ["accuracy", "error_rate", "macro_f1"]
    assert res["accuracy"] == 75.0 and res["error_rate"] == 25.0
    assert "* accuracy: 75.0%" in capsys.readouterr().out


def test_the_metric_names_are_written_once():
    """The evaluator computes the metrics `metric_names.IQA_METRICS` lists, in its order; the
    tables, plots, score.py and the demo read that list instead of spelling it again."""
    from dassl.evaluation.metric_names import IQA_METRICS

    rng = np.random.default_rng(0)
    assert list(iqa_metrics(rng.random(8), rng.random(8))) == list(IQA_METRICS)
    repo = Path(__file__).resolve().parents[1]
    spelled = re.compile(r"""["']srcc["']\s*,\s*["']plcc["']""")
    files = [*repo.glob("*.py"), *repo.glob("scripts/**/*.sh"),
             *(p for d in ("dassl", "trainers", "datasets", "scripts", "clip")
               for p in (repo / d).rglob("*.py"))]
    hits = sorted(str(p.relative_to(repo)) for p in files if spelled.search(p.read_text()))
    assert hits == []  # metric_names.py writes them as a mapping to their labels
