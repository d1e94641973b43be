"""Figures for image-quality results: prediction-vs-MOS scatter and per-variant box plots.

Drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas, never through ``pyplot``, so
importing this module neither picks nor changes the process-wide matplotlib backend and works
on machines without a display. PNG files are written atomically.

CLI: ``python -m dassl.evaluation.plots OUTPUT_DIR/predictions.csv scatter.png`` draws the
scatter of a run's ``predictions.csv`` (columns ``name,mos,pred``).
"""
from __future__ import annotations

import argparse
import csv
import math
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dassl.evaluation.evaluator import fit_logistic_4, iqa_metrics, logistic_4
from dassl.evaluation.metric_names import CORRELATIONS, RAW_METRICS
from dassl.utils import atomic_write

__all__ = ["scatter_figure", "save_scatter", "save_boxplot", "scatter_from_predictions",
           "format_metrics", "main"]

_DPI = 120


def format_metrics(metrics: Mapping[str, Any], keys: Sequence[str] = RAW_METRICS) -> str:
    """``"SRCC 0.8123  PLCC 0.8340 ..."`` for the ``keys`` present in ``metrics`` (NaN -> nan)."""
    parts = []
    for key in keys:
        if key in metrics:
            value = metrics[key]
            value = float("nan") if value is None else float(value)
            parts.append(f"{key.upper()} {value:.4f}")
    return "  ".join(parts)


def _save_png(fig: Figure, path: str) -> None:
    FigureCanvasAgg(fig)  # attaches an Agg canvas: savefig needs no pyplot or backend choice
    atomic_write(str(path), lambda tmp: fig.savefig(tmp, format="png", dpi=_DPI))


def scatter_figure(pred: Iterable[float], mos: Iterable[float],
                   title_metrics: Optional[Mapping[str, Any]] = None,
                   title: str = "") -> tuple[Figure, dict]:
    """Figure of MOS (y) against prediction (x): the images, the fitted 4-parameter logistic
    curve and the line y = x (where a prediction equals its MOS: predictions on the MOS scale
    lie on it, so a shift or a compressed range is visible at a glance).

    ``pred`` and ``mos``: equal-length 1-D sequences (one value per test image, MOS units).
    ``title_metrics``: the metrics shown in the title (SRCC/PLCC/KRCC/RMSE keys, lower case);
    None computes them with ``iqa_metrics``. ``title``: optional first title line(s) (e.g. the
    run, the selected epoch). Returns (figure, metrics shown). Raises ``ValueError`` for empty
    or mismatched inputs.
    """
    pred = np.asarray(list(pred), dtype=np.float64).reshape(-1)
    mos = np.asarray(list(mos), dtype=np.float64).reshape(-1)
    if pred.shape != mos.shape or pred.size == 0:
        raise ValueError(f"save_scatter needs equal, non-zero numbers of predictions and MOS; "
                         f"got {pred.size} and {mos.size}")
    metrics = dict(iqa_metrics(pred, mos) if title_metrics is None else title_metrics)
    fig = Figure(figsize=(5.5, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(pred, mos, s=10, alpha=0.6, color="tab:blue", edgecolors="none",
               label=f"images (n={pred.size})")
    params = fit_logistic_4(pred, mos)
    if params is not None:
        grid = np.linspace(pred.min(), pred.max(), 200)
        ax.plot(grid, logistic_4(grid, *params), color="tab:red", linewidth=2,
                label="4-parameter logistic fit")
    else:
        # Too few or constant values: say so instead of silently drawing no curve.
        ax.plot([], [], color="tab:red", label="logistic fit not available")
    finite = np.concatenate([pred, mos])
    finite = finite[np.isfinite(finite)]
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        ax.plot([low, high], [low, high], color="0.4", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlabel("prediction")
    ax.set_ylabel("MOS")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    heading = format_metrics(metrics)
    ax.set_title(f"{title}\n{heading}" if title else heading, fontsize=9)
    fig.tight_layout()
    return fig, metrics


def save_scatter(pred: Iterable[float], mos: Iterable[float], path: str,
                 title_metrics: Optional[Mapping[str, Any]] = None, title: str = "") -> dict:
    """Save ``scatter_figure(pred, mos, title_metrics, title)`` as a PNG at ``path``; return the
    metrics shown. Raises ``ValueError`` for empty or mismatched inputs."""
    fig, metrics = scatter_figure(pred, mos, title_metrics, title)
    _save_png(fig, path)
    return metrics


def _rows(table: Any) -> list[dict]:
    """Rows of a pandas DataFrame (duck-typed, no pandas import) or an iterable of mappings."""
    if hasattr(table, "to_dict"):
        return list(table.to_dict("records"))
    return [dict(row) for row in table]


def finite_or_none(value: Any) -> Optional[float]:
    """`value` as a finite float, else None (None, text, NaN, inf)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def y_limits(values: Sequence[float], min_span: float = 0.1) -> tuple[float, float]:
    """Y-axis limits for correlation values (SRCC/PLCC, unitless): the data's range plus 10 %
    padding, widened about its centre to at least ``min_span``.

    Without the floor, one run per group (or seeds that agree to the fourth digit) gives an axis
    spanning ~1e-4 on which rounding-level differences look like large effects. ``values`` must
    not be empty."""
    lo, hi = min(values), max(values)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    if hi - lo < min_span:
        centre = 0.5 * (lo + hi)
        lo, hi = centre - 0.5 * min_span, centre + 0.5 * min_span
    return lo, hi


def save_boxplot(table: Any, path: str, metrics: Sequence[str] = CORRELATIONS[:2],
                 group_by: Sequence[str] = ("dataset", "variant", "protocol"),
                 title: str = "") -> list[str]:
    """Save a PNG with one panel per metric and one box (plus the single runs as dots) per group.

    ``table``: one row per run (DataFrame or iterable of mappings) with the ``metrics`` columns
    and whichever ``group_by`` columns exist. A group's label joins the values of the group
    columns that differ between rows (all columns if none differ), in first-seen order.
    Missing/NaN metric values are left out. Returns the group labels, in plot order. Raises
    ``ValueError`` when no row has a finite value of any metric.
    """
    rows = _rows(table)
    columns = [c for c in group_by if any(c in row for row in rows)]
    varying = [c for c in columns if len({str(row.get(c)) for row in rows}) > 1] or columns
    labels: list[str] = []
    values: dict[str, dict[str, list[float]]] = {m: {} for m in metrics}
    for row in rows:
        label = "\n".join(str(row.get(c, "")) for c in varying) or "all runs"
        if label not in labels:
            labels.append(label)
        for metric in metrics:
            value = finite_or_none(row.get(metric))
            if value is not None:
                values[metric].setdefault(label, []).append(value)
    if not any(values[m] for m in metrics):
        raise ValueError(f"save_boxplot: no finite {list(metrics)} value in {len(rows)} row(s)")
    fig = Figure(figsize=(max(5.0, 1.2 * len(labels) * len(metrics) + 1.5), 4.5))
    rng = np.random.default_rng(0)  # fixed jitter: the same table gives the same picture
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        data = [values[metric].get(label, []) for label in labels]
        positions = [k + 1 for k, d in enumerate(data) if d]
        if positions:
            # Fliers off: every run is drawn as a dot anyway.
            ax.boxplot([d for d in data if d], positions=positions, widths=0.5, showmeans=True,
                       showfliers=False)
        for pos, d in zip(positions, (d for d in data if d)):
            ax.scatter(pos + rng.uniform(-0.12, 0.12, len(d)), d, s=12, alpha=0.7,
                       color="tab:blue", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1))
        ax.set_xticklabels([f"{label}\n(n={len(d)})" for label, d in zip(labels, data)],
                           fontsize=7)
        ax.set_xlim(0.4, len(labels) + 0.6)
        if positions:
            ax.set_ylim(*y_limits([v for d in data for v in d]))
        ax.set_title(metric.upper())
        ax.grid(True, axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_png(fig, path)
    return labels


def scatter_from_predictions(csv_path: str, png_path: str, title: str = "") -> dict:
    """``save_scatter`` for a ``predictions.csv`` with header ``name,mos,pred``."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"mos", "pred"} <= set(reader.fieldnames):
            raise ValueError(f"{csv_path} must have columns name,mos,pred; "
                             f"it has {reader.fieldnames}")
        rows = list(reader)
    return save_scatter([r["pred"] for r in rows], [r["mos"] for r in rows], png_path,
                        title=title)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dassl.evaluation.plots",
                                     description="Scatter plot of a run's predictions.csv")
    parser.add_argument("predictions", help="predictions.csv (columns name,mos,pred)")
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--title", default="", help="first title line")
    args = parser.parse_args(argv)
    metrics = scatter_from_predictions(args.predictions, args.output, args.title)
    print(f"{args.output}: {format_metrics(metrics)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
