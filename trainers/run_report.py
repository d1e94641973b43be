"""A run's `report.html`: one offline page (`dassl.evaluation.html_page`) written beside
`results.json` by every finished run and every eval-only run.

In order: the final metrics (SRCC, PLCC, KRCC, RMSE) with the paper's numbers beside them where
the database, task, backbone and protocol are the paper's (`configs/paper_results.yaml`, the one
source); per-epoch curves from the run's TensorBoard events (training loss and learning rate;
test/val SRCC and PLCC where every epoch was tested; an eval-only run reads the trained run's);
the run's `scatter.png` (predicted vs MOS); the per-generator table (`results.json` `final.per_generator`);
the images predicted worst (thumbnails, MOS, prediction); the learned level prompts read
zero-shot (`CustomCLIP.level_probabilities`: per level word, the mean probability by MOS band).
"""
from __future__ import annotations

import functools
import glob
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import yaml
from matplotlib.figure import Figure

from dassl.evaluation.html_page import (escape, figure_img, number, page, png_file_img, table,
                                        thumbnail_img)
from dassl.evaluation.metric_names import GROUP_METRICS, IQA_METRICS, RAW_METRICS
from dassl.utils import atomic_write_text
from dassl.utils.run_dir import REPORT_FILE, SCATTER_FILE

__all__ = ["PAPER_RESULTS", "paper_results", "paper_row", "read_curves",
           "mos_bands", "write_run_report"]

PAPER_RESULTS = Path(__file__).resolve().parents[1] / "configs" / "paper_results.yaml"
SHOWN_METRICS = RAW_METRICS
N_WORST = 8  # images shown as predicted worst
N_BANDS = 5  # MOS bands (equal numbers of test images) of the zero-shot table


@functools.lru_cache(maxsize=1)
def paper_results() -> dict:
    """`configs/paper_results.yaml` as a dict (`protocol`, `backbone`, `results` rows)."""
    with open(PAPER_RESULTS, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def paper_row(results: dict) -> Optional[dict]:
    """The paper's row for a run's `results` (results.json) when its dataset, task, backbone and
    protocol (a trained run whose model was selected on the test split) are the paper's."""
    paper = paper_results()
    selected = results.get("selected") or {}
    if (results.get("mode") != "train" or results.get("backbone") != paper["backbone"]
            or selected.get("selected_on") != "test" or results.get("final_model") != "best_val"):
        return None
    for row in paper["results"]:
        if row["dataset"] == results.get("dataset") and row["task"] == results.get("task"):
            return row
    return None


def read_curves(run_dir: str) -> dict[str, dict[int, float]]:
    """`{tag: {step: value}}` of the scalars in `run_dir/tensorboard/` (every events file, in
    name order, so a resumed run's later value of a step wins); `{}` without events."""
    files = sorted(glob.glob(os.path.join(run_dir, "tensorboard", "events.out.tfevents.*")))
    if not files:
        return {}
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    curves: dict[str, dict[int, float]] = {}
    for path in files:
        for event in EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalar = value.simple_value
                elif value.HasField("tensor") and value.tensor.float_val:
                    scalar = value.tensor.float_val[0]
                else:
                    continue
                curves.setdefault(value.tag, {})[int(event.step)] = float(scalar)
    return curves


def _per_epoch(series: dict[int, float], n_epochs: int) -> tuple[list[int], list[float]]:
    """Iteration-step scalars -> the value at each epoch's last step (the epoch's running mean
    for the loss), epochs 1-based; the steps per epoch are the steps / `n_epochs`."""
    steps = max(series) + 1
    per_epoch = max(steps // max(n_epochs, 1), 1)
    epochs, values = [], []
    for epoch in range(1, steps // per_epoch + 1):
        step = epoch * per_epoch - 1
        if step in series:
            epochs.append(epoch)
            values.append(series[step])
    return epochs, values


def _curves_section(curves: dict[str, dict[int, float]], n_epochs: int) -> str:
    if "train/loss" not in curves:
        return '<p class="note">No training curves: the run has no TensorBoard events.</p>'
    fig = Figure(figsize=(10, 3.2))
    loss_ax, lr_ax, test_ax = (fig.add_subplot(1, 3, i) for i in (1, 2, 3))
    for ax, tag, label in ((loss_ax, "train/loss", "training loss"),
                           (lr_ax, "train/lr", "learning rate")):
        if tag in curves:
            epochs, values = _per_epoch(curves[tag], n_epochs)
            ax.plot(epochs, values, marker=".")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
    first = GROUP_METRICS[0]
    tested = [s for s in ("test", "val") if f"{s}/{first}" in curves
              and len(curves[f"{s}/{first}"]) >= n_epochs > 1]
    for split in tested:
        for metric in GROUP_METRICS:
            series = curves.get(f"{split}/{metric}", {})
            steps = sorted(s for s in series if s < n_epochs)
            ax_values = [series[s] for s in steps]
            test_ax.plot([s + 1 for s in steps], ax_values, marker=".",
                         label=f"{split} {IQA_METRICS[metric]}")
    if tested:
        test_ax.legend(fontsize=8)
        test_ax.set_title("per-epoch evaluation", fontsize=9)
    else:
        test_ax.set_axis_off()
        test_ax.text(0.5, 0.5, "not tested every epoch", ha="center", va="center")
    test_ax.set_xlabel("epoch")
    fig.tight_layout()
    return figure_img(fig, "per-epoch curves")


def _metrics_section(results: dict) -> str:
    metrics = results["final"]["metrics"]
    paper = paper_row(results)
    headers = ["", *[IQA_METRICS[m] for m in SHOWN_METRICS]]
    rows = [["this run", *[number(metrics.get(m), kind=f"run-{m}") for m in SHOWN_METRICS]]]
    if paper is not None:
        rows.append(["paper", *[number(paper.get(m), kind=f"paper-{m}") if m in paper else "-"
                                for m in SHOWN_METRICS]])
        note = (f"Paper: CLIP-AGIQA (Tang et al., ICPR 2024), {escape(paper['label'])}; "
                f"protocol: {escape(paper_results()['protocol'])}.")
    else:
        note = ("The paper's numbers are shown for a trained run of the paper's database, task, "
                "backbone and protocol only.")
    return table(headers, rows, table_id="metrics") + f'<p class="note">{note}</p>'


def _generator_section(results: dict) -> str:
    generators = results["final"].get("per_generator")
    if not generators:
        return '<p class="note">The database gives no generator for these images.</p>'
    rows = [[escape(name), *[number(entry[m], kind=f"gen-{m}") for m in GROUP_METRICS],
             escape(entry["n_images"])] for name, entry in generators.items()]
    return table(["generator", *[IQA_METRICS[m] for m in GROUP_METRICS], "images"], rows,
                 table_id="per-generator")


def _worst_section(rows: Sequence[tuple[str, float, float]],
                   paths: Optional[Sequence[str]]) -> str:
    errors = np.abs(np.asarray([r[2] - r[1] for r in rows], dtype=np.float64))
    worst = np.argsort(-errors, kind="stable")[:N_WORST]
    figures, missing = [], 0
    for index in worst:
        name, mos, pred = rows[index]
        image = thumbnail_img(paths[index], name) if paths else None
        if image is None:
            missing += 1
            image = '<div class="note">image not on disk</div>'
        figures.append(f"<figure>{image}<figcaption>{escape(name)}<br>MOS "
                       f"{number(mos, 3)} prediction {number(pred, 3)}</figcaption></figure>")
    note = (f'<p class="note">{missing} of these images are no longer on disk.</p>'
            if missing else "")
    return f'<div class="thumbs">{"".join(figures)}</div>{note}'


def mos_bands(mos: np.ndarray, n_bands: int = N_BANDS) -> list[np.ndarray]:
    """Indices of the test images in `n_bands` MOS bands of (nearly) equal size, lowest MOS
    first (ties ordered by position)."""
    order = np.argsort(mos, kind="stable")
    return [band for band in np.array_split(order, min(n_bands, len(order))) if band.size]


def _levels_section(rows: Sequence[tuple[str, float, float]], probabilities: Optional[Any],
                    level_names: Sequence[str]) -> str:
    if probabilities is None or len(probabilities) != len(rows) or not len(rows):
        return '<p class="note">No level probabilities were recorded for this test.</p>'
    probabilities = np.asarray(probabilities, dtype=np.float64)
    mos = np.asarray([r[1] for r in rows], dtype=np.float64)
    table_rows = []
    for band in mos_bands(mos):
        label = f"{mos[band].min():.3f} - {mos[band].max():.3f}"
        means = probabilities[band].mean(axis=0)
        table_rows.append([escape(label), escape(band.size),
                           *[number(p, 3, kind="level-prob") for p in means]])
    return (table(["MOS band", "images", *level_names], table_rows, table_id="levels")
            + '<p class="note">Mean probability of each level word: softmax over the levels of '
              "CLIP's logit scale times the cosine similarity of the image and each learned "
              "level prompt (zero-shot reading), by MOS band of the test images.</p>")


def _scatter_section(output_dir: str) -> str:
    """The run's own `scatter.png` embedded as it is (drawn once, by `dassl.evaluation.plots`:
    the logistic fit, y = x and the title naming the split and the selected epoch)."""
    img = png_file_img(os.path.join(output_dir, SCATTER_FILE), "predicted vs MOS")
    return img or f'<p class="note">The run has no {escape(SCATTER_FILE)} (it could not be drawn).</p>'


def write_run_report(output_dir: str, results: dict, rows: Sequence[tuple[str, float, float]],
                     image_paths: Optional[Sequence[str]] = None,
                     level_probabilities: Optional[Any] = None,
                     curves_dir: Optional[str] = None, n_epochs: int = 0) -> str:
    """Write `output_dir/report.html` and return its path.

    `results`: the run's results.json dict; `rows`: `(name, mos, pred)` of predictions.csv;
    `image_paths`: each row's image file (thumbnails of the worst); `level_probabilities`:
    `(len(rows), n_levels)`; `curves_dir`: the run folder whose `tensorboard/` holds the
    curves (the run itself, or the trained run of an eval-only run); `n_epochs`: its epochs.
    """
    final = results["final"]
    title = (f"{results.get('dataset')} {results.get('task') or ''} - "
             f"{'training run' if results.get('mode') == 'train' else 'evaluation'}")
    intro = (f"{escape(final.get('n_images'))} images of the {escape(final.get('split'))} split; "
             f"backbone {escape(results.get('backbone'))}; folder "
             f"<code>{escape(results.get('output_dir'))}</code>")
    sections = [("Final metrics", _metrics_section(results))]
    curves = read_curves(curves_dir) if curves_dir else {}
    sections.append(("Per-epoch curves", _curves_section(curves, n_epochs)))
    sections.append(("Predicted vs MOS", _scatter_section(output_dir) if rows else
                     '<p class="note">No test images.</p>'))
    sections.append(("Per generator", _generator_section(results)))
    sections.append(("Images predicted worst", _worst_section(rows, image_paths) if rows else
                     '<p class="note">No test images.</p>'))
    sections.append(("Level prompts read zero-shot",
                     _levels_section(rows, level_probabilities, results.get("level_names", []))))
    text = page(" ".join(title.split()), sections, intro)
    path = os.path.join(output_dir, REPORT_FILE)
    atomic_write_text(path, text)
    return path
