"""scripts/main.sh trains AGIQA-1K and AIGIQA-20K end to end: synthetic images named as the
real ones in the README's layout, a tiny random-weights CLIP passed after `--`, one epoch."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic_databases import make_synthetic_agiqa1k, make_synthetic_aigiqa20k

REPO = Path(__file__).resolve().parents[1]
AGIQA1K_LABELS = REPO / "tests" / "data" / "agiqa1k" / "AIGC_MOS_Zscore.xlsx"


def write_database(dataset: str, data: Path) -> int:
    """The database under `data` (DATA of main.sh); returns its number of labelled images."""
    if dataset == "AGIQA1K":  # DATA/AGIQA-1K/AIGC_MOS_Zscore.xlsx + file/<name>.jpg
        make_synthetic_agiqa1k(data, AGIQA1K_LABELS, n_images=40, size=(40, 40), rendered=True)
        return 40
    # DATA/AIGIQA-20K/info_{train,val,test}.xlsx + train/ val/ test/ <Model>_<4 digits>.png
    make_synthetic_aigiqa20k(data, {"train": 1, "val": 1, "test": 1}, images="split",
                             size=(40, 40), rendered=True)
    return 40


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["AGIQA1K", "AIGIQA20K"])
def test_main_sh_runs_end_to_end(dataset, tiny_assets, tmp_path):
    data = tmp_path / "data"
    labelled = write_database(dataset, data)
    env = dict(os.environ, PYTHON=sys.executable, DATA=str(data), OMP_NUM_THREADS="1")
    done = subprocess.run(
        ["bash", str(REPO / "scripts/main.sh"), dataset, "vit_b16_ep100", "end", "4", "1",
         "False", "1", "--", "MODEL.BACKBONE.NAME", tiny_assets["weights"], "OPTIM.MAX_EPOCH",
         "1", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
         "TRAINER.CLIP_AGIQA.PREC", "fp32", "TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET", "True"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "output" / dataset / "CLIP_AGIQA" / "vit_b16_ep100_1shots" / \
        "nctx4_cscFalse_ctpend" / "seed1"
    results = json.loads((run / "results.json").read_text())
    assert results["dataset"] == dataset and results["last"]["epoch"] == 1
    # The paper's protocol (main.sh), the default 80/20 split of the labelled rows.
    assert results["final_model"] == "best_val" and results["selected"]["selected_on"] == "test"
    assert results["final"]["n_images"] == labelled // 5
    for block in ("last", "selected"):
        srcc = results[block]["metrics"]["srcc"]
        assert srcc is not None and math.isfinite(srcc) and -1.0 <= srcc <= 1.0
    config = (run / "config.yaml").read_text()
    assert tiny_assets["weights"] in config  # the options after "--" reached train.py
