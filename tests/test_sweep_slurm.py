"""The SLURM sweep executor: submitit job arrays, checked without a cluster.

- Fake ``sbatch`` / ``sacct`` / ``scancel`` / ``scontrol`` / ``srun`` on PATH record their
  arguments and the submitted batch files and answer as SLURM does: the generated array, the
  markers, ``--status`` and a second submission while the first is pending.
- submitit's local executor runs the same code path with real subprocesses: a tiny-CLIP sweep
  with one run killed mid-way (resumed by resubmitting) and one task sent the timeout signal
  (requeued through the checkpoint mechanism), whose tables equal the local executor's.
"""
from __future__ import annotations

import json
import os
import pickle
import stat
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from scripts.sweeps import cluster
from scripts.sweeps.cluster import MARKER_FILE, SlurmOptions, parse_sbatch_opts, parse_time_minutes
from scripts.sweeps.plan import write_plan
from scripts.sweeps.spec import SweepError

from test_sweep import REPO, fake_trainer, results_json, sweep, two_by_two, write_run  # noqa: F401

FAKE = {
    "sbatch": """
        n=$(( $(ls "$FAKE_SLURM"/sbatch-*.sh 2>/dev/null | wc -l) + 1 ))
        echo "$*" >> "$FAKE_SLURM/sbatch.args"
        cp "${@: -1}" "$FAKE_SLURM/sbatch-$n.sh"
        echo "Submitted batch job $((1000 + n))"
    """,
    "sacct": """
        echo "$*" >> "$FAKE_SLURM/sacct.args"
        echo "JobID|State|NodeList"
        cat "$FAKE_SLURM/sacct.out" 2>/dev/null || true
    """,
    "scancel": 'echo "$*" >> "$FAKE_SLURM/scancel.args"',
    "scontrol": 'echo "$*" >> "$FAKE_SLURM/scontrol.args"',
    "srun": 'echo "srun must not run on the login node" >&2; exit 1',
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """A folder of fake SLURM commands, first on PATH; returns the folder they record into."""
    record = tmp_path / "fake_slurm"
    bin_dir = record / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in FAKE.items():
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\n" + textwrap.dedent(body))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(record))
    return record


def batch_file(record: Path, n: int) -> str:
    return (record / f"sbatch-{n}.sh").read_text()


def sacct_says(record: Path, *lines: str) -> None:
    (record / "sacct.out").write_text("".join(f"{line}\n" for line in lines))


SLURM = ["--executor", "slurm", "--partition", "gpu", "--time-per-run", "45",
         "--gpus-per-run", "2", "--array-parallelism", "3", "--sbatch-opt", "constraint=a100"]


# ----------------------------------------------------------------------------- fake SLURM
def test_array_submission_status_and_resubmission(tmp_path, fake_slurm, capsys):
    out = tmp_path / "sweep"
    args = two_by_two(out) + SLURM
    assert sweep.main(args + ["--collect-job"]) == 0
    printed = capsys.readouterr().out
    assert "submitted 4 run(s) as job 1001: 4 task(s)" in printed and "job 1002 writes" in printed
    array = batch_file(fake_slurm, 1)
    for line in ("#SBATCH --array=0-3%3", "#SBATCH --partition=gpu", "#SBATCH --time=45",
                 "#SBATCH --gpus-per-node=2", "#SBATCH --signal=USR2@90",
                 "#SBATCH --constraint=a100", f"#SBATCH --output={out / 'slurm'}/%A_%a_0_log.out",
                 f"export PYTHONPATH={REPO}"):
        assert line in array, line
    collector = batch_file(fake_slurm, 2)
    assert "#SBATCH --dependency=afterany:1001" in collector and "--gpus-per-node=0" in collector
    # Each task holds the very train.py command lines of the local executor.
    jobs = {job.key: job for job in sweep.make_jobs(
        sweep.build_spec({}, {"datasets": ["AGIQA"], "variants": ["nctx4=vit_b16_ep50",
                                                                  "nctx8=vit_b16_ep50"],
                              "seeds": [1, 2], "output": str(out),
                              "root": str(out / "data")}).runs(), str(out / "data"), ())}
    for i, key in enumerate(jobs):
        with open(out / "slurm" / f"1001_{i}_submitted.pkl", "rb") as f:
            task = pickle.load(f).function
        assert [job.argv for job in task.jobs] == [jobs[key].argv]
        marker = json.loads((jobs[key].output_dir / MARKER_FILE).read_text())
        assert marker["job_id"] == f"1001_{i}" and marker["state"] == "queued"

    # Pending in the scheduler: --status says queued, a second submission submits nothing.
    sacct_says(fake_slurm, "1001_[0-3%3]|PENDING|None assigned")
    assert sweep.main(args + ["--status"]) == 1
    printed = capsys.readouterr().out
    assert "4 run(s): 0 new, 4 queued, 0 running, 0 done, 0 failed" in printed
    assert sweep.main(args) == 0
    assert "nothing to submit" in capsys.readouterr().out
    assert len(list(fake_slurm.glob("sbatch-*.sh"))) == 2
    assert "-j 1001" in (fake_slurm / "sacct.args").read_text()

    # One run finished, one running, one cancelled, one failed: only the last two go again.
    keys = list(jobs)
    write_run(jobs[keys[0]].output_dir, results_json(0.5))
    cluster.write_marker(jobs[keys[1]].output_dir, state="running", started="now")
    cluster.write_marker(jobs[keys[3]].output_dir, state="failed", exit_code=3)
    (jobs[keys[3]].output_dir / "sweep.log").write_text("Traceback\nboom: out of memory\n")
    sacct_says(fake_slurm, "1001_0|COMPLETED|n1", "1001_1|RUNNING|n2",
               "1001_2|CANCELLED by 42|None assigned", "1001_3|FAILED|n3")
    assert sweep.main(args + ["--status"]) == 1
    printed = capsys.readouterr().out
    assert "4 run(s): 0 new, 0 queued, 1 running, 1 done, 2 failed" in printed
    assert "job CANCELLED while the run was queued" in printed
    assert "exit code 3" in printed and "boom: out of memory" in printed
    assert sweep.main(args + ["--runs-per-task", "3", "--time-per-run", "1:00:00"]) == 0
    printed = capsys.readouterr().out
    assert "1 queued or running (left alone)" in printed
    assert "submitted 2 run(s) as job 1003: 1 task(s)" in printed
    again = batch_file(fake_slurm, 3)
    assert "#SBATCH --time=180" in again and "--array" not in again  # one task: no array
    assert json.loads((jobs[keys[2]].output_dir / MARKER_FILE).read_text())["job_id"] == "1003"
    assert json.loads((jobs[keys[1]].output_dir / MARKER_FILE).read_text())["job_id"] == "1001_1"


def test_local_executor_leaves_runs_queued_on_the_cluster_alone(tmp_path, fake_slurm,
                                                                fake_trainer, capsys):
    out = tmp_path / "sweep"
    assert sweep.main(two_by_two(out) + SLURM) == 0
    sacct_says(fake_slurm, "1001_0|PENDING|None assigned", "1001_1|RUNNING|n1",
               "1001_2|CANCELLED by 42|None assigned", "1001_3|TIMEOUT|n2")
    capsys.readouterr()
    assert sweep.main(two_by_two(out)) == 1  # two runs are still the cluster's
    printed = capsys.readouterr().out
    assert "0 done, 0 to resume, 2 new, 2 queued or running (left alone)" in printed
    ran = sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("invocations.jsonl"))
    assert ran == ["AGIQA/nctx8/paper/splitseed42/seed1", "AGIQA/nctx8/paper/splitseed42/seed2"]


def task_keys(output: Path, array: int, n_tasks: int) -> list[list[str]]:
    """The run keys of each pickled task of job ``array``, in order."""
    keys = []
    for i in range(n_tasks):
        name = f"{array}_{i}_submitted.pkl" if n_tasks > 1 else f"{array}_submitted.pkl"
        with open(output / "slurm" / name, "rb") as f:
            keys.append([job.key for job in pickle.load(f).function.jobs])
    return keys


def test_cross_evaluations_follow_their_training_run_in_its_task(tmp_path, fake_slurm, capsys):
    out = tmp_path / "sweep"
    base = ["--datasets", "AGIQA", "AGIQA1K", "--variants", "nctx4=vit_b16_ep50",
            "--output", str(out), "--root", str(tmp_path / "data")] + SLURM
    a = "AGIQA/nctx4/paper/splitseed42/seed1"
    b = "AGIQA1K/nctx4/paper/splitseed42/seed1"
    # Training runs submitted without --cross and still pending: their evaluations wait.
    assert sweep.main(base) == 0
    sacct_says(fake_slurm, "1001_[0-1%3]|PENDING|None assigned")
    capsys.readouterr()
    assert sweep.main(base + ["--cross"]) == 0
    printed = capsys.readouterr().out
    assert "2 cross-database evaluation(s) wait for their training run" in printed
    assert "nothing to submit" in printed and len(list(fake_slurm.glob("sbatch-*.sh"))) == 1
    # A finished, B's task gone without results: B is trained again and evaluated on A in the
    # same task, after it; A's evaluation on B goes on its own (A's checkpoint exists).
    write_run(out / a, results_json(0.5))
    sacct_says(fake_slurm, "1001_0|COMPLETED|n1", "1001_1|CANCELLED by 42|None assigned")
    assert sweep.main(base + ["--cross"]) == 0
    printed = capsys.readouterr().out
    assert "submitted 1 run(s) and 2 cross-database evaluation(s) as job 1002: 2 task(s)" \
        in printed
    assert task_keys(out, 1002, 2) == [[b, f"{b}/eval/AGIQA"], [f"{a}/eval/AGIQA1K"]]
    for key in (b, f"{b}/eval/AGIQA", f"{a}/eval/AGIQA1K"):
        assert json.loads((out / key / MARKER_FILE).read_text())["job_id"].startswith("1002_")
    sacct_says(fake_slurm, "1001_0|COMPLETED|n1", "1002_0|RUNNING|n2", "1002_1|PENDING|None")
    cluster.write_marker(out / b, state="running", started="now")
    assert sweep.main(base + ["--cross", "--status"]) == 1
    printed = capsys.readouterr().out
    assert "4 run(s): 0 new, 2 queued, 1 running, 1 done, 0 failed" in printed
    assert sweep.main(base + ["--cross"]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_cross_sweep_on_local_jobs_builds_the_a_by_b_table(tmp_path, fake_trainer, monkeypatch,
                                                           capsys):
    monkeypatch.setattr(cluster, "SUBMITIT_CLUSTER", "local")
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA", "AGIQA1K", "AIGCIQA2023", "--variants", "nctx4=vit_b16_ep50",
            "--output", str(out), "--root", str(tmp_path / "data"), "--cross",
            "--executor", "slurm", "--runs-per-task", "2", "--time-per-run", "10",
            "--gpus-per-run", "0", "--wait"]
    assert sweep.main(args) == 0
    printed = capsys.readouterr().out
    assert "submitted 3 run(s) and 6 cross-database evaluation(s)" in printed
    assert "2 task(s)" in printed
    cross = pd.read_csv(out / "cross.csv")
    assert len(cross) == 9 and (cross["status"] == "done").all()
    cell = cross.set_index(["train_dataset", "test_dataset"])
    for a in ("AGIQA", "AGIQA1K", "AIGCIQA2023"):
        # Decimal values through JSON and CSV: approx's default (METRIC_REL) absorbs the
        # literal's float64 rounding only.
        assert cell.loc[(a, a), "srcc"] == pytest.approx(0.81)  # the fake run's test split
        for b in {"AGIQA", "AGIQA1K", "AIGCIQA2023"} - {a}:
            assert cell.loc[(a, b), "srcc"] == pytest.approx(0.3)  # the fake eval-only run
            folder = out / a / "nctx4" / "paper" / "splitseed42" / "seed1" / "eval" / b
            assert json.loads((folder / MARKER_FILE).read_text())["state"] == "done"
    assert (out / "cross_summary.csv").is_file()
    assert sweep.main(args) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_a_requeued_task_does_not_retry_the_run_it_failed(tmp_path, fake_trainer, monkeypatch,
                                                          capsys):
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.setenv("SLURM_JOB_ID", "1001")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1001")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    jobs = sweep.make_jobs(sweep.build_spec({}, {
        "datasets": ["AGIQA"], "variants": ["vit_b16_ep50"], "seeds": [1, 2],
        "output": str(tmp_path / "sweep"), "root": str(tmp_path)}).runs(), str(tmp_path), ())
    cluster.write_marker(jobs[0].output_dir, job_id="1001_0", state="failed", exit_code=3)
    cluster.write_marker(jobs[1].output_dir, job_id="1000_5", state="failed", exit_code=3)
    with pytest.raises(RuntimeError, match="1 run\\(s\\) failed: AGIQA/vit_b16_ep50/paper/"
                                           "splitseed42/seed1"):
        cluster.RunTask(jobs)()
    assert "failed earlier in this job (exit code 3)" in capsys.readouterr().out
    assert not (jobs[0].output_dir / "invocations.jsonl").exists()
    # A failure of an earlier submission is retried, and the marker tells what happened.
    assert (jobs[1].output_dir / "invocations.jsonl").is_file()
    marker = cluster.read_marker(jobs[1].output_dir)
    assert marker["job_id"] == "1001_0" and marker["state"] == "done" and marker["exit_code"] == 0


@pytest.mark.parametrize("extra, message", [
    (["--time-per-run", "0"], "--time-per-run must be a positive time"),
    (["--time-per-run", "-5"], "--time-per-run must be a positive SLURM time"),
    (["--time-per-run", "1:xx"], "--time-per-run must be a positive SLURM time"),
    (["--runs-per-task", "0"], "--runs-per-task must be at least 1"),
    (["--runs-per-task", "-2"], "--runs-per-task must be at least 1"),
    (["--sbatch-opt", "constraint"], "--sbatch-opt takes KEY=VALUE"),
    (["--sbatch-opt", "=a100"], "--sbatch-opt takes KEY=VALUE"),
    (["--sbatch-opt", "time=10"], "set by --time-per-run"),
    (["--mem", "lots"], "--mem must be a positive number of GB"),
    ("no-submitit", "needs the submitit package: pip install -r requirements-cluster.txt"),
    ("other-sweep", "holds another sweep"),
    ("no-srun", "Could not detect \"srun\""),
    ("sbatch-refuses", "sbatch refused the submission"),
])
def test_bad_input_is_one_clear_error_and_submits_nothing(extra, message, tmp_path, fake_slurm,
                                                          monkeypatch, capsys):
    out = tmp_path / "sweep"
    extra_line = extra == "sbatch-refuses"
    if extra == "no-submitit":
        monkeypatch.setattr(cluster, "submitit", None)
        extra = []
    elif extra == "other-sweep":  # the folder's saved plan has other runs
        write_plan(sweep.build_spec({}, {"datasets": ["AIGCIQA2023"], "variants": ["vit_b16_ep50"],
                                         "output": str(out)}))
        extra = []
    elif extra == "no-srun":
        (fake_slurm / "bin" / "srun").unlink()
        monkeypatch.setenv("PATH", str(fake_slurm / "bin"))
        extra = []
    elif extra == "sbatch-refuses":
        (fake_slurm / "bin" / "sbatch").write_text(
            "#!/usr/bin/env bash\necho 'sbatch: error: invalid partition specified: gpu' >&2\n"
            "exit 1\n")
        extra = []
    assert sweep.main(two_by_two(out) + SLURM + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    lines = err.strip().splitlines()  # sbatch's own complaint may come first
    assert lines[-1].startswith("sweep: error: ") and len(lines) == 1 + (extra_line), err
    assert not list(fake_slurm.glob("sbatch-*.sh"))


def test_option_parsing():
    assert [parse_time_minutes(t) for t in ("90", "1:30", "1:30:00", "2-0", "1-2:03:04")] == \
        [90, 2, 90, 2880, 1564]  # 1:30 is 90 s, rounded up
    assert parse_sbatch_opts(["--constraint=a100", "mail-type=END"]) == \
        {"constraint": "a100", "mail-type": "END"}
    options = SlurmOptions.from_flags("45", runs_per_task=4, mem="32G")
    assert options.task_time_min == 180 and options.mem_gb == 32.0
    with pytest.raises(SweepError, match="--cpus-per-run must be at least 1"):
        SlurmOptions.from_flags("45", cpus_per_run=0)


# ----------------------------------------------------------------------------- real local jobs
# train.py with one fault: for the run folder named in FAULTS it kills itself right after its
# first end-of-epoch checkpoint ("kill"), or sends its array task submitit's timeout signal
# there and waits to be stopped ("timeout"); each fault happens once (a flag file).
FAULTY_TRAIN = """
import os, signal, sys, time
sys.path.insert(0, {repo!r})
import train
from dassl.engine.trainer import SimpleTrainer

out = sys.argv[sys.argv.index("--output-dir") + 1]
fault = {faults!r}.get(os.path.relpath(out, {output!r}))
flag = os.path.join(out, "fault.done")
if fault and not os.path.exists(flag):
    save = SimpleTrainer.save_latest_checkpoint

    def save_then_fail(self, *args, **kwargs):
        save(self, *args, **kwargs)
        open(flag, "w").close()
        if fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        signal.signal(signal.SIGINT, lambda *_: os._exit(130))  # the task stops us
        os.kill(os.getppid(), signal.SIGUSR2)
        time.sleep(300)

    SimpleTrainer.save_latest_checkpoint = save_then_fail
train.main(sys.argv[1:])
"""


def tiny_sweep(output: Path, tiny_assets: dict) -> list[str]:
    return ["--datasets", "AGIQA", "--variants", "nctx2=vit_b16_ep50", "nctx4=vit_b16_ep50",
            "--seeds", "1", "2", "--root", tiny_assets["root"], "--output", str(output),
            "--extra-opts", "MODEL.BACKBONE.NAME", tiny_assets["weights"], "OPTIM.MAX_EPOCH", "2",
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
            "DATALOADER.TEST.BATCH_SIZE", "16", "TRAINER.CLIP_AGIQA.PREC", "fp32",
            "INPUT.TRANSFORMS", "('normalize',)"]


def test_local_jobs_kill_requeue_resubmit_and_match_the_local_executor(
        tmp_path, tiny_assets, monkeypatch, capsys):
    # One thread per process: both executors' runs must compute bit for bit the same.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(cluster, "SUBMITIT_CLUSTER", "local")
    out = tmp_path / "cluster"
    killed, timed_out = "AGIQA/nctx2/paper/splitseed42/seed1", "AGIQA/nctx4/paper/splitseed42/seed1"
    faulty = tmp_path / "faulty_train.py"
    faulty.write_text(FAULTY_TRAIN.format(repo=str(REPO), output=str(out),
                                          faults={killed: "kill", timed_out: "timeout"}))
    monkeypatch.setattr(sweep, "TRAIN_SCRIPT", faulty)
    args = tiny_sweep(out, tiny_assets) + [
        "--executor", "slurm", "--runs-per-task", "2", "--time-per-run", "10",
        "--gpus-per-run", "0", "--wait"]
    assert sweep.main(args) == 1  # the killed run is missing
    printed = capsys.readouterr().out
    assert "submitted 4 run(s)" in printed and "2 task(s)" in printed
    assert f"FAILED {killed}" in printed and "exit code -9" in printed
    results = pd.read_csv(out / "results.csv")
    assert list(results["status"]) == ["missing", "done", "done", "done"]
    # The timed-out task was requeued by submitit and its run resumed after epoch 1.
    requeued = out / timed_out
    assert json.loads((requeued / MARKER_FILE).read_text())["state"] == "done"
    assert (requeued / "sweep.log").read_text().count("===== sweep launch") == 2
    assert "Resumed after epoch 1" in (requeued / "log.txt").read_text()
    task_logs = "".join(p.read_text() for p in (out / "slurm").glob("*_log.out"))
    assert f"requeued {timed_out}" in task_logs

    # Resubmitting the same command resumes only the killed run.
    assert sweep.main(args) == 0
    printed = capsys.readouterr().out
    assert "3 done, 1 to resume, 0 new" in printed and "submitted 1 run(s)" in printed
    assert "Resumed after epoch 1" in (out / killed / "log.txt").read_text()

    # The local executor, same sweep elsewhere, real train.py: the same tables.
    monkeypatch.setattr(sweep, "TRAIN_SCRIPT", REPO / "train.py")
    local = tmp_path / "local"
    assert sweep.main(tiny_sweep(local, tiny_assets) + ["--jobs", "2"]) == 0
    capsys.readouterr()
    for name in ("results.csv", "summary.csv"):
        a, b = pd.read_csv(out / name), pd.read_csv(local / name)
        if "output_dir" in a:
            assert list(a.pop("output_dir")) == [str(out / k) for k in (
                "AGIQA/nctx2/paper/splitseed42/seed1", "AGIQA/nctx2/paper/splitseed42/seed2",
                "AGIQA/nctx4/paper/splitseed42/seed1", "AGIQA/nctx4/paper/splitseed42/seed2")]
            b.pop("output_dir")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (out / "boxplot.png").is_file()
