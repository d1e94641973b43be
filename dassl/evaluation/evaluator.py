"""Evaluators: ``IQA`` (correlations with MOS, the default) and ``Classification``.

Protocol: ``reset()``; ``process(output, target, names=None)`` once per batch; ``evaluate()``
returns an ordered dict whose FIRST value is the model-selection metric (higher is better).
"""
from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch
from scipy import optimize, stats

from ..utils.run_dir import CMAT_FILE
from .build import EVALUATOR_REGISTRY
from .metric_names import IQA_METRICS


class EvaluatorBase:
    """Base class: subclasses implement ``reset``, ``process`` and ``evaluate``."""

    def __init__(self, cfg, **kwargs) -> None:
        self.cfg = cfg

    def reset(self) -> None:
        raise NotImplementedError

    def process(self, mo, gt, names: Optional[Sequence[str]] = None) -> None:
        raise NotImplementedError

    def evaluate(self) -> "OrderedDict[str, float]":
        raise NotImplementedError


def logistic_4(x, b1: float, b2: float, b3: float, b4: float):
    """Standard 4-parameter logistic (VQEG) mapping predictions to the MOS scale:
    ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``."""
    z = np.clip(-(np.asarray(x, dtype=np.float64) - b3) / max(abs(b4), 1e-12), -700.0, 700.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic_4(pred, mos) -> Optional[np.ndarray]:
    """Least-squares fit of :func:`logistic_4` from ``pred`` to ``mos``.

    Returns ``[b1, b2, b3, b4]`` or None when the fit is impossible (fewer than 5 samples,
    constant inputs) or does not converge.
    """
    pred = np.asarray(pred, dtype=np.float64)
    mos = np.asarray(mos, dtype=np.float64)
    if pred.size < 5 or np.ptp(pred) == 0 or np.ptp(mos) == 0:
        return None
    p0 = [mos.max(), mos.min(), float(np.mean(pred)), float(np.std(pred)) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OptimizeWarning for poorly conditioned data
            params, _ = optimize.curve_fit(logistic_4, pred, mos, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    return params if np.all(np.isfinite(params)) else None


def _safe_corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    """Correlation statistic, or NaN when undefined (n < 2 or a constant input)."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(fn(a, b)[0])


def iqa_metrics(pred, mos) -> "OrderedDict[str, float]":
    """SRCC, PLCC, KRCC, RMSE on raw predictions, then PLCC and RMSE after the 4-parameter
    logistic fit (``*_fitted``), keyed and ordered as ``IQA_METRICS``. Undefined values are NaN;
    never raises for valid arrays."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    mos = np.asarray(mos, dtype=np.float64).reshape(-1)
    if pred.shape != mos.shape:
        raise ValueError(f"pred and mos differ in length: {pred.size} vs {mos.size}")
    res = OrderedDict()
    res["srcc"] = _safe_corr(stats.spearmanr, pred, mos)
    res["plcc"] = _safe_corr(stats.pearsonr, pred, mos)
    res["krcc"] = _safe_corr(stats.kendalltau, pred, mos)
    res["rmse"] = float(np.sqrt(np.mean((pred - mos) ** 2))) if pred.size else float("nan")
    params = fit_logistic_4(pred, mos)
    if params is None:
        res["plcc_fitted"] = res["rmse_fitted"] = float("nan")
    else:
        mapped = logistic_4(pred, *params)
        res["plcc_fitted"] = _safe_corr(stats.pearsonr, mapped, mos)
        res["rmse_fitted"] = float(np.sqrt(np.mean((mapped - mos) ** 2)))
    return res


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to(torch.float64).cpu().numpy()  # no precision loss for float64 MOS
    return np.asarray(x, dtype=np.float64)


@EVALUATOR_REGISTRY.register()
class IQA(EvaluatorBase):
    """Image-quality evaluator: predictions vs MOS over a whole split.

    ``process(output, target)`` takes predicted scores ``(B,)`` or ``(B, 1)`` and MOS ``(B,)``;
    ``names`` (image paths or names) are reduced to their basenames. ``evaluate()`` returns
    the ``IQA_METRICS`` (``srcc`` first: the selection metric).
    """

    def __init__(self, cfg, **kwargs) -> None:
        super().__init__(cfg)
        self.reset()

    def reset(self) -> None:
        self._preds: list[float] = []
        self._mos: list[float] = []
        self._names: list[str] = []

    def process(self, mo, gt, names: Optional[Sequence[str]] = None) -> None:
        pred = _to_numpy(mo)
        if pred.ndim == 2 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if pred.ndim != 1:
            raise ValueError(f"IQA evaluator expects scores of shape (B,) or (B, 1), got {pred.shape}")
        mos = _to_numpy(gt).reshape(-1)
        if mos.shape != pred.shape:
            raise ValueError(f"IQA evaluator: {pred.size} predictions but {mos.size} targets")
        if names is None:
            start = len(self._names)
            names = [str(start + i) for i in range(pred.size)]
        elif len(names) != pred.size:
            raise ValueError(f"IQA evaluator: {pred.size} predictions but {len(names)} names")
        self._preds.extend(pred.tolist())
        self._mos.extend(mos.tolist())
        self._names.extend(os.path.basename(str(n)) for n in names)

    def predictions(self) -> list[tuple[str, float, float]]:
        """``(name, mos, pred)`` per processed image, in processing order."""
        return list(zip(self._names, self._mos, self._preds))

    def evaluate(self) -> "OrderedDict[str, float]":
        res = iqa_metrics(self._preds, self._mos)
        print("=> result")
        print(f"* total: {len(self._preds):,}")
        for key, value in res.items():
            print(f"* {IQA_METRICS[key]}: {value:.4f}")
        if len(self._preds) >= 2 and (np.ptp(self._preds) == 0 or np.ptp(self._mos) == 0):
            print("* note: constant predictions or targets, correlations are undefined (nan)")
        return res


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Top-1 accuracy, error rate and macro-F1 (in %) for ``(B, C)`` logits and integer labels."""

    def __init__(self, cfg, lab2cname: Optional[dict] = None, **kwargs) -> None:
        super().__init__(cfg)
        self._lab2cname = lab2cname or {}
        self.reset()

    def reset(self) -> None:
        self._y_true: list[int] = []
        self._y_pred: list[int] = []

    def process(self, mo, gt, names: Optional[Sequence[str]] = None) -> None:
        pred = mo.max(1)[1]
        self._y_pred.extend(pred.cpu().tolist())
        self._y_true.extend(gt.cpu().tolist())

    def evaluate(self) -> "OrderedDict[str, float]":
        from sklearn.metrics import confusion_matrix, f1_score

        y_true, y_pred = np.asarray(self._y_true), np.asarray(self._y_pred)
        total = int(y_true.size)
        correct = int((y_true == y_pred).sum())
        acc = 100.0 * correct / max(total, 1)
        res = OrderedDict(accuracy=acc, error_rate=100.0 - acc,
                          macro_f1=100.0 * f1_score(y_true, y_pred, average="macro",
                                                    labels=np.unique(y_true)) if total else 0.0)
        print("=> result")
        print(f"* total: {total:,}")
        print(f"* correct: {correct:,}")
        print(f"* accuracy: {acc:.1f}%")
        print(f"* error: {100.0 - acc:.1f}%")
        print(f"* macro_f1: {res['macro_f1']:.1f}%")
        if self.cfg.TEST.PER_CLASS_RESULT:
            print("=> per-class result")
            for label in sorted(set(self._y_true)):
                mask = y_true == label
                name = self._lab2cname.get(label, str(label))
                print(f"* class: {label} ({name})\ttotal: {int(mask.sum()):,}\t"
                      f"accuracy: {100.0 * (y_pred[mask] == label).mean():.1f}%")
        if self.cfg.TEST.COMPUTE_CMAT:
            cmat = confusion_matrix(y_true, y_pred, normalize="true")
            path = os.path.join(self.cfg.OUTPUT_DIR, CMAT_FILE)
            torch.save(torch.from_numpy(cmat), path)
            print(f"Confusion matrix is saved to {path}")
        return res
