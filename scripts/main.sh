#!/usr/bin/env bash
# Train CLIP-AGIQA with the paper's protocol, once per seed.
#
# Usage: bash scripts/main.sh [--force] DATASET CFG CTP NCTX SHOTS CSC [SEEDS...] [-- KEY VALUE ...]
#   --force  start a run folder over: train.py moves its previous files into previous-<time>/
#   DATASET  a file of configs/datasets/ without .yaml, e.g. AGIQA
#            (the full list is printed below)
#   CFG      method config, e.g. vit_b16_ep100 (configs/trainers/CLIP_AGIQA/CFG.yaml), or an
#            ablation, e.g. head_similarity (configs/ablations/CFG.yaml)
#   CTP      class token position: end | middle | front
#   NCTX     number of context tokens, e.g. 16
#   SHOTS    DATASET.NUM_SHOTS (kept for the CoOp output layout; the IQA datasets use all images)
#   CSC      class-specific context: True | False (any case)
#   SEEDS    one or more seeds, whole numbers >= 0 (default: 1)
#   -- KEY VALUE ...  config options for every run, after the protocol's, e.g.
#            -- MODEL.BACKBONE.NAME /weights/ViT-B-16.pt OPTIM.MAX_EPOCH 50
#   CTP, NCTX and CSC must equal what CFG's yaml sets (e.g. nctx4: NCTX 4; csc: CSC True;
#   ctp_middle: CTP middle; ctx_init_quality: NCTX 6, its words' token count), else an error.
# Environment: DATA (dataset root, default ./data), PYTHON (default python3). The GPU is chosen
# by your environment (e.g. CUDA_VISIBLE_DEVICES), not by this script.
#
# Protocol of the paper: the best epoch is selected on the TEST split (TEST.FINAL_MODEL best_val
# without a validation split, TEST.ALLOW_SELECTION_ON_TEST True); the log warns about it and
# results.json reports the last-epoch metrics too.
# Output: output/DATASET/CLIP_AGIQA/CFG_SHOTSshots/nctxNCTX_cscCSC_ctpCTP/seedSEED; with several
# seeds also seeds_summary.csv/.json there (scripts/seeds_summary.py: mean, std, each seed)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/run_layout.sh"
set -- "${@%$'\r'}"  # a CR left by a wrapper script with Windows line ends
USAGE_LINES="2 20"
OPTION_HINT="; config options go after the positional arguments and --, e.g. bash scripts/main.sh AGIQA vit_b16_ep100 end 16 1 False -- OPTIM.LR 0.01"
FLAGS=()
while [ "$#" -gt 0 ] && own_option "$1"; do
    shift
done
if [ "$#" -lt 6 ]; then
    usage "$0" ${USAGE_LINES} >&2
    exit 2
fi
POSITIONAL=("${@:1:6}")
set_run_layout "$@"
shift 6
SEEDS=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    if own_option "$1"; then
        shift
        continue
    fi
    if [[ "$1" =~ ^[A-Z][A-Z0-9_]*\.[A-Z0-9_.]+$ ]]; then
        SHOWN=("${FLAGS[@]}" "${POSITIONAL[@]}" "${SEEDS[@]}" -- "$@")
        echo "error: $1 is a config option: put -- before config options:" \
             "bash scripts/main.sh ${SHOWN[*]}" >&2
        exit 2
    fi
    if ! [[ "$1" =~ ^[0-9]+$ ]]; then
        echo "error: SEED must be a non-negative whole number, got $(shown "$1")" >&2
        exit 2
    fi
    SEEDS+=("$1")
    shift
done
if [ "$#" -gt 0 ]; then
    shift  # the "--"
fi
# --force among the options after "--" is train.py's flag: it must come before the KEY VALUE pairs.
EXTRA_OPTS=()
for ARG in "$@"; do
    if [ "${ARG}" = "--force" ]; then
        FLAGS=(--force)
    else
        EXTRA_OPTS+=("${ARG}")
    fi
done
if [ "${#SEEDS[@]}" -eq 0 ]; then
    SEEDS=(1)
fi
check_method_args "${EXTRA_OPTS[@]}"

SEED_DIRS=()
for SEED in "${SEEDS[@]}"; do
    DIR=output/$(run_name "${SEED}")
    SEED_DIRS+=("${DIR}")
    echo "Run: seed ${SEED} -> ${DIR} (best epoch selected on the TEST split, paper protocol)"
    run_train_py "${SEED}" "${DIR}" "${FLAGS[@]}" -- TEST.FINAL_MODEL best_val \
        TEST.ALLOW_SELECTION_ON_TEST True "${EXTRA_OPTS[@]}"
done
# Several seeds: mean, std and each seed's metrics of the selected epoch, next to the seed folders.
if [ "${#SEED_DIRS[@]}" -gt 1 ]; then
    "$PYTHON" "${REPO}/scripts/seeds_summary.py" "${SEED_DIRS[@]}"
fi
