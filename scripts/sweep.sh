#!/usr/bin/env bash
# Run a CLIP-AGIQA sweep (seeds x split seeds x datasets x variants x protocols).
#
# Usage: bash scripts/sweep.sh [SPEC.yaml] [--datasets ...] [--variants ...] [--protocol ...]
#            [--seeds ...] [--split-seeds ...] [--root DIR] [--output DIR] [--extra-opts K V ...]
#            [--jobs N] [--dry-run] [--collect-only] [--status]
#            [--executor slurm --partition P --time-per-run T --runs-per-task N ...]
# Example: bash scripts/sweep.sh configs/sweeps/example.yaml --dry-run
# Environment: PYTHON (default python3). All arguments go to scripts/sweep.py (see its --help).
set -euo pipefail
PYTHON=${PYTHON:-python3}
PYTHON=${PYTHON%$'\r'}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A CR that a wrapper script with Windows line ends leaves at the end of an argument is dropped.
exec "$PYTHON" "${REPO}/scripts/sweep.py" "${@%$'\r'}"
