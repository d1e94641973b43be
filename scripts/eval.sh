#!/usr/bin/env bash
# Evaluate a CLIP-AGIQA run trained by scripts/main.sh (same arguments, same output layout).
#
# Usage: bash scripts/eval.sh [--force] DATASET CFG CTP NCTX SHOTS CSC [SEED] [LOAD_EPOCH]
#   --force     evaluate again: train.py moves the previous evaluation's files into previous-<time>/
#   SEED        seed of the trained run (default: 1)
#   LOAD_EPOCH  evaluate model.pth.tar-LOAD_EPOCH instead of model-best.pth.tar
# Environment: DATA (dataset root, default ./data), PYTHON (default python3).
# Reads   output/DATASET/CLIP_AGIQA/CFG_SHOTSshots/nctxNCTX_cscCSC_ctpCTP/seedSEED
# Writes  output/evaluation/DATASET/CLIP_AGIQA/CFG_SHOTSshots/nctxNCTX_cscCSC_ctpCTP/seedSEED/best
#         (or .../epochLOAD_EPOCH): log.txt, results.json, predictions.csv, scatter.png
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/run_layout.sh"
set -- "${@%$'\r'}"  # a CR left by a wrapper script with Windows line ends
USAGE_LINES="2 11"
FLAGS=()
ARGS=()
for ARG in "$@"; do
    own_option "${ARG}" || ARGS+=("${ARG}")
done
set -- "${ARGS[@]}"
if [ "$#" -lt 6 ] || [ "$#" -gt 8 ]; then
    usage "$0" ${USAGE_LINES} >&2
    exit 2
fi
set_run_layout "$@"
SEED=${7:-1}
LOAD_EPOCH=${8:-}

RUN=$(run_name "${SEED}")
MODEL_DIR=output/${RUN}
# One folder per evaluated checkpoint, so evaluating another epoch never collides with an earlier one.
CHECKPOINT=best
if [ -n "${LOAD_EPOCH}" ]; then
    CHECKPOINT=epoch${LOAD_EPOCH}
fi
OUT_DIR=output/evaluation/${RUN}/${CHECKPOINT}
if [ ! -d "${MODEL_DIR}" ]; then
    echo "error: no trained run at ${MODEL_DIR}; train it with scripts/main.sh first" >&2
    exit 2
fi
EPOCH_ARGS=()
if [ -n "${LOAD_EPOCH}" ]; then
    EPOCH_ARGS=(--load-epoch "${LOAD_EPOCH}")
fi

run_train_py "${SEED}" "${OUT_DIR}" "${FLAGS[@]}" --model-dir "${MODEL_DIR}" "${EPOCH_ARGS[@]}" --eval-only
