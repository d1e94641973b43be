"""Cross-seed summary of one main.sh experiment: per metric the mean, the sample std and each
seed's value of the selected epoch (results.json ``selected``), read from each seed's folder.

    python scripts/seeds_summary.py SEED_DIR [SEED_DIR ...] [--output DIR]

Writes ``DIR/seeds_summary.csv`` (columns ``metric, n, mean, std, seed<S>...``; one row per
metric of ``dassl/evaluation/metric_names.py``, then ``selected_epoch``) and
``DIR/seeds_summary.json`` (the same numbers, NaN as null, seeds and folders), DIR defaulting to the folder
holding the first SEED_DIR; prints the table. A seed folder without a finished training
``results.json`` is named on stderr and left out (``n`` counts the seeds used); none at all is
one ``error:`` line, exit 2. std is the sample std (ddof 1), empty with one seed; a null metric
(NaN) of a seed makes its mean and std NaN rather than being dropped (``scripts/sweeps/tables``).
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python scripts/seeds_summary.py`
    sys.path.insert(0, str(REPO))



def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python scripts/seeds_summary.py``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seed_dirs", nargs="+", help="the seeds' run folders (OUTPUT_DIR of each)")
    parser.add_argument("--output", default=None,
                        help="folder for seeds_summary.csv/.json (default: the first seed "
                             "folder's parent)")
    return parser


# --help answers before torch (imported by dassl.utils) loads.
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args(sys.argv[1:])

import numpy as np  # noqa: E402

from dassl.evaluation.metric_names import IQA_METRICS  # noqa: E402
from dassl.utils import (EXIT_USER_ERROR, USER_ERRORS, atomic_write_text, report_user_error,  # noqa: E402
                         write_json)
from dassl.utils.run_dir import read_results  # noqa: E402
from scripts.sweeps.tables import metric_statistics, number  # noqa: E402

CSV_NAME = "seeds_summary.csv"
JSON_NAME = "seeds_summary.json"
EPOCH_ROW = "selected_epoch"


def selected_block(seed_dir: str) -> Optional[dict]:
    """``{seed, epoch, metrics}`` of a finished training run's selected model, else None."""
    results = read_results(seed_dir)
    if results is None or results.get("mode") != "train" or not isinstance(results.get("selected"), dict):
        return None
    selected = results["selected"]
    seed = results.get("seed")
    if seed is None:
        seed = os.path.basename(os.path.normpath(seed_dir)).removeprefix("seed")
    return {"seed": str(seed), "epoch": selected.get("epoch"),
            "metrics": {m: number((selected.get("metrics") or {}).get(m)) for m in IQA_METRICS}}


def summarise(blocks: Sequence[dict]) -> list[dict[str, Any]]:
    """One row per metric (then the selected epoch): ``metric, n, mean, std, seed<S>...``."""
    rows = []
    for metric in (*IQA_METRICS, EPOCH_ROW):
        values = [number(b["epoch"]) if metric == EPOCH_ROW else b["metrics"][metric] for b in blocks]
        stats = metric_statistics(np.asarray(values, dtype=np.float64))
        row: dict[str, Any] = {"metric": metric, "n": len(values), "mean": stats["mean"],
                               "std": stats["std"]}
        row.update({f"seed{b['seed']}": v for b, v in zip(blocks, values)})
        rows.append(row)
    return rows


def _text(value: Any) -> str:
    """CSV cell: floats in full precision (repr), NaN as an empty cell."""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    """NaN as null, as results.json writes it."""
    return None if isinstance(value, float) and math.isnan(value) else value


def summary_csv(rows: Sequence[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(rows[0]))
    for row in rows:
        writer.writerow([_text(v) for v in row.values()])
    return out.getvalue()


def format_table(rows: Sequence[dict]) -> str:
    """Console lines: ``metric  mean ± std  (seed S: value, ...)``."""
    lines = []
    for row in rows:
        seeds = ", ".join(f"{k[4:]}: {v:.4f}" if row["metric"] != EPOCH_ROW else f"{k[4:]}: {v:g}"
                          for k, v in row.items() if k.startswith("seed"))
        spread = f" ± {row['std']:.4f}" if math.isfinite(row["std"]) else ""
        lines.append(f"{row['metric']:<14} {row['mean']:.4f}{spread}  (seed {seeds})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    blocks, used = [], []
    for seed_dir in args.seed_dirs:
        block = selected_block(seed_dir)
        if block is None:
            print(f"warning: {seed_dir}: no finished training results.json; left out of the "
                  "seeds summary", file=sys.stderr)
            continue
        blocks.append(block)
        used.append(os.path.abspath(seed_dir))
    if not blocks:
        print("error: no seed folder holds a finished training results.json: "
              + ", ".join(args.seed_dirs), file=sys.stderr)
        return EXIT_USER_ERROR
    output = args.output or os.path.dirname(os.path.abspath(args.seed_dirs[0]))
    rows = summarise(blocks)
    try:  # a full or read-only disk, an --output under a file: one error line naming the path
        atomic_write_text(os.path.join(output, CSV_NAME), summary_csv(rows))
        write_json({"seeds": [b["seed"] for b in blocks], "seed_dirs": used,
                    "metrics": {r["metric"]: {"n": r["n"], "mean": _json_value(r["mean"]),
                                              "std": _json_value(r["std"]),
                                              "per_seed": {k[4:]: _json_value(v)
                                                           for k, v in r.items()
                                                           if k.startswith("seed")}}
                                for r in rows}},
                   os.path.join(output, JSON_NAME))
    except USER_ERRORS as exc:
        return report_user_error(exc)
    print(f"Seeds summary (selected epoch, {len(blocks)} seeds; mean ± sample std):")
    print(format_table(rows))
    print(f"Written to {os.path.join(output, CSV_NAME)} and {JSON_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
