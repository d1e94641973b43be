#!/usr/bin/env python3
"""Sweep CLIP-AGIQA over datasets x variants x protocols x split seeds x seeds.

Usage:
    python scripts/sweep.py configs/sweeps/example.yaml [--dry-run]
    python scripts/sweep.py --datasets AGIQA --variants vit_b16_ep100 \\
        --protocol paper val --seeds 1 2 3 --split-seeds 42 --root ./data --output output/sweep
    python scripts/sweep.py configs/sweeps/ablations.yaml   # every yaml of configs/ablations

Each run is one ``train.py`` process writing to
``OUTPUT/<dataset>/<variant>/<protocol>/splitseed<K>/seed<S>``; runs go in parallel, one per
visible GPU (``CUDA_VISIBLE_DEVICES`` set per child; ``--jobs`` to change), one at a time on
CPU. Finished runs (complete ``results.json``) are skipped and interrupted ones resumed, so the
same command can simply be run again. Afterwards ``OUTPUT/results.csv`` (one row per run),
``OUTPUT/summary.csv`` (per dataset x variant x protocol) and ``OUTPUT/boxplot.png`` are
written from the runs' ``results.json`` and the summary is printed. Exit status: 0 when every
run is done, 1 when some failed or are missing, 2 for an invalid sweep.
See ``scripts/sweeps/spec.py`` for the spec format and ``configs/protocols/`` for the protocols.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python scripts/sweep.py`: make the repo importable
    sys.path.insert(0, str(REPO))

from dassl.evaluation.plots import save_boxplot  # noqa: E402
from scripts.sweeps.runner import (Job, check_identity, device_slots, execute,  # noqa: E402
                                read_results, run_status, visible_gpus)
from scripts.sweeps.spec import Run, SweepError, build_spec, load_spec_file  # noqa: E402
from scripts.sweeps.tables import (format_summary, result_row, results_table,  # noqa: E402
                                summary_table, write_csv)

TRAIN_SCRIPT = REPO / "train.py"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/sweep.py", description=__doc__.split("\n")[0])
    parser.add_argument("spec", nargs="?", default=None,
                        help="sweep yaml (see configs/sweeps/example.yaml); flags override it")
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="dataset names (configs/datasets/<NAME>.yaml), yaml paths or names "
                             "defined in the spec")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="method variants: [NAME=]CONFIG (configs/trainers/CLIP_AGIQA/"
                             "<CONFIG>.yaml or a yaml path), a folder of yaml files (e.g. "
                             "configs/ablations) or names defined in the spec")
    parser.add_argument("--protocol", "--protocols", dest="protocols", nargs="+", default=None,
                        help="protocols: configs/protocols/<NAME>.yaml or yaml paths "
                             "(default: paper)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds (default: 1)")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=None,
                        help="DATASET.SPLIT_SEED values (default: 42, the reference split)")
    parser.add_argument("--root", default=None, help="dataset root (default: ./data)")
    parser.add_argument("--output", default=None, help="sweep folder (default: output/sweep)")
    parser.add_argument("--extra-opts", nargs="+", default=None, metavar="KEY_OR_VALUE",
                        help="KEY VALUE pairs appended to every run (after the spec's)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs at a time (default: one per visible GPU, 1 on CPU)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every config, print the plan and commands, run nothing")
    parser.add_argument("--collect-only", action="store_true",
                        help="run nothing; write the tables from the runs finished so far")
    return parser


def make_jobs(runs: Sequence[Run], root: str, extra_opts: Sequence[str]) -> list[Job]:
    return [Job(run.key, (sys.executable, str(TRAIN_SCRIPT), *run.train_argv(root, extra_opts)),
                run.output_dir, run.identity(extra_opts)) for run in runs]


def validate_configs(runs: Sequence[Run], jobs: Sequence[Job]) -> None:
    """Build the full config of one run per dataset x variant x protocol exactly as train.py
    will, so a typo fails now rather than hours into the sweep (seeds are plain integers)."""
    import train  # deferred: imports torch and the trainer

    parser = train.build_parser()
    checked = set()
    for run, job in zip(runs, jobs):
        combo = (run.dataset.name, run.variant.name, run.protocol.name)
        if combo in checked:
            continue
        checked.add(combo)
        try:
            train.setup_cfg(parser.parse_args(list(job.argv[2:])))
        except (KeyError, ValueError, TypeError, AssertionError, FileNotFoundError) as exc:
            raise SweepError(f"run {job.key}: invalid config: {exc}") from exc


def collect(runs: Sequence[Run], output: Path) -> tuple[list[dict], bool]:
    """Write results.csv, summary.csv and boxplot.png; print the summary. Returns the rows and
    whether every run is done."""
    rows = [result_row({"dataset": r.dataset.name, "variant": r.variant.name,
                        "protocol": r.protocol.name, "split_seed": r.split_seed,
                        "seed": r.seed}, str(r.output_dir), read_results(r.output_dir))
            for r in runs]
    results = results_table(rows)
    summary = summary_table(results)
    output.mkdir(parents=True, exist_ok=True)
    write_csv(results, output / "results.csv")
    write_csv(summary, output / "summary.csv")
    done = results[results["status"] == "done"]
    message = f"tables: {output / 'results.csv'}, {output / 'summary.csv'}"
    try:
        save_boxplot(done, str(output / "boxplot.png"))
        message += f", {output / 'boxplot.png'}"
    except ValueError:
        message += " (no finished run with finite SRCC/PLCC: no boxplot)"
    print(format_summary(summary))
    print(message)
    return rows, len(done) == len(results)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"datasets": args.datasets, "variants": args.variants,
                 "protocols": args.protocols, "seeds": args.seeds,
                 "split_seeds": args.split_seeds, "root": args.root, "output": args.output,
                 "extra_opts": args.extra_opts}
    try:
        spec = build_spec(load_spec_file(args.spec) if args.spec else {}, overrides)
        runs = spec.runs()
        jobs = make_jobs(runs, spec.root, spec.extra_opts)
        for job in jobs:
            check_identity(job.output_dir, job.identity)
        if not args.collect_only:
            validate_configs(runs, jobs)
        slots = device_slots(visible_gpus(), args.jobs)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    skipped = spec.skipped()
    if skipped:
        print(f"left out {len(skipped)} dataset x variant pair(s) whose variant is named for "
              f"another database: {', '.join(f'{d}/{v}' for d, v in skipped)}")
    status = {job.key: run_status(job.output_dir) for job in jobs}
    counts = {s: sum(v == s for v in status.values()) for s in ("done", "resume", "new")}
    print(f"sweep {spec.output}: {len(jobs)} run(s): {counts['done']} done, "
          f"{counts['resume']} to resume, {counts['new']} new")
    if args.dry_run:
        for job in jobs:
            print(f"[{status[job.key]}] {job.key}\n    {shlex.join(job.argv)}")
        return 0
    if not args.collect_only:
        todo = [job for job in jobs if status[job.key] != "done"]
        if todo:
            gpus = ", ".join(dict.fromkeys(s for s in slots if s is not None))
            where = f"GPU(s) {gpus}" if gpus else "CPU"
            print(f"running {len(todo)} run(s), {len(slots)} at a time on {where}")
            execute(todo, slots)
    _rows, complete = collect(runs, spec.output)
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
