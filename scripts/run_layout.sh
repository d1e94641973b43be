# Sourced by main.sh and eval.sh: their shared positional arguments, environment defaults and
# run-directory layout, kept in one place so that eval.sh always finds what main.sh wrote.
# Usage (from a script): source run_layout.sh; set_run_layout DATASET CFG CTP NCTX SHOTS CSC
# A carriage return that a wrapper script edited on Windows (CRLF line ends) leaves at the end of
# a value is dropped (the scripts also strip it from their arguments: set -- "${@%$'\r'}").
DATA=${DATA:-./data}
DATA=${DATA%$'\r'}
PYTHON=${PYTHON:-python3}
PYTHON=${PYTHON%$'\r'}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRAINER=CLIP_AGIQA
source "${REPO}/scripts/run_child.sh"

# shown NAME: NAME as error lines show it, the project's one rule (dassl/names.py, standard
# library only): as it is when plain, quoted and escaped when it holds a space at an end, a tab, a
# no-break or zero-width space or another invisible character.
shown() {
    "$PYTHON" "${REPO}/dassl/names.py" "$1"
}

# registry ARG: a fact of the database registry (datasets/registry.py, the one list of databases;
# run as a file, it imports only the standard library).
registry() {
    "$PYTHON" "${REPO}/datasets/registry.py" "$1"
}

# usage SCRIPT FIRST LAST: the script's header comment lines FIRST..LAST and the DATASET values.
usage() {
    sed -n "$2,$3p" "$1" | sed -e 's/^# //' -e 's/^#$//'
    echo "DATASET is one of (datasets/registry.py):"
    registry --help-lines
}

# own_option ARG: take ARG when it is one of the script's own options: --force (sets FLAGS),
# -h/--help (prints the usage, header lines USAGE_LINES, and exits 0). Any other option (-x, --xyz;
# a negative number is a value, not an option) is an error naming the script's options and
# OPTION_HINT (exit 2). Returns 1 when ARG is no option.
own_option() {
    case "$1" in
        --force) FLAGS=(--force) ;;
        -h|--help) usage "$0" ${USAGE_LINES}; exit 0 ;;
        -|--|-[0-9]*) return 1 ;;
        -*) echo "error: unknown option $1: the options of $(basename "$0") are --force and" \
                 "--help${OPTION_HINT:-}" >&2
            exit 2 ;;
        *) return 1 ;;
    esac
}

# yaml_names FOLDER: the names of FOLDER's yaml files, without .yaml, one a line.
yaml_names() {
    local file
    for file in "$1"/*.yaml; do
        basename "${file}" .yaml
    done
}

# unknown_cfg: exit 2 with one error line for a CFG that names no yaml: the close names (the
# standard-library dassl/names.py), every method config and where the ablations are listed.
unknown_cfg() {
    local methods ablations close listed
    mapfile -t methods < <(yaml_names "${REPO}/configs/trainers/${TRAINER}")
    mapfile -t ablations < <(yaml_names "${REPO}/configs/ablations")
    close=$("$PYTHON" "${REPO}/dassl/names.py" --did-you-mean "${CFG}" "${methods[@]}" \
            "${ablations[@]}" 2>/dev/null || true)
    listed=$(printf ', %s' "${methods[@]}")
    echo "error: CFG $(shown "${CFG}"): no yaml of that name in configs/trainers/${TRAINER}/ or" \
         "configs/ablations/${close:+ ${close}}; method configs: ${listed:2};" \
         "${#ablations[@]} ablations in configs/ablations/ (listed in configs/ablations/README.md)" >&2
    exit 2
}

# set_run_layout DATASET CFG CTP NCTX SHOTS CSC: the variables below (CSC spelled True/False
# whatever its case); a DATASET without a yaml, a CSC other than true/false, an NCTX that is not a
# positive whole number or a CTP other than end/middle/front is an error (exit 2).
set_run_layout() {
    DATASET=$1
    CFG=$2
    CTP=$3
    NCTX=$4
    SHOTS=$5
    CSC=$6
    case "${CSC,,}" in
        true) CSC=True ;;
        false) CSC=False ;;
        *) echo "error: CSC must be True or False, got $(shown "${CSC}")" >&2; exit 2 ;;
    esac
    if ! [[ "${NCTX}" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: NCTX must be a positive whole number, got $(shown "${NCTX}")" >&2
        exit 2
    fi
    case "${CTP}" in
        end|middle|front) ;;
        *) echo "error: CTP must be end, middle or front, got $(shown "${CTP}")" >&2; exit 2 ;;
    esac
    DATASET_CONFIG=${REPO}/configs/datasets/${DATASET}.yaml
    if [ ! -f "${DATASET_CONFIG}" ]; then
        local configs close
        read -r -a configs <<< "$(registry --configs)"
        close=$("$PYTHON" "${REPO}/dassl/names.py" --did-you-mean "${DATASET}" "${configs[@]}" \
                2>/dev/null || true)
        echo "error: DATASET $(shown "${DATASET}"): no yaml of that name in configs/datasets/${close:+ ${close}};" \
             "one of: ${configs[*]}" >&2
        exit 2
    fi
    # CFG names a method yaml in configs/trainers/CLIP_AGIQA/, else an ablation in configs/ablations/.
    METHOD_CONFIG=${REPO}/configs/trainers/${TRAINER}/${CFG}.yaml
    if [ ! -f "${METHOD_CONFIG}" ] && [ -f "${REPO}/configs/ablations/${CFG}.yaml" ]; then
        METHOD_CONFIG=${REPO}/configs/ablations/${CFG}.yaml
    fi
    if [ ! -f "${METHOD_CONFIG}" ]; then
        unknown_cfg
    fi
    # The method options of a run, as train.py's trailing KEY VALUE pairs.
    METHOD_OPTS=(
        TRAINER.CLIP_AGIQA.N_CTX "${NCTX}"
        TRAINER.CLIP_AGIQA.CSC "${CSC}"
        TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION "${CTP}"
        DATASET.NUM_SHOTS "${SHOTS}"
    )
}

# check_method_args [KEY VALUE ...]: exit 2 with one error line when the CFG yaml or the given
# options set N_CTX, CSC or CLASS_TOKEN_POSITION otherwise than the positional NCTX, CSC, CTP
# (they would be overridden silently and the run folder misnamed; scripts/method_args.py).
check_method_args() {
    "$PYTHON" "${REPO}/scripts/method_args.py" "${METHOD_CONFIG}" "${NCTX}" "${CSC}" "${CTP}" "$@"
}

# run_name SEED: DATASET/CLIP_AGIQA/CFG_SHOTSshots/nctxNCTX_cscCSC_ctpCTP/seedSEED
run_name() {
    echo "${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed$1"
}

# run_train_py SEED OUTPUT_DIR [FLAG ...] [-- KEY VALUE ...]: train.py with this run's configs and
# method options; FLAGs go before the options, extra KEY VALUE pairs after them. The script's
# SIGTERM and Ctrl-C reach train.py (run_child.sh).
run_train_py() {
    local seed=$1 out=$2
    shift 2
    local flags=()
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        flags+=("$1")
        shift
    done
    if [ "$#" -gt 0 ]; then
        shift
    fi
    # train.py words its advice for the script the user typed (main.sh, eval.sh), not for itself.
    run_child env CLIP_AGIQA_LAUNCHER="$(basename "$0")" "$PYTHON" "${REPO}/train.py" \
        --root "${DATA}" \
        --seed "${seed}" \
        --trainer "${TRAINER}" \
        --dataset-config-file "${DATASET_CONFIG}" \
        --config-file "${METHOD_CONFIG}" \
        --output-dir "${out}" \
        "${flags[@]}" \
        "${METHOD_OPTS[@]}" \
        "$@"
}
