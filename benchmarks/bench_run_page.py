"""How long writing `report.html` adds to a run: the demo's run (`scripts/demo.sh`).

    python benchmarks/bench_run_page.py [--dir output/demo] [--repeat 5] [--out page.json]

Runs the demo first when `DIR/run` has no finished run. Then, on that run's files:
- page: `trainers.run_report.write_run_report` with the run's results.json, predictions.csv,
  test image paths and level probabilities (the run's scorer gives the same probabilities the
  trainer records), median of `--repeat` writes, split into the TensorBoard read and the rest;
- levels: the per-test cost of the level probabilities the trainer records during `test()`:
  `CustomCLIP.level_probabilities` on the test images' features (what the trainer adds to each
  test pass; the features themselves are computed for the prediction anyway), median;
- the run's own wall time (`Elapsed:` in log.txt, training and final test) for scale.
Prints a table and one JSON line (also written to `--out`).
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from dassl.utils import read_image  # noqa: E402

from trainers.inference.scorer import load_scorer  # noqa: E402
from trainers.run_report import read_curves, write_run_report  # noqa: E402


def elapsed_seconds(log: Path) -> float | None:
    """The last `Elapsed: H:MM:SS` of a run's log.txt, in seconds."""
    found = re.findall(r"Elapsed: (\d+):(\d\d):(\d\d)", log.read_text(errors="replace"))
    if not found:
        return None
    hours, minutes, seconds = map(int, found[-1])
    return hours * 3600.0 + minutes * 60.0 + seconds


def timed(call, repeat: int) -> float:
    """Median wall seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=str(REPO / "output" / "demo"), help="demo folder")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    run = Path(args.dir) / "run"
    if not (run / "results.json").is_file():
        subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--dir", args.dir],
                       check=True, stdout=subprocess.DEVNULL)
    results = json.loads((run / "results.json").read_text())
    table = pd.read_csv(run / "predictions.csv")
    rows = list(table.itertuples(index=False, name=None))
    images = Path(args.dir) / "data" / "AGIQA-3K"
    paths = [str(images / name) for name in table["name"]]
    scorer = load_scorer(str(run))
    _, levels = scorer.assess_paths(paths)
    levels = levels.numpy()
    epochs = int(results["last"]["epoch"]) if results.get("last") else 0

    page_s = timed(lambda: write_run_report(str(run), results, rows, paths, levels,
                                            curves_dir=str(run), n_epochs=epochs), args.repeat)
    curves_s = timed(lambda: read_curves(str(run)), args.repeat)
    with torch.no_grad():
        features = scorer.features(scorer.preprocess([read_image(p) for p in paths]))
        levels_s = timed(lambda: scorer.model.level_probabilities(features), args.repeat)
    run_s = elapsed_seconds(run / "log.txt")
    figures = {"n_test_images": len(rows), "epochs": epochs, "page_s": page_s,
               "tensorboard_read_s": curves_s, "level_probabilities_per_test_s":
               levels_s, "run_elapsed_s": run_s,
               "page_size_bytes": (run / "report.html").stat().st_size}
    if run_s:
        figures["page_share_of_run"] = page_s / run_s
    print(f"report.html of {run} ({len(rows)} test images, {epochs} epochs):")
    print(f"  writing the page      {page_s:.3f} s (TensorBoard read {curves_s:.3f} s), "
          f"{figures['page_size_bytes'] / 1024:.0f} KiB")
    print(f"  level probabilities   {figures['level_probabilities_per_test_s'] * 1000:.1f} ms "
          "per test pass")
    if run_s:
        print(f"  the run itself        {run_s:.0f} s: the page adds "
              f"{100 * figures['page_share_of_run']:.1f} %")
    line = json.dumps(figures)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
