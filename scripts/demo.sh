#!/usr/bin/env bash
# Offline demo of CLIP-AGIQA on CPU, nothing to download:
#   1. builds a small synthetic dataset in the AGIQA-3K layout whose MOS follows visible
#      degradations (blur, noise, JPEG and a haze) -- datasets/synthetic.py;
#   2. uses the real CLIP ViT-B/16 when its weights are already cached (a few epochs: the real
#      encoder runs at a few images/s on a CPU), else a tiny CLIP with random weights;
#   3. trains and tests with train.py (configs/demo/cpu.yaml), then prints SRCC/PLCC/KRCC of the
#      test split, where the run's files are, the path of its report.html and what to try next.
# It prints about 15 lines (a progress line every quarter of the training); train.py's full
# output is in the run's log.txt, and --verbose (or VERBOSE=1) shows it here too.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash scripts/demo.sh [--dir DIR] [--images N] [--epochs E] [--force] [--verbose]
  --dir DIR     work folder: synthetic data in DIR/data, the run in DIR/run (default
                output/demo in the repository; a relative DIR is taken from the current folder)
  --images N    synthetic images to write (default 200; 80% train, 20% test)
  --epochs E    training epochs (default 20 with the tiny random CLIP, 3 with a cached ViT-B/16)
  --force       start over: rebuild the images and move a previous run in DIR/run aside
                (into DIR/run/previous-<time>/) instead of reusing it
  --verbose     show train.py's full output (otherwise only in DIR/run/log.txt)
  -h, --help    this text
Environment: PYTHON (default python3); DEMO_DIR, DEMO_IMAGES, DEMO_EPOCHS and VERBOSE=1 set the
defaults of --dir, --images, --epochs and --verbose. Run again with the same settings: the
finished run is reported.
EOF
}

PYTHON=${PYTHON:-python3}
PYTHON=${PYTHON%$'\r'}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A CR that a wrapper script with Windows line ends leaves at the end of an argument is dropped.
set -- "${@%$'\r'}"
# shown NAME: NAME as error lines show it (dassl/names.py: escaped when it holds invisible
# characters).
shown() { "$PYTHON" "$REPO/dassl/names.py" "$1"; }
source "$REPO/scripts/run_child.sh"  # run_child: a SIGTERM to the demo reaches train.py
WORK=${DEMO_DIR:-$REPO/output/demo}
WORK=${WORK%$'\r'}
N_IMAGES=${DEMO_IMAGES:-200}
EPOCHS_WANTED=${DEMO_EPOCHS:-}
FORCE=0
VERBOSE=${VERBOSE:-0}
HAZE=0.6  # fraction of white mixed in at the worst quality (datasets/synthetic.py)
while [ "$#" -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --force) FORCE=1; shift ;;
        --verbose) VERBOSE=1; shift ;;
        --dir|--images|--epochs)
            if [ "$#" -lt 2 ]; then
                echo "error: $1 needs a value" >&2; usage >&2; exit 2
            fi
            case "$1" in
                --dir) WORK=$2 ;;
                --images) N_IMAGES=$2 ;;
                --epochs) EPOCHS_WANTED=$2 ;;
            esac
            shift 2 ;;
        *) echo "error: unknown argument $(shown "$1")" >&2; usage >&2; exit 2 ;;
    esac
done
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }
if ! is_count "$N_IMAGES" || [ "$N_IMAGES" -lt 10 ]; then
    echo "error: --images must be a whole number of at least 10, got $(shown "$N_IMAGES")" >&2; exit 2
fi
if [ -n "$EPOCHS_WANTED" ] && ! is_count "$EPOCHS_WANTED"; then
    echo "error: --epochs must be a positive whole number, got $(shown "$EPOCHS_WANTED")" >&2; exit 2
fi

if ! mkdir -p "$WORK" 2>/dev/null || [ ! -d "$WORK" ]; then
    echo "error: --dir $(shown "$WORK"): cannot make that folder (a file is in the way, or it is not writable)" >&2
    exit 2
fi
WORK=$(cd "$WORK" && pwd)
cd "$REPO"
echo "[demo] CLIP-AGIQA offline on synthetic images whose MOS follows visible degradations: train, test, report in $WORK"

# Prints two lines, the weights file then the epochs: the cached ViT-B/16 (never downloads here)
# or tiny random weights. One value a line, so a path with spaces stays whole.
PICKED=$(HF_HUB_OFFLINE=1 "$PYTHON" - "$WORK" <<'PY'
import os, sys, warnings
from clip.random_weights import save_random_weights
from clip.weights import WeightsNotFoundError, resolve_weights
work = sys.argv[1]
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(resolve_weights("ViT-B/16"), 3, sep="\n")
except WeightsNotFoundError:
    tiny = os.path.join(work, "tiny-vit-random.pt")
    if not os.path.isfile(tiny):
        save_random_weights(tiny, "tiny-vit", seed=0)
    print(tiny, 20, sep="\n")
PY
)
WEIGHTS=${PICKED%$'\n'*}
EPOCHS=${PICKED##*$'\n'}
EPOCHS=${EPOCHS_WANTED:-$EPOCHS}

# What the demo in DIR was made with: a run with other settings is replaced only on --force.
RUN="$WORK/run"
SETTINGS_FILE="$WORK/demo-settings.txt"
IMAGE_SETTINGS="images=$N_IMAGES haze=$HAZE"
# The config as train.py reads it (cpu.yaml over its _BASE_), so a change to either counts.
CONFIG_SUM=$("$PYTHON" -c "from dassl.config import load_config_file as f; print(f('configs/demo/cpu.yaml'))" | cksum | cut -d' ' -f1)
SETTINGS="$IMAGE_SETTINGS weights=$WEIGHTS epochs=$EPOCHS config=$CONFIG_SUM"
PREVIOUS=$(cat "$SETTINGS_FILE" 2>/dev/null || true)
if [ -e "$RUN/config.yaml" ] && [ "$PREVIOUS" != "$SETTINGS" ] && [ "$FORCE" = 0 ]; then
    echo "error: $RUN holds a demo run made with other settings (${PREVIOUS:-unknown}); add" \
         "--force to replace it (it is moved aside, not deleted) or --dir to use another folder" >&2
    exit 2
fi
TRAIN_FLAGS=()
if [ "$FORCE" = 1 ] || [ "$PREVIOUS" != "$SETTINGS" ]; then
    if [ -e "$RUN" ]; then
        TRAIN_FLAGS=(--force)
    fi
    if [ "$FORCE" = 1 ] || [ "${PREVIOUS%% weights=*}" != "$IMAGE_SETTINGS" ] \
            || [ ! -f "$WORK/data/AGIQA-3K/data.csv" ]; then
        rm -rf "$WORK/data"
        echo "[demo] writing $N_IMAGES synthetic images to $WORK/data/AGIQA-3K"
        "$PYTHON" -m datasets.synthetic agiqa --root "$WORK/data" --n "$N_IMAGES" \
            --sizes 256x256,320x240,240x320 --haze "$HAZE" >/dev/null
    fi
    echo "$SETTINGS" > "$SETTINGS_FILE"
fi

echo "[demo] CLIP weights: $WEIGHTS ($EPOCHS epochs)"
TRAIN=("$PYTHON" train.py --root "$WORK/data" --seed 1 --trainer CLIP_AGIQA
    --dataset-config-file configs/datasets/AGIQA.yaml
    --config-file configs/demo/cpu.yaml
    --output-dir "$RUN" "${TRAIN_FLAGS[@]}"
    MODEL.BACKBONE.NAME "$WEIGHTS" OPTIM.MAX_EPOCH "$EPOCHS")
if [ "$VERBOSE" = 1 ]; then
    run_child "${TRAIN[@]}"
else
    echo "[demo] training and testing with train.py (its full output: $RUN/log.txt)"
    # train.py's stdout goes to its log.txt anyway: keep one line per quarter of the training
    # (the epoch's mean loss) and that a finished run is reported as it is; its errors (stderr)
    # stay on the console.
    # (run_child: a SIGTERM to this script reaches train.py; `wait`: the filter's last lines.)
    run_child env PYTHONUNBUFFERED=1 "${TRAIN[@]}" > >(awk '
        function report() {
            if (epoch != "" && (epoch % step == 0 || epoch == total))
                printf "[demo] epoch %d/%d: mean training loss %s\n", epoch, total, loss
            fflush()
        }
        $1 == "epoch" && $3 == "batch" {
            split(substr($2, 2, length($2) - 2), at, "/")
            if (at[1] != epoch) { report() }
            epoch = at[1]; total = at[2]; step = int((total + 3) / 4)
            for (i = 4; i < NF; i++) if ($i == "loss") loss = substr($(i + 2), 2, length($(i + 2)) - 2)
            next
        }
        /^Finish training/ { report(); epoch = "" }
        /^already finished: / { print "[demo] " $0 }')
    wait
fi

"$PYTHON" - "$RUN" <<'PY'
import json, os, sys
from dassl.evaluation.metric_names import CORRELATIONS
run = sys.argv[1]
metrics = json.load(open(os.path.join(run, "results.json")))["final"]["metrics"]
print("[demo] test split: " + ", ".join(f"{k.upper()} {metrics[k]:.3f}" for k in CORRELATIONS))
print(f"[demo] run folder: {run} (results.json, predictions.csv, scatter.png, log.txt, tensorboard/)")
print(f"[demo] report page: {os.path.join(os.path.abspath(run), 'report.html')}")
print("[demo] next steps: README.md, 'Next steps' (main.sh and a sweep on synthetic data, then "
      "the real databases)")
PY
