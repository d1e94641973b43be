"""Mapping of MOS values to discrete quality levels (the class names the prompts use).

Levels are half-open bins over the MOS axis: with thresholds ``t_0 < t_1 < ... < t_{K-2}`` and
``K`` level names, a MOS ``m`` gets level ``k`` iff ``t_{k-1} <= m < t_k`` (``t_{-1} = -inf``,
``t_{K-1} = +inf``). Unlike upstream, negative MOS fall into level 0 rather than the top level,
and NaN is rejected instead of being sent to the top level.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import DatasetError

__all__ = ["validate_levels", "mos_to_levels", "resolve_thresholds", "quantile_thresholds"]


def validate_levels(names: Sequence[str],
                    thresholds: Sequence[float]) -> tuple[list[str], list[float]]:
    """Check level names and thresholds; return them as plain lists.

    Requirements: at least two unique, non-empty names; ``len(thresholds) == len(names) - 1``;
    thresholds finite and strictly increasing. Raises ``DatasetError`` naming the offending value.
    """
    names = [str(n) for n in names]
    if len(names) < 2:
        raise DatasetError(f"DATASET.LEVEL_NAMES needs at least 2 level names, got {names}")
    if any(not n.strip() for n in names):
        raise DatasetError(f"DATASET.LEVEL_NAMES contains an empty name: {names}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetError(f"DATASET.LEVEL_NAMES contains duplicates {dup}: {names}")
    try:
        values = [float(t) for t in thresholds]
    except (TypeError, ValueError) as exc:
        raise DatasetError(
            f"DATASET.LEVEL_THRESHOLDS must be numbers, got {list(thresholds)}"
        ) from exc
    if len(values) != len(names) - 1:
        raise DatasetError(
            f"DATASET.LEVEL_THRESHOLDS must have len(LEVEL_NAMES) - 1 = {len(names) - 1} values "
            f"(one cut point between neighbouring levels), got {len(values)}: {values}"
        )
    for i, t in enumerate(values):
        if not math.isfinite(t):
            raise DatasetError(f"DATASET.LEVEL_THRESHOLDS[{i}] is not finite: {values}")
        if i and t <= values[i - 1]:
            raise DatasetError(
                "DATASET.LEVEL_THRESHOLDS must be strictly increasing, but "
                f"[{i - 1}]={values[i - 1]} >= [{i}]={t}: {values}"
            )
    return names, values


def resolve_thresholds(configured: Sequence[float], default: Sequence[float]) -> list[float]:
    """Return the configured thresholds, or the dataset/task default when none are configured.

    Values are passed through unchanged; ``validate_levels`` checks and converts them.
    """
    return list(configured) if len(configured) else list(default)


def mos_to_levels(mos: Sequence[float] | np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Map MOS values ``(N,)`` to level indices ``(N,)`` int64 in ``[0, len(thresholds)]``.

    ``thresholds`` must already be validated (strictly increasing). NaN raises ``DatasetError``
    naming the first offending position.
    """
    values = np.asarray(mos, dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values))
    if bad.size:
        raise DatasetError(f"MOS is NaN at position {int(bad[0])} ({bad.size} NaN values in total)")
    # side="right" makes a value equal to a cut point belong to the upper level (half-open bins).
    cuts = np.asarray(thresholds, dtype=np.float64)
    return np.searchsorted(cuts, values, side="right").astype(np.int64)


def quantile_thresholds(mos: Sequence[float] | np.ndarray, n_levels: int) -> list[float]:
    """The ``n_levels``-quantiles of ``mos`` (``(N,)``, MOS units): cut points at
    ``k / n_levels`` for ``k = 1 .. n_levels - 1``, numpy's linear interpolation.

    The rule for databases without published level thresholds: with six levels these are the
    sextiles of the training split's MOS, which the original AGIQA-3K cut points approximate.
    Raises ``DatasetError`` when there are too few MOS or they tie, so that two cut points
    coincide (then ``DATASET.LEVEL_THRESHOLDS`` must be given).
    """
    values = np.asarray(mos, dtype=np.float64)
    if values.size < n_levels:
        raise DatasetError(f"cannot derive {n_levels - 1} level thresholds from {values.size} "
                           "training MOS: set DATASET.LEVEL_THRESHOLDS")
    cuts = np.quantile(values, np.arange(1, n_levels) / n_levels).tolist()
    if any(b <= a for a, b in zip(cuts, cuts[1:])):
        raise DatasetError(f"the training MOS quantiles {cuts} are not strictly increasing (tied "
                           "MOS): set DATASET.LEVEL_THRESHOLDS")
    return [float(c) for c in cuts]
