#!/usr/bin/env python3
"""Sweep CLIP-AGIQA over datasets x variants x protocols x split seeds x seeds.

Usage:
    python scripts/sweep.py configs/sweeps/example.yaml [--dry-run]
    python scripts/sweep.py --datasets AGIQA --variants vit_b16_ep100 \\
        --protocol paper val --seeds 1 2 3 --split-seeds 42 --root ./data --output output/sweep
    python scripts/sweep.py configs/sweeps/ablations.yaml   # every yaml of configs/ablations
    python scripts/sweep.py configs/sweeps/example.yaml --executor slurm --partition gpu \\
        --time-per-run 2:00:00 --runs-per-task 2 [--collect-job]       # on a SLURM login node
    python scripts/sweep.py configs/sweeps/example.yaml --status   # new/queued/running/done/failed
    python scripts/sweep.py --output output/sweeps/example --status   # the plan saved there
    python scripts/sweep.py --datasets AGIQA1K --variants vit_b16_ep100 --protocol paper \\
        --split-indices 1 2 3 4 5 6 7 8 9 10 --extra-opts DATASET.SPLIT_FILE peer_splits
    python scripts/sweep.py --datasets AGIQA AGIQA1K --variants vit_b16_ep100 --cross

Each run is one ``train.py`` process writing to
``OUTPUT/<dataset>/<variant>/<protocol>/splitseed<K>/seed<S>``. The sweep saves its plan in
``OUTPUT/sweep_plan.json`` when it starts (``scripts/sweeps/plan.py``): a later command that names
the folder alone (``--output OUTPUT``, no spec, datasets or variants) runs, reports or collects
that sweep; one that adds runs (seeds, variants, ``--cross``, ...) extends it, one that leaves
out or changes its runs is refused, naming the difference (``--replan`` to change it). The local
executor (default) runs them in parallel, one per visible GPU (``CUDA_VISIBLE_DEVICES`` set per
child; ``--jobs`` to change), one at a time on CPU, then writes ``OUTPUT/results.csv`` (one row
per run), ``OUTPUT/summary.csv`` (per dataset x variant x protocol), ``OUTPUT/generators.csv``
(per-generator medians), ``OUTPUT/boxplot.png`` and the offline page ``OUTPUT/report.html``
(``scripts/sweeps/page.py``, linking each run's page) from the runs' ``results.json`` and
prints the summary. ``--executor slurm`` submits the runs instead as
one SLURM job array through submitit (``scripts/sweeps/cluster.py``; logs in ``OUTPUT/slurm/``)
and returns; ``--collect-only`` (or the dependent job of ``--collect-job``) writes the tables
once it has finished. Either way finished runs are skipped, interrupted ones resumed and runs
still queued or running on the cluster left alone, so the same command can simply be run again.
Exit status: 0 when every run is done (or the array was submitted), 1 when some failed or are
missing, 2 for an invalid sweep. ``--dry-run`` also checks each run's inputs
(``scripts/sweeps/preflight.py``) and exits 1 when some runs miss them, 2 when all do. With
``--split-indices`` the runs use the fixed split folders ``SPLIT_FILE/<K>/`` (run folders
``split<K>``). With ``--cross`` every run of
dataset A is also tested on all of every other dataset B (eval-only, in the run's ``eval/<B>``
folder), and ``OUTPUT/cross.csv`` (one row per A x B x run, the diagonal being A's own test
split), ``OUTPUT/cross_summary.csv`` (medians) and the printed A x B table follow; with
``--executor slurm`` each evaluation runs in its training run's array task, right after it. See
``scripts/sweeps/spec.py`` for the spec format and ``configs/protocols/`` for the protocols.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as `python scripts/sweep.py`: make the repo importable
    sys.path.insert(0, str(REPO))


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
    parser.add_argument("--split-indices", nargs="+", type=int, default=None,
                        help="DATASET.SPLIT_INDEX values: fixed split folders SPLIT_FILE/<K>/ "
                             "(run folders split<K>) instead of split seeds")
    parser.add_argument("--cross", action="store_true", default=None,
                        help="also test each run on all of every other dataset (A x B table; "
                             "local executor)")
    parser.add_argument("--root", default=None, help="dataset root (default: ./data)")
    parser.add_argument("--output", default=None, help="sweep folder (default: output/sweep)")
    parser.add_argument("--extra-opts", nargs="+", default=None, metavar="KEY_OR_VALUE",
                        help="KEY VALUE pairs appended to every run (after the spec's)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs at a time (default: one per visible GPU, 1 on CPU)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every config and what each run needs (database files, CLIP "
                             "weights), print the plan, commands and what is missing, run "
                             "nothing; exit 2 when no run can run, 1 when some cannot")
    parser.add_argument("--collect-only", action="store_true",
                        help="run nothing; write the tables from the runs finished so far "
                             "(--output DIR alone: the sweep saved in DIR)")
    parser.add_argument("--status", action="store_true",
                        help="run nothing; show each run's state (new, queued, running, done, "
                             "failed) from the run folders and the scheduler (--output DIR "
                             "alone: the sweep saved in DIR)")
    parser.add_argument("--replan", action="store_true",
                        help="make this command's sweep the one saved in --output even where "
                             "it leaves out or changes runs of the saved plan (adding runs needs "
                             "no flag); runs already there are reused where they match")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local",
                        help="local: child processes on this machine (default); slurm: one "
                             "SLURM job array through submitit")
    add_slurm_arguments(parser)
    return parser


def add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SLURM (--executor slurm)")
    group.add_argument("--partition", default=None, help="sbatch --partition")
    group.add_argument("--account", default=None, help="sbatch --account")
    group.add_argument("--qos", default=None, help="sbatch --qos")
    group.add_argument("--time-per-run", default="2:00:00", metavar="TIME",
                       help="time limit of one run: MINUTES, HH:MM:SS or D-HH:MM:SS (default "
                            "2:00:00); a task's limit is runs-per-task x this")
    group.add_argument("--gpus-per-run", type=int, default=1, help="GPUs per task (default 1)")
    group.add_argument("--cpus-per-run", type=int, default=None,
                       help="CPUs per task (default: the cluster's)")
    group.add_argument("--mem", default=None, metavar="GB",
                       help="memory per task in GB, e.g. 32 or 32G (default: the cluster's)")
    group.add_argument("--array-parallelism", type=int, default=None, metavar="N",
                       help="tasks of the array running at once (default: submitit's, 256)")
    group.add_argument("--runs-per-task", type=int, default=1, metavar="N",
                       help="runs one array task trains one after the other (default 1)")
    group.add_argument("--sbatch-opt", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. constraint=a100 (repeatable)")
    group.add_argument("--collect-job", action="store_true",
                       help="also submit a CPU job that runs --collect-only once the array ends")
    group.add_argument("--wait", action="store_true",
                       help="stay until the array has ended, then write the tables")


# `--help` is answered here, before the imports below pull in torch and pandas (seconds to load).
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args(sys.argv[1:])


from dassl.evaluation.plots import save_boxplot  # noqa: E402
from dassl.engine.interrupt import terminate_as_interrupt  # noqa: E402
from dassl.utils import USER_ERRORS, report_user_error  # noqa: E402
from scripts.sweeps import cluster  # noqa: E402
from scripts.sweeps.preflight import missing_inputs  # noqa: E402
from scripts.sweeps.runner import (INTERRUPTED_EXIT_CODES, Job,  # noqa: E402
                                   check_identity, device_slots, execute, read_results,
                                   run_status, visible_gpus)
from scripts.sweeps.plan import PLAN_FILE, plan_differences, plan_of, read_plan  # noqa: E402
from scripts.sweeps.plan import write_plan  # noqa: E402
from scripts.sweeps.spec import (DEFAULT_OUTPUT, CrossRun, Run, SweepError,  # noqa: E402
                                 SweepSpec, build_spec, load_spec_file)
from tabulate import tabulate  # noqa: E402
import pandas as pd  # noqa: E402
from scripts.sweeps.tables import (CROSS_COLUMNS, cross_row, cross_summary,  # noqa: E402
                                   format_cross, format_summary, generator_summary,
                                   result_row, results_table, summary_table, write_csv)
from scripts.sweeps.page import write_sweep_page  # noqa: E402

TRAIN_SCRIPT = REPO / "train.py"
EXIT_INTERRUPTED = INTERRUPTED_EXIT_CODES[0]  # 130: the sweep stopped on Ctrl-C


def slurm_options(args: argparse.Namespace) -> Optional[cluster.SlurmOptions]:
    """The validated SLURM options when ``--executor slurm`` (``SweepError`` otherwise)."""
    if args.executor != "slurm":
        return None
    cluster.require_submitit()
    return cluster.SlurmOptions.from_flags(
        args.time_per_run, runs_per_task=args.runs_per_task, gpus_per_run=args.gpus_per_run,
        cpus_per_run=args.cpus_per_run, mem=args.mem, partition=args.partition,
        account=args.account, qos=args.qos, array_parallelism=args.array_parallelism,
        sbatch_opts=args.sbatch_opt)


def make_jobs(runs: Sequence[Run | CrossRun], root: str,
              extra_opts: Sequence[str]) -> list[Job]:
    return [Job(run.key, (sys.executable, str(TRAIN_SCRIPT), *run.train_argv(root, extra_opts)),
                run.output_dir, run.identity(extra_opts),
                "eval_only" if isinstance(run, CrossRun) else "train") for run in runs]


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


def job_config(job: Job):
    """The frozen config ``train.py`` builds for ``job`` (``SweepError`` when invalid)."""
    import train  # deferred: imports torch and the trainer

    try:
        return train.setup_cfg(train.build_parser().parse_args(list(job.argv[2:])))
    except (KeyError, ValueError, TypeError, AssertionError, FileNotFoundError) as exc:
        raise SweepError(f"run {job.key}: invalid config: {exc}") from exc


def check_inputs(runs: Sequence[Run | CrossRun], jobs: Sequence[Job],
                 plan: dict[str, str]) -> dict[str, list[str]]:
    """``{key: missing inputs}`` of the jobs still to run (``scripts/sweeps/preflight.py``):
    database files and CLIP weights; done jobs need nothing."""
    todo = [(run, job) for run, job in zip(runs, jobs) if plan[job.key] != "done"]
    return missing_inputs([job for _, job in todo], [job_config(job) for _, job in todo],
                          [run.run.key if isinstance(run, CrossRun) else None for run, _ in todo])


def print_dry_run(jobs: Sequence[Job], plan: dict[str, str], missing: dict[str, list[str]],
                  summary: str) -> int:
    """Print one line per job (its state and what it misses), each missing input once with the
    number of jobs it stops, the command of the first job to do (of each kind) and, last,
    ``summary``; 0 when every job still to run has its inputs, 1 when only some have, 2 (with
    an ``error:`` line) when none has."""
    rows = [[job.key, plan[job.key], _inputs_cell(missing.get(job.key)) if job.key in missing
             else "-"] for job in jobs]
    print(tabulate(rows, headers=["run", "state", "inputs"], tablefmt="simple"))
    problems = Counter(p for key in missing for p in missing[key])
    for problem, count in problems.items():
        print(f"{count} run(s) missing {problem}")
    for mode in dict.fromkeys(job.mode for job in jobs):
        first = next((job for job in jobs if job.mode == mode and job.key in missing), None)
        if first is not None:
            print(f"command of {first.key} (the other runs differ in their options and "
                  f"folder):\n    {shlex.join(first.argv)}")
    blocked = [key for key, found in missing.items() if found]
    if blocked and len(blocked) < len(missing):
        print(f"{len(missing) - len(blocked)} of the {len(missing)} run(s) to do have their "
              f"inputs; {len(blocked)} miss some (listed above) and would fail")
    print(summary)
    if not blocked:
        return 0
    if len(blocked) < len(missing):
        return 1
    reasons = list(problems)
    more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
    print(f"sweep: error: none of the {len(blocked)} run(s) to do can run: "
          f"{'; '.join(reasons[:3])}{more}", file=sys.stderr)
    return 2


def _inputs_cell(problems: Optional[Sequence[str]]) -> str:
    """``ok``, or ``missing data, weights``: the kinds of input a job misses."""
    if not problems:
        return "ok"
    return "missing " + ", ".join(dict.fromkeys(p.split(":")[0] for p in problems))


def where_runs_go(slots: Sequence[Optional[str]]) -> str:
    """``N at a time on CPU`` / ``N at a time on GPU(s) 0, 1`` for the local executor's slots."""
    gpus = ", ".join(dict.fromkeys(s for s in slots if s is not None))
    return f"{len(slots)} at a time on {f'GPU(s) {gpus}' if gpus else 'CPU'}"


def executor_text(options: Optional[cluster.SlurmOptions], slots: Sequence[Optional[str]],
                  todo: int) -> str:
    """How the runs to do would run: the local executor's slots, or the SLURM array."""
    if options is None:
        return f"local executor, {where_runs_go(slots)}"
    tasks = -(-todo // options.runs_per_task)
    return (f"slurm executor, {tasks} array task(s) of up to {options.runs_per_task} run(s), "
            f"{options.task_time_min} min each")


def collect(runs: Sequence[Run], output: Path) -> tuple[list[dict], bool]:
    """Write results.csv, summary.csv, generators.csv, boxplot.png and report.html; print the
    summary. Returns the rows and whether every run is done."""
    rows, stored = [], []
    for r in runs:
        results = read_results(r.output_dir)
        ids = {"dataset": r.dataset.name, "variant": r.variant.name,
               "protocol": r.protocol.name, "split_seed": r.split_seed, "seed": r.seed}
        rows.append(result_row(ids, str(r.output_dir), results))
        stored.append((ids, results))
    results = results_table(rows)
    summary = summary_table(results)
    generators = generator_summary(stored)
    output.mkdir(parents=True, exist_ok=True)
    write_csv(results, output / "results.csv")
    write_csv(summary, output / "summary.csv")
    write_csv(generators, output / "generators.csv")
    done = results[results["status"] == "done"]
    message = f"tables: {output / 'results.csv'}, {output / 'summary.csv'}, " \
              f"{output / 'generators.csv'}"
    boxplot: Optional[Path] = output / "boxplot.png"
    try:
        save_boxplot(done, str(boxplot))
        message += f", {boxplot}"
    except ValueError:
        boxplot = None
        message += " (no finished run with finite SRCC/PLCC: no boxplot)"
    print(format_summary(summary))
    print(message)
    print(f"sweep page: {write_sweep_page(output, results, summary, generators, boxplot)}")
    return rows, len(done) == len(results)


def collect_cross(runs: Sequence[Run], cross: Sequence[CrossRun], output: Path) -> bool:
    """Write cross.csv and cross_summary.csv and print the A x B table; True when complete."""
    rows = []
    for run in runs:
        trained = read_results(run.output_dir)
        train_range = trained.get("train_mos_range") if trained else None
        ids = {"train_dataset": run.dataset.name, "variant": run.variant.name,
               "protocol": run.protocol.name, "split": run.split_folder, "seed": run.seed}
        tested = (trained or {}).get("final", {}).get("mos_range")
        rows.append(cross_row(dict(ids, test_dataset=run.dataset.name), str(run.output_dir),
                              trained["selected"] if trained else None, train_range,
                              tested if trained else None))
        for job in (c for c in cross if c.run == run):
            evaluated = read_results(job.output_dir, "eval_only")
            final = evaluated["final"] if evaluated else None
            rows.append(cross_row(dict(ids, test_dataset=job.target.name), str(job.output_dir),
                                  final, train_range, final.get("mos_range") if final else None))
    table = pd.DataFrame(rows, columns=list(CROSS_COLUMNS))
    summary = cross_summary(table)
    output.mkdir(parents=True, exist_ok=True)
    write_csv(table, output / "cross.csv")
    write_csv(summary, output / "cross_summary.csv")
    print(format_cross(summary))
    print(f"cross-database tables: {output / 'cross.csv'}, {output / 'cross_summary.csv'}")
    return bool((table["status"] == "done").all())


def collect_all(runs: Sequence[Run], cross: Sequence[CrossRun], output: Path,
                with_cross: bool) -> bool:
    """The sweep tables, and the cross-database ones with ``--cross``; True when complete."""
    complete = collect(runs, output)[1]
    if with_cross:
        complete = collect_cross(runs, cross, output) and complete
    return complete


def check_run_folders(jobs: Sequence[Job]) -> None:
    """Refuse run folders of another experiment (``sweep_run.json``)."""
    for job in jobs:
        check_identity(job.output_dir, job.identity)


def resolve_spec(args: argparse.Namespace, overrides: dict) -> SweepSpec:
    """The sweep this command means: its spec file and flags, or, when it gives neither a spec
    nor ``--datasets`` / ``--variants``, the plan saved in the output folder (other flags still
    apply). ``SweepError`` when it leaves out or changes runs of the folder's saved plan
    (adding runs is fine; ``--replan`` allows anything) and for ``--status`` /
    ``--collect-only`` on a folder with no plan and nothing given."""
    raw = load_spec_file(args.spec) if args.spec else None
    output = Path(os.path.abspath(os.path.expanduser(
        str(args.output or (raw or {}).get("output") or DEFAULT_OUTPUT))))
    saved = read_plan(output)
    if raw is None and args.datasets is None and args.variants is None:
        if saved is None and (args.status or args.collect_only):
            raise SweepError(f"{output / PLAN_FILE} not found: name the folder of a sweep with "
                             "--output, or give the sweep's spec or flags (--datasets, "
                             "--variants, ...) as when it ran")
        raw = saved
    spec = build_spec(raw or {}, dict(overrides, output=str(output)))
    differences = plan_differences(saved, plan_of(spec)) if saved is not None else []
    if differences and not args.replan:
        raise SweepError(f"{output} holds another sweep (this one leaves out or changes runs "
                         f"of its {PLAN_FILE}: {'; '.join(differences)}): give the folder alone "
                         f"(--output {shlex.quote(str(output))}) to use its plan, use another "
                         "--output, or add --replan to make this the folder's sweep")
    return spec


def plan_states(jobs: Sequence[Job], states: dict[str, cluster.RunState]) -> dict[str, str]:
    """``{key: "done" | "active" | "resume" | "new"}`` of each job (``active``: queued or
    running, left alone)."""
    return {job.key: "active" if states[job.key].active else run_status(job.output_dir, job.mode)
            for job in jobs}


def describe_plan(output: Path, jobs: Sequence[Job], cross_jobs: Sequence[Job],
                  plan: dict[str, str]) -> str:
    """``sweep OUT: N run(s): D done, R to resume, W new[, A queued or running (left alone)]``
    and a second line for the cross-database evaluations, if any."""
    counts = {s: sum(plan[job.key] == s for job in jobs)
              for s in ("done", "resume", "new", "active")}
    text = (f"sweep {output}: {len(jobs)} run(s): {counts['done']} done, {counts['resume']} to "
            f"resume, {counts['new']} new")
    text += f", {counts['active']} queued or running (left alone)" if counts["active"] else ""
    if cross_jobs:
        waiting = sum(plan[job.key] in ("new", "resume") for job in cross_jobs)
        active = sum(plan[job.key] == "active" for job in cross_jobs)
        text += (f"\n+ {len(cross_jobs)} cross-database evaluation(s), {waiting} to run"
                 + (f", {active} queued or running (left alone)" if active else ""))
    return text


def show_status(jobs: Sequence[Job], states: dict[str, cluster.RunState]) -> int:
    """Print each run's state and the log tail of failed runs; 0 when all are done, else 1."""
    rows = [[job.key, states[job.key].state, states[job.key].job_id or "-",
             states[job.key].detail] for job in jobs]
    print(tabulate(rows, headers=["run", "state", "job", "detail"], tablefmt="github"))
    counts = ", ".join(f"{sum(s.state == name for s in states.values())} {name}"
                       for name in cluster.STATES)
    print(f"{len(jobs)} run(s): {counts}")
    for job in jobs:
        if states[job.key].state == "failed":
            print(cluster.describe_failure(job, states[job.key]))
    return 0 if all(s.state == "done" for s in states.values()) else 1


def slurm_todo(runs_jobs: Sequence[Job], cross: Sequence[CrossRun], cross_jobs: Sequence[Job],
               states: dict[str, cluster.RunState]) -> tuple[list[Job], dict[str, list[Job]],
                                                               int]:
    """What to submit: the runs that are new or failed (an evaluation of a training run
    submitted now follows it in its task; one of a finished run is submitted on its own) as
    ``(jobs, followers, waiting)``; ``waiting`` counts the evaluations left for a later
    submission because their training run is queued or running."""
    todo = [job for job in runs_jobs if states[job.key].state in ("new", "failed")]
    submitted = {job.key for job in todo}
    followers: dict[str, list[Job]] = {}
    waiting = 0
    for evaluation, job in zip(cross, cross_jobs):
        if states[job.key].state not in ("new", "failed"):
            continue
        trained = evaluation.run.key
        if trained in submitted:
            followers.setdefault(trained, []).append(job)
        elif states[trained].state == "done":
            todo.append(job)
        else:
            waiting += 1
    return todo, followers, waiting


def submit_to_slurm(args: argparse.Namespace, argv: Sequence[str], runs: Sequence[Run],
                    jobs: Sequence[Job], output: Path, options: cluster.SlurmOptions,
                    cross: Sequence[CrossRun] = (), cross_jobs: Sequence[Job] = ()) -> int:
    """Submit the runs that are neither done nor queued/running as one job array (under a
    lock, so two submissions cannot race), each training run followed in its task by its
    cross-database evaluations; optionally the collect job, optionally wait."""
    with cluster.submission_lock(output):
        states = cluster.run_states([*jobs, *cross_jobs])  # again, under the lock
        todo, followers, waiting = slurm_todo(jobs, cross, cross_jobs, states)
        if waiting:
            print(f"{waiting} cross-database evaluation(s) wait for their training run (queued "
                  "or running): submit the same command again once it has ended")
        if not todo:
            print("nothing to submit: every run is done, queued or running; see --status")
            return 0
        tasks = cluster.submit_runs(todo, options, output, name=f"sweep-{output.name}",
                                    followers=followers)
    submitted = todo + [job for chain in followers.values() for job in chain]
    n_cross = sum(job.mode == "eval_only" for job in submitted)
    evaluations = f" and {n_cross} cross-database evaluation(s)" if n_cross else ""
    array = tasks[0].job_id.split("_")[0]
    print(f"submitted {len(submitted) - n_cross} run(s){evaluations} as job {array}: "
          f"{len(tasks)} task(s) of up to {options.runs_per_task} run(s), time limit "
          f"{options.task_time_min} min per task, {options.gpus_per_run} GPU(s) each; logs in "
          f"{output / cluster.LOG_DIR}")
    if args.collect_job:
        command = [sys.executable, str(Path(__file__).resolve()), *argv, "--collect-only"]
        collector = cluster.submit_collect(command, array, options, output,
                                           name=f"sweep-{output.name}")
        print(f"job {collector.job_id} writes the tables once job {array} has ended")
    if not args.wait:
        print("follow it with --status; write the tables with --collect-only when it has ended")
        return 0
    cluster.wait_for(tasks)
    states = cluster.run_states(submitted)
    for job in submitted:
        if states[job.key].state == "failed":
            print(cluster.describe_failure(job, states[job.key]))
    return 0 if collect_all(runs, cross, output, bool(cross)) else 1


def no_runs_reason(spec: SweepSpec) -> str:
    """Why ``spec`` plans no run: every dataset x variant pair is left out because each
    variant is named for a database not among the datasets."""
    pairs = ", ".join(f"{d}/{v}" for d, v in spec.skipped())
    return (f"nothing to run: every dataset x variant pair is left out because the variant is "
            f"named for another database ({pairs}); add that database's dataset yaml to "
            f"--datasets or choose variants for {', '.join(d.name for d in spec.datasets)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    overrides = {"datasets": args.datasets, "variants": args.variants,
                 "protocols": args.protocols, "seeds": args.seeds,
                 "split_seeds": args.split_seeds, "split_indices": args.split_indices,
                 "cross": args.cross, "root": args.root, "output": args.output,
                 "extra_opts": args.extra_opts}
    try:
        options = slurm_options(args)
        spec = resolve_spec(args, overrides)
        runs = spec.runs()
        if not runs:
            raise SweepError(no_runs_reason(spec))
        cross = spec.cross_runs()
        jobs = make_jobs(runs, spec.root, spec.extra_opts)
        cross_jobs = make_jobs(cross, spec.root, spec.extra_opts)
        check_run_folders(jobs + cross_jobs)
        if not (args.collect_only or args.status):
            validate_configs(runs, jobs)
        slots = device_slots(visible_gpus(), args.jobs) if options is None else []
    except USER_ERRORS as exc:
        return report_user_error(exc, prog="sweep")
    skipped = spec.skipped()
    if skipped:
        print(f"left out {len(skipped)} dataset x variant pair(s) whose variant is named for "
              f"another database: {', '.join(f'{d}/{v}' for d, v in skipped)}")
    states = cluster.run_states(jobs + cross_jobs)
    if args.status:
        return show_status(jobs + cross_jobs, states)
    plan = plan_states(jobs + cross_jobs, states)
    if args.dry_run:
        try:
            missing = check_inputs([*runs, *cross], jobs + cross_jobs, plan)
        except SweepError as exc:
            print(f"sweep: error: {exc}", file=sys.stderr)
            return 2
        todo = sum(state in ("new", "resume") for state in plan.values())
        summary = (f"dry run of {describe_plan(spec.output, jobs, cross_jobs, plan)}\n"
                   f"{todo} to run: {executor_text(options, slots, todo)}; "
                   "nothing was run or written")
        return print_dry_run(jobs + cross_jobs, plan, missing, summary)
    print(describe_plan(spec.output, jobs, cross_jobs, plan))
    if args.collect_only:
        return write_tables(runs, cross, spec)
    try:
        write_plan(spec)
    except USER_ERRORS as exc:
        return report_user_error(exc, prog="sweep")
    if options is not None:
        try:
            return submit_to_slurm(args, argv, runs, jobs, spec.output, options, cross,
                                   cross_jobs)
        except USER_ERRORS as exc:
            return report_user_error(exc, prog="sweep")
    # Evaluations need their trained run: they go after all training runs.
    for phase in (jobs, cross_jobs):
        todo = [job for job in phase if plan[job.key] in ("new", "resume")]
        if todo:
            print(f"running {len(todo)} run(s), {where_runs_go(slots)}")
            try:
                with terminate_as_interrupt():  # SIGTERM stops the sweep as Ctrl-C does
                    execute(todo, slots)
            except KeyboardInterrupt:
                return EXIT_INTERRUPTED  # execute printed how to resume
    return write_tables(runs, cross, spec)


def write_tables(runs: Sequence[Run], cross: Sequence[CrossRun], spec: SweepSpec) -> int:
    """``collect_all``'s exit status (0 all done, 1 some missing); a folder that cannot be
    written (full, read-only) is one ``sweep: error:`` line, exit 2."""
    try:
        return 0 if collect_all(runs, cross, spec.output, spec.cross) else 1
    except USER_ERRORS as exc:
        return report_user_error(exc, prog="sweep")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
