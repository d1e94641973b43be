"""How long each command takes to answer ``--help`` (issue 25: a new user's first command).

Runs ``python <command> --help`` in a fresh interpreter ``--repeats`` times per command and
reports the best wall time (seconds; the best of several is the least disturbed by other work on
a shared machine). ``tests/test_help_imports.py`` checks, untimed, that no heavy package loads.

    python benchmarks/bench_help.py [--repeats 3]

Prints one line per command and a JSON summary.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Each command as the user types it after ``python``: a script, or ``-m`` and a module.
COMMANDS = ("train.py", "score.py", "scripts/sweep.py", "mat2csv.py", "scripts/seeds_summary.py",
            "-m datasets.synthetic", "-m datasets.fetch", "-m clip.random_weights")


def best_help_time(command: str, repeats: int) -> float:
    """Best wall time in seconds of ``python COMMAND --help`` over ``repeats`` runs (``COMMAND``:
    a script's path or ``-m module``).

    Raises ``subprocess.CalledProcessError`` when ``--help`` does not exit 0.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *command.split(), "--help"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (default 3)")
    args = parser.parse_args(argv)
    summary = {}
    for command in COMMANDS:
        summary[command] = round(best_help_time(command, args.repeats), 3)
        print(f"{command} --help: {summary[command]:.3f} s (best of {args.repeats})")
    print(json.dumps({"help_seconds": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
