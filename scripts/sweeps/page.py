"""A sweep's ``OUTPUT/report.html``: one offline page (``dassl.evaluation.html_page``) beside its
tables: the medians of ``summary.csv``, the per-generator medians of ``generators.csv``, the
box plots (``boxplot.png``, embedded) and a link to each run's own ``report.html`` (relative,
so the sweep folder can be moved or copied as a whole).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from dassl.evaluation.html_page import escape, link, number, page, png_file_img, table
from dassl.evaluation.metric_names import GROUP_METRICS, IQA_METRICS
from dassl.utils import atomic_write_text

from dassl.utils.run_dir import REPORT_FILE as RUN_REPORT

from .tables import GROUP_COLUMNS, SUMMARY_METRICS

__all__ = ["SWEEP_REPORT", "write_sweep_page"]

SWEEP_REPORT = RUN_REPORT  # one page name for runs and sweeps
RUN_ID_COLUMNS = GROUP_COLUMNS + ("split_seed", "seed")


def _summary_section(summary: pd.DataFrame) -> str:
    headers = [*GROUP_COLUMNS, "runs", *[f"{IQA_METRICS[m]} median" for m in SUMMARY_METRICS]]
    rows = [[*(escape(row[c]) for c in GROUP_COLUMNS),
             escape(f"{row['n']}" + (f" (+{row['n_missing']} missing)" if row["n_missing"]
                                     else "")),
             *(number(row[f"{m}_median"], kind=f"median-{m}") for m in SUMMARY_METRICS)]
            for row in summary.to_dict("records")]
    return table(headers, rows, text_columns=len(GROUP_COLUMNS), table_id="summary")


def _generator_section(generators: pd.DataFrame) -> str:
    if generators.empty:
        return '<p class="note">No run gives results per generator.</p>'
    rows = [[*(escape(row[c]) for c in (*GROUP_COLUMNS, "generator")), escape(row["n"]),
             number(row["n_images"], 1),
             *[number(row[f"{m}_median"], kind=f"gen-{m}-median") for m in GROUP_METRICS]]
            for row in generators.to_dict("records")]
    return table([*GROUP_COLUMNS, "generator", "runs", "images per run",
                  *[f"{IQA_METRICS[m]} median" for m in GROUP_METRICS]], rows,
                 text_columns=len(GROUP_COLUMNS) + 1, table_id="generators")


def _runs_section(results: pd.DataFrame, output: Path) -> str:
    rows = []
    for row in results.to_dict("records"):
        run_page = Path(row["output_dir"]) / RUN_REPORT
        if row["status"] == "done" and run_page.is_file():
            cell = link(os.path.relpath(run_page, output), "report")
        else:
            cell = escape(row["status"] if row["status"] != "done" else "no page")
        rows.append([*(escape(row[c]) for c in RUN_ID_COLUMNS), cell,
                     *[number(row[m], kind=f"run-{m}") for m in GROUP_METRICS]])
    return table([*RUN_ID_COLUMNS, "page", *[IQA_METRICS[m] for m in GROUP_METRICS]], rows,
                 text_columns=len(RUN_ID_COLUMNS) + 1, table_id="runs")


def write_sweep_page(output: Path, results: pd.DataFrame, summary: pd.DataFrame,
                     generators: pd.DataFrame, boxplot: Path | None,
                     title: str = "Sweep") -> Path:
    """Write ``output/report.html`` from the sweep's tables (``results.csv``, ``summary.csv``,
    ``generators.csv`` as DataFrames) and its box plot file; return the path."""
    image = png_file_img(str(boxplot), "box plots") if boxplot else None
    sections: Sequence[tuple[str, str]] = [
        ("Medians", _summary_section(summary)
         + '<p class="note">Test-split metrics of the selected models; medians over seeds x '
           "split seeds (summary.csv has means and spreads).</p>"),
        ("Per generator", _generator_section(generators)),
        ("Box plots", image or '<p class="note">No finished run with finite SRCC/PLCC.</p>'),
        ("Runs", _runs_section(results, output)),
    ]
    done = int((results["status"] == "done").sum())
    intro = f"{done} of {len(results)} runs done; folder <code>{escape(output)}</code>"
    path = output / SWEEP_REPORT
    atomic_write_text(str(path), page(title, sections, intro))
    return path
