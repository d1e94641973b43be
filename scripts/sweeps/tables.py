"""Sweep tables from the runs' ``results.json`` files (never from logs).

``results.csv``: one row per planned run (``RESULT_COLUMNS``): its identity, ``status``
("done" or "missing"), the selected model's epoch, selection split and test metrics (bare
metric names), the last epoch's (``last_`` prefix) and where its data came from (split index,
label and split files as ``path@sha256``, from results.json's ``data``). ``summary.csv``: one row per dataset x
variant x protocol over the done runs (all seeds and split seeds): ``n``, ``n_missing`` and
``<metric>_median``, ``_mean``, ``_std`` (sample std, ddof 1; NaN when n < 2) of SRCC, PLCC,
KRCC, RMSE. A NaN metric of a run (e.g. constant predictions) propagates to its group's
mean/median/std instead of being silently dropped. ``generators.csv``: one row per dataset x
variant x protocol x generator (results.json ``final.per_generator`` of the done runs):
``n`` runs, ``n_images`` per run (median) and ``srcc_median``, ``plcc_median`` (NaN where a run
had too few images of the generator for a correlation: such runs are counted, not dropped).
"""
from __future__ import annotations

import math
import os
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import pandas as pd
from tabulate import tabulate

from dassl.evaluation.metric_names import GROUP_METRICS, IQA_METRICS, RAW_METRICS
from dassl.utils import atomic_write_text

__all__ = ["METRICS", "SUMMARY_METRICS", "GROUP_COLUMNS", "RESULT_COLUMNS", "result_row",
           "results_table", "summary_table", "format_summary", "write_csv", "GENERATOR_COLUMNS",
           "generator_summary"]

METRICS = tuple(IQA_METRICS)
SUMMARY_METRICS = RAW_METRICS
GROUP_COLUMNS = ("dataset", "variant", "protocol")
ID_COLUMNS = GROUP_COLUMNS + ("split_seed", "seed")
RESULT_COLUMNS = (ID_COLUMNS + ("status", "output_dir", "final_model", "selected_on",
                                "selected_epoch") + METRICS + ("last_epoch",)
                  + tuple(f"last_{m}" for m in METRICS)
                  + ("split_index", "label_files", "split_files"))


def _file_list(records: Any) -> Optional[str]:
    """``path@sha256;...`` of results.json file records (provenance columns), None if none."""
    if not isinstance(records, list) or not records:
        return None
    return ";".join(f"{r.get('path')}@{r.get('sha256')}" for r in records
                    if isinstance(r, Mapping))


def number(value: Any) -> float:
    """JSON metric -> float; null (NaN written by train.py) and junk -> NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def result_row(ids: Mapping[str, Any], output_dir: str, results: Optional[dict]) -> dict:
    """One ``results.csv`` row; ``results`` is a complete results.json dict or None (missing)."""
    row = {c: ids[c] for c in ID_COLUMNS}
    row.update(status="missing" if results is None else "done", output_dir=str(output_dir))
    row.update({c: None for c in RESULT_COLUMNS if c not in row})
    if results is None:
        return row
    selected, last = results["selected"], results["last"]
    row.update(final_model=results.get("final_model"), selected_on=selected.get("selected_on"),
               selected_epoch=selected.get("epoch"), last_epoch=last.get("epoch"))
    for metric in METRICS:
        row[metric] = number(selected["metrics"].get(metric))
        row[f"last_{metric}"] = number(last["metrics"].get(metric))
    data = results.get("data") if isinstance(results.get("data"), Mapping) else {}
    split = data.get("split") if isinstance(data.get("split"), Mapping) else {}
    row.update(split_index=split.get("index"), label_files=_file_list(data.get("label_files")),
               split_files=_file_list(split.get("files")))
    return row


def results_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(RESULT_COLUMNS))


def metric_statistics(values: np.ndarray) -> dict[str, float]:
    """Median, mean and sample std of one metric over the done runs of a group (NaN if empty;
    std needs two runs). np.median/mean propagate NaN, where pandas would skip a broken run."""
    return {"median": float(np.median(values)) if values.size else math.nan,
            "mean": float(np.mean(values)) if values.size else math.nan,
            "std": float(np.std(values, ddof=1)) if values.size > 1 else math.nan}


def _group_table(results: pd.DataFrame, keys: list[str], metrics: Iterable[str],
                 statistics: tuple[str, ...]) -> pd.DataFrame:
    """One row per ``keys`` group, in first-seen order: ``n`` done runs, ``n_missing`` others,
    and ``<metric>_<statistic>`` over the done runs."""
    metrics = list(metrics)
    rows = []
    for key, group in results.groupby(keys, sort=False):
        done = group[group["status"] == "done"]
        row: dict[str, Any] = dict(zip(keys, key))
        row.update(n=len(done), n_missing=len(group) - len(done))
        for metric in metrics:
            stats = metric_statistics(done[metric].to_numpy(dtype=np.float64))
            row.update({f"{metric}_{s}": stats[s] for s in statistics})
        rows.append(row)
    columns = keys + ["n", "n_missing"] + [f"{m}_{s}" for m in metrics for s in statistics]
    return pd.DataFrame(rows, columns=columns)


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, variant, protocol), in first-seen order: counts and metric statistics."""
    return _group_table(results, list(GROUP_COLUMNS), SUMMARY_METRICS, ("median", "mean", "std"))


GENERATOR_COLUMNS = GROUP_COLUMNS + ("generator", "n", "n_images") + tuple(
    f"{m}_median" for m in GROUP_METRICS)


def generator_summary(groups: Iterable[tuple[Mapping[str, Any], Optional[dict]]]) -> pd.DataFrame:
    """``generators.csv`` (see the module docstring) from ``(ids, results.json or None)`` pairs
    of the planned runs, groups and generators in first-seen order."""
    collected: dict[tuple, dict[str, list]] = {}
    for ids, results in groups:
        table = ((results or {}).get("final") or {}).get("per_generator") or {}
        for generator, entry in table.items():
            key = tuple(ids[c] for c in GROUP_COLUMNS) + (generator,)
            values = collected.setdefault(key, {m: [] for m in (*GROUP_METRICS, "n_images")})
            for name in values:
                values[name].append(number(entry.get(name)))
    rows = [dict(zip(GROUP_COLUMNS + ("generator",), key), n=len(v["n_images"]),
                 n_images=float(np.median(v["n_images"])),
                 **{f"{m}_median": float(np.median(v[m])) for m in GROUP_METRICS})
            for key, v in collected.items()]
    return pd.DataFrame(rows, columns=list(GENERATOR_COLUMNS))


def _cell(row: Mapping[str, Any], metric: str) -> str:
    median, mean, std = (row[f"{metric}_{s}"] for s in ("median", "mean", "std"))
    if row["n"] == 0:
        return "-"
    spread = f"±{std:.4f}" if math.isfinite(std) else ""
    return f"{median:.4f} ({mean:.4f}{spread})"


def format_summary(summary: pd.DataFrame) -> str:
    """Console table: one line per group, each metric as ``median (mean±std)``."""
    headers = ["dataset", "variant", "protocol", "n"] + [m.upper() for m in SUMMARY_METRICS]
    lines = []
    for row in summary.to_dict("records"):
        n = f"{row['n']}" + (f" (+{row['n_missing']} missing)" if row["n_missing"] else "")
        lines.append([row["dataset"], row["variant"], row["protocol"], n]
                     + [_cell(row, m) for m in SUMMARY_METRICS])
    table = tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)
    return table + "\nmetrics: median (mean±std) over seeds x split seeds; test split"


def write_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``table`` without index (floats round-trip exactly), atomically."""
    atomic_write_text(str(path), table.to_csv(index=False))


# ----------------------------------------------------------------------------- cross-database
# The cross table shows SRCC / PLCC, and RMSE where the MOS scales agree (KRCC left out).
CROSS_METRICS = tuple(name for name in RAW_METRICS if name != "krcc")
CROSS_COLUMNS = (("train_dataset", "test_dataset", "variant", "protocol", "split", "seed",
                  "status", "n_images") + CROSS_METRICS
                 + ("scales_agree", "train_mos_min", "train_mos_max", "test_mos_min",
                    "test_mos_max", "output_dir"))
# Two MOS ranges share a scale when they overlap over at least this fraction of the shorter
# one: AGIQA-3K / AGIQA-1K / AIGIQA-20K (about 0..5) agree, AIGCIQA2023 (about 27..74) does not.
SCALE_OVERLAP = 0.5


def scales_agree(a: Optional[list], b: Optional[list]) -> bool:
    """Whether the MOS ranges ``[min, max]`` ``a`` and ``b`` are on one scale (see
    ``SCALE_OVERLAP``); False when either is unknown."""
    if not a or not b:
        return False
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    shorter = min(a[1] - a[0], b[1] - b[0])
    return shorter > 0 and overlap >= SCALE_OVERLAP * shorter


def cross_row(ids: Mapping[str, Any], output_dir: str, metrics_block: Optional[dict],
              train_range: Optional[list], test_range: Optional[list]) -> dict:
    """One ``cross.csv`` row; ``metrics_block`` is the tested block of results.json
    (``selected`` of the training run on the diagonal, ``final`` of the eval-only run
    elsewhere), None when the run is missing. RMSE is NaN unless the MOS scales agree."""
    row: dict[str, Any] = {c: None for c in CROSS_COLUMNS}
    row.update(ids, output_dir=str(output_dir),
               status="missing" if metrics_block is None else "done")
    if metrics_block is None:
        return row
    agree = scales_agree(train_range, test_range)
    metrics = metrics_block.get("metrics") or {}
    row.update({name: number(metrics.get(name)) for name in CROSS_METRICS},
               n_images=metrics_block.get("n_images"), scales_agree=agree)
    if not agree:
        row["rmse"] = math.nan
    for name, values in (("train", train_range), ("test", test_range)):
        if values:
            row[f"{name}_mos_min"], row[f"{name}_mos_max"] = values
    return row


def cross_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Median SRCC/PLCC/RMSE over seeds and splits per variant x protocol x A x B (done runs).
    RMSE stays NaN where the scales disagree."""
    keys = ["variant", "protocol", "train_dataset", "test_dataset"]
    return _group_table(rows, keys, CROSS_METRICS, ("median",))


def format_cross(summary: pd.DataFrame) -> str:
    """One A x B matrix per variant x protocol; cells ``SRCC / PLCC`` (``/ RMSE`` where the
    MOS scales agree), medians over seeds and splits."""
    blocks = []
    for (variant, protocol), group in summary.groupby(["variant", "protocol"], sort=False):
        trained = list(dict.fromkeys(group["train_dataset"]))
        tested = list(dict.fromkeys(list(group["train_dataset"]) + list(group["test_dataset"])))
        cells = {(r["train_dataset"], r["test_dataset"]): r for r in group.to_dict("records")}
        lines = []
        for a in trained:
            line = [a]
            for b in tested:
                r = cells.get((a, b))
                if r is None or r["n"] == 0:
                    line.append("-")
                    continue
                text = f"{r['srcc_median']:.4f} / {r['plcc_median']:.4f}"
                if math.isfinite(r["rmse_median"]):
                    text += f" / {r['rmse_median']:.4f}"
                line.append(text)
            lines.append(line)
        headers = [f"{variant}, {protocol}: trained on \\ tested on"] + tested
        blocks.append(tabulate(lines, headers=headers, tablefmt="github",
                               disable_numparse=True))
    note = ("cells: SRCC / PLCC [/ RMSE], medians over seeds x splits. Diagonal: the database's "
            "own test split; elsewhere: the row's run tested on ALL of the column's database. "
            "RMSE only where the MOS scales agree (training vs tested MOS range overlap; e.g. "
            "AGIQA-3K is 0-5, AIGCIQA2023 about 27-74: no RMSE between them).")
    return "\n\n".join(blocks) + "\n" + note
