#!/usr/bin/env bash
# Offline demo of CLIP-AGIQA on CPU, nothing to download:
#   1. builds a small synthetic dataset in the AGIQA-3K layout whose MOS follows visible
#      degradations (blur, noise, JPEG) -- datasets/synthetic.py;
#   2. uses the real CLIP ViT-B/16 when its weights are already cached (a few epochs: the real
#      encoder runs at a few images/s on a CPU), else a tiny CLIP with random weights;
#   3. trains and tests with train.py, then prints SRCC/PLCC/KRCC of the test split.
# Environment: PYTHON (default python3), DEMO_DIR (default output/demo), DEMO_IMAGES (200),
# DEMO_EPOCHS (default 20 with the tiny CLIP, 3 with the real ViT-B/16).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WORK=${DEMO_DIR:-output/demo}
N_IMAGES=${DEMO_IMAGES:-200}
mkdir -p "$WORK"

if [ ! -f "$WORK/data/AGIQA-3K/data.csv" ]; then
  echo "[demo] writing $N_IMAGES synthetic images to $WORK/data/AGIQA-3K"
  "$PYTHON" -m datasets.synthetic agiqa --root "$WORK/data" --n "$N_IMAGES" \
    --sizes 256x256,320x240,240x320
fi

# Prints "<weights> <epochs>": the cached ViT-B/16 (never downloads here) or tiny random weights.
read -r WEIGHTS EPOCHS < <(HF_HUB_OFFLINE=1 "$PYTHON" - "$WORK" <<'PY'
import os, sys, warnings
from clip.random_weights import save_random_weights
from clip.weights import WeightsNotFoundError, resolve_weights
work = sys.argv[1]
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(resolve_weights("ViT-B/16"), 3)
except WeightsNotFoundError:
    tiny = os.path.join(work, "tiny-vit-random.pt")
    if not os.path.isfile(tiny):
        save_random_weights(tiny, "tiny-vit", seed=0)
    print(tiny, 20)
PY
)
EPOCHS=${DEMO_EPOCHS:-$EPOCHS}
echo "[demo] CLIP weights: $WEIGHTS ($EPOCHS epochs)"

RUN="$WORK/run"
"$PYTHON" train.py --root "$WORK/data" --seed 1 --trainer CLIP_AGIQA \
  --dataset-config-file configs/datasets/AGIQA.yaml \
  --config-file configs/demo/cpu.yaml \
  --output-dir "$RUN" \
  MODEL.BACKBONE.NAME "$WEIGHTS" OPTIM.MAX_EPOCH "$EPOCHS"

"$PYTHON" - "$RUN/results.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
metrics = result["final"]["metrics"]
print("[demo] test split: " + ", ".join(f"{k.upper()} {metrics[k]:.3f}" for k in ("srcc", "plcc", "krcc")))
print(f"[demo] results: {sys.argv[1]}")
PY
