"""One prepared check of the CUDA path, meant to run in a single call on a lent GPU machine.

    bash benchmarks/gpu_check.sh                 # GPU: full synthetic AGIQA-3K, random ViT-B/16
    bash benchmarks/gpu_check.sh --small         # any machine (CPU too): tiny CLIP, 45 images

Stages, in order, each in its own process group with a time budget (seconds; `--budget
STAGE=S` changes one): `versions` (printed first: Python, torch, CUDA, cuDNN, GPU, torchvision),
`install` (missing packages from the carried wheels folder, `--no-index`; then every runtime
import is checked), `bench_data` (synthetic dataset and random weights, built once),
`cuda_tests` (`pytest -m cuda`), `bench_fast` and `bench_reference` (`bench_train.py`, one
pipeline each). A stage that runs past its budget is stopped (SIGTERM, then SIGKILL) and marked
`timeout`; the next stage still runs. `OUT/gpu_check.json` is rewritten after every stage (and
when a stage starts, marked `running`), so a run cut short still reports what it measured;
`OUT/gpu_check.log` holds every stage's full output, which is also echoed to stdout. `OUT` is
`--out`, else `$OUT`, else `output/gpu_check`. Uses the standard library only, so it runs before
anything is installed. Exit status: 0 when every stage passed or was skipped, 1 otherwise.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEEL_LIST = REPO / "benchmarks" / "gpu_wheels.txt"
STAGES = ("versions", "install", "bench_data", "cuda_tests", "bench_fast", "bench_reference")
# Seconds per stage. Full: the sum (540 s) fits one 10-minute call with room for start-up.
BUDGETS = {"versions": 30, "install": 60, "bench_data": 90, "cuda_tests": 120,
           "bench_fast": 150, "bench_reference": 90}
SMALL_BUDGETS = {"versions": 30, "install": 60, "bench_data": 60, "cuda_tests": 120,
                 "bench_fast": 120, "bench_reference": 120}
# Modules of the carried wheels (benchmarks/gpu_wheels.txt) and the GPU machine's own packages
# they rely on; huggingface_hub is left out: it is imported only to download CLIP weights.
RUNTIME_IMPORTS = ("torch", "torchvision", "PIL", "yaml", "yacs", "ftfy", "regex", "tqdm",
                   "tabulate", "safetensors", "openpyxl", "pytest")
# Bench settings: full = the real AGIQA-3K size with ViT-B/16; small = seconds on a CPU.
FULL_BENCH = {"n_images": 2982, "model": "ViT-B/16", "epochs_fast": 3, "epochs_reference": 2}
SMALL_BENCH = {"n_images": 45, "model": "tiny-vit", "epochs_fast": 2, "epochs_reference": 2}
GRACE_S = 5.0  # after SIGTERM, before SIGKILL

VERSIONS_CODE = """
import json, os, platform, sys
info = {"python": sys.version.split()[0], "platform": platform.platform(),
        "cpu_count": os.cpu_count()}
try:
    import torch
    info.update(torch=torch.__version__, cuda=torch.version.cuda,
                cuda_available=torch.cuda.is_available(),
                cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    gpu_capability=list(torch.cuda.get_device_capability(0)),
                    gpu_count=torch.cuda.device_count())
except Exception as exc:
    info["torch_error"] = repr(exc)
try:
    import torchvision
    info["torchvision"] = torchvision.__version__
except Exception as exc:
    info["torchvision_error"] = repr(exc)
print("VERSIONS " + json.dumps(info, sort_keys=True))
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="tiny CLIP and 45 images: the whole check in about a minute on a CPU")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(REPO / "output/gpu_check"),
                        help="folder of gpu_check.json / gpu_check.log (default $OUT)")
    parser.add_argument("--wheels", default=str(REPO / ".whl"),
                        help="carried wheels folder (see docs/performance.md)")
    parser.add_argument("--root", default=None,
                        help="bench dataset/weights folder (default $TMPDIR/clip_agiqa_gpu_check)")
    parser.add_argument("--tests", default="tests",
                        help="where pytest looks for the `cuda` tests (default: all of tests/)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--budget", action="append", default=[], metavar="STAGE=SECONDS",
                        help="time budget of one stage (repeatable)")
    return parser


def parse_budgets(small: bool, overrides: list[str]) -> dict[str, float]:
    """Default budgets of the mode, with `STAGE=SECONDS` overrides; raises ValueError."""
    budgets = dict(SMALL_BUDGETS if small else BUDGETS)
    for item in overrides:
        stage, sep, value = item.partition("=")
        if not sep or stage not in budgets:
            raise ValueError(f"--budget {item!r}: expected STAGE=SECONDS with STAGE in {STAGES}")
        budgets[stage] = float(value)
    return budgets


class Report:
    """`gpu_check.json` (rewritten atomically on every change) and `gpu_check.log`."""

    def __init__(self, out: Path, small: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.log_path = out / "gpu_check.json", out / "gpu_check.log"
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.data = {"check": "clip_agiqa_gpu_check", "small": small,
                     "started": datetime.datetime.now().isoformat(timespec="seconds"),
                     "stages": {}, "summary": {}}
        self.write()

    def write(self) -> None:
        tmp = self.json_path.with_name(self.json_path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.json_path)

    def line(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")
        self.log.flush()

    def close(self) -> None:
        self.log.close()


def run_command(argv: list[str], budget_s: float, report: Report,
                env: dict | None = None) -> dict:
    """Run `argv` in its own process group, echoing its output; stop it at `budget_s`.

    Returns `{status: ok|failed|timeout, returncode, seconds, output_tail}`.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    tail: list[str] = []

    def pump() -> None:
        for raw in proc.stdout:
            text = raw.rstrip("\n")
            tail.append(text)
            del tail[:-40]
            report.line("  | " + text)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc)
    reader.join(timeout=GRACE_S)
    seconds = time.perf_counter() - start
    status = "timeout" if timed_out else ("ok" if proc.returncode == 0 else "failed")
    return {"status": status, "returncode": proc.returncode, "seconds": round(seconds, 2),
            "output_tail": tail[-15:]}


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the stage's process group, SIGKILL it after `GRACE_S`."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# ------------------------------------------------------------------------ stages
def stage_versions(ctx: dict, budget: float) -> dict:
    result = run_command([sys.executable, "-c", VERSIONS_CODE], budget, ctx["report"])
    for text in result["output_tail"]:
        if text.startswith("VERSIONS "):
            result["versions"] = json.loads(text[len("VERSIONS "):])
    ctx["report"].data["versions"] = result.get("versions")
    return result


def stage_install(ctx: dict, budget: float) -> dict:
    """pip install (no index) what is missing from the carried wheels, then check imports."""
    wheels = Path(ctx["args"].wheels)
    start = time.perf_counter()
    found = sorted(p.name for p in wheels.glob("*.whl")) if wheels.is_dir() else []
    result: dict = {"wheels_dir": str(wheels), "wheels": len(found)}
    if found:
        pip = run_command([sys.executable, "-m", "pip", "install", "--no-index",
                           "--disable-pip-version-check", "--find-links", str(wheels),
                           "-r", str(WHEEL_LIST)], budget, ctx["report"])
        result["pip"] = {k: pip[k] for k in ("status", "returncode", "seconds")}
    else:
        ctx["report"].line(f"  no wheels in {wheels}: nothing installed")
    left = max(1.0, budget - (time.perf_counter() - start))
    code = ("import importlib, json\nmissing = {}\nfor name in %r:\n    try:\n"
            "        importlib.import_module(name)\n    except Exception as exc:\n"
            "        missing[name] = repr(exc)\nprint('MISSING ' + json.dumps(missing))"
            % (RUNTIME_IMPORTS,))
    check = run_command([sys.executable, "-c", code], left, ctx["report"])
    missing = next((json.loads(t[len("MISSING "):]) for t in check["output_tail"]
                    if t.startswith("MISSING ")), None)
    result["missing_imports"] = missing
    pip_ok = result.get("pip", {}).get("status", "ok") == "ok"
    result["status"] = check["status"] if check["status"] != "ok" else (
        "ok" if missing == {} and pip_ok else "failed")
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def _bench_argv(ctx: dict, *extra: str) -> list[str]:
    bench = ctx["bench"]
    # --precisions applies on a CPU only (one fast run in fp32 there); a GPU runs fp16.
    return [sys.executable, str(REPO / "benchmarks/bench_train.py"), "--root", ctx["root"],
            "--n-images", str(bench["n_images"]), "--model", bench["model"],
            "--precisions", "fp32", *extra]


def stage_bench_data(ctx: dict, budget: float) -> dict:
    return run_command(_bench_argv(ctx, "--prepare-only"), budget, ctx["report"])


def stage_cuda_tests(ctx: dict, budget: float) -> dict:
    xml = Path(ctx["out"]) / "cuda_tests.xml"
    result = run_command([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p",
                          "no:cacheprovider", f"--junitxml={xml}", ctx["args"].tests], budget,
                         ctx["report"])
    if xml.is_file():
        result["tests"] = junit_counts(xml)
    if result["status"] == "failed" and result.get("tests", {}).get("tests") == 0:
        result["status"] = "ok"  # pytest exits 5 when every test is deselected: nothing failed
    return result


def junit_counts(path: Path) -> dict:
    """`{tests, failures, errors, skipped, failed_names}` of a pytest JUnit XML file."""
    root = ElementTree.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    counts["failed_names"] = [f"{case.get('classname')}::{case.get('name')}"
                              for case in suite.iter("testcase")
                              if case.find("failure") is not None
                              or case.find("error") is not None]
    return counts


def _bench_stage(ctx: dict, budget: float, path: str) -> dict:
    out_json = Path(ctx["out"]) / f"bench_{path}.json"
    epochs = ctx["bench"][f"epochs_{path}"]
    result = run_command(_bench_argv(ctx, "--paths", path, "--epochs", str(epochs),
                                     "--out", str(out_json)), budget, ctx["report"])
    if out_json.is_file():
        result["summary"] = json.loads(out_json.read_text())
    else:  # cut short: the worker's own result file, if that pipeline finished
        worker = Path(ctx["root"]) / f"bench_{path}.json"
        if worker.is_file() and worker.stat().st_mtime >= ctx["started"]:
            result["worker_result"] = json.loads(worker.read_text())
    return result


def stage_bench_fast(ctx: dict, budget: float) -> dict:
    return _bench_stage(ctx, budget, "fast")


def stage_bench_reference(ctx: dict, budget: float) -> dict:
    return _bench_stage(ctx, budget, "reference")


def summarize(stages: dict) -> dict:
    """Headline figures from the bench stages: fast-path figures and the steady speedup."""
    paths = {}
    for path in ("fast", "reference"):
        summary = stages.get(f"bench_{path}", {}).get("summary")
        if summary:
            paths[path] = summary["paths"][path]
    out: dict = {}
    if "fast" in paths:
        fast = paths["fast"]
        out.update(projected_100_epochs_s=fast["projected_100_epochs_s"],
                   eval_images_per_s=fast.get("eval_images_per_s"),
                   decoded_gib=fast["decoded_gib"], decoded_on=fast["decoded_on"],
                   peak_gpu_gib=fast["peak_gpu_gib"], peak_rss_gib=fast["peak_rss_gib"])
    if len(paths) == 2:
        fast, ref = paths["fast"]["steady"], paths["reference"]["steady"]
        out["speedup_per_epoch"] = {k: ref[k] / fast[k] if fast[k] else None
                                    for k in ("train_s", "test_s", "total_s")}
    return out


STAGE_FUNCTIONS = {"versions": stage_versions, "install": stage_install,
                   "bench_data": stage_bench_data, "cuda_tests": stage_cuda_tests,
                   "bench_fast": stage_bench_fast, "bench_reference": stage_bench_reference}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        budgets = parse_budgets(args.small, args.budget)
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ValueError(f"--stages: unknown {unknown}; choose from {STAGES}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    report = Report(out, args.small)
    root = args.root or os.path.join(tempfile.gettempdir(), "clip_agiqa_gpu_check")
    ctx = {"args": args, "report": report, "out": str(out), "root": root,
           "bench": SMALL_BENCH if args.small else FULL_BENCH, "started": time.time()}
    report.data.update(budgets_s=budgets, bench=ctx["bench"], root=root)
    for name in stages:
        report.line(f"== stage {name} (budget {budgets[name]:g} s)")
        report.data["stages"][name] = {"status": "running", "budget_s": budgets[name]}
        report.write()
        result = STAGE_FUNCTIONS[name](ctx, budgets[name])
        result["budget_s"] = budgets[name]
        report.data["stages"][name] = result
        report.data["summary"] = summarize(report.data["stages"])
        report.write()
        report.line(f"== stage {name}: {result['status']} in {result.get('seconds', 0):.1f} s")
    failed = [n for n, r in report.data["stages"].items() if r["status"] not in ("ok", "skipped")]
    report.data["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    report.data["failed_stages"] = failed
    report.write()
    report.line("summary: " + json.dumps(report.data["summary"], sort_keys=True))
    report.line(f"gpu_check: {'FAILED stages ' + ', '.join(failed) if failed else 'all stages ok'}"
                f" ({report.json_path})")
    report.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
