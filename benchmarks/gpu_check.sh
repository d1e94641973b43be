#!/usr/bin/env bash
# The prepared GPU check: versions first, carried wheels, pytest -m cuda, the training benchmark.
# Writes $OUT/gpu_check.json after every stage and $OUT/gpu_check.log; see docs/performance.md.
#   bash benchmarks/gpu_check.sh            # on the GPU machine (about 9 minutes at most)
#   bash benchmarks/gpu_check.sh --small    # anywhere, CPU included (about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
