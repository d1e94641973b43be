"""Build a CLIP_AGIQA trainer in-process on tiny assets (shared by the trainer test modules).

Test modules import it by name (pytest puts `tests/` on `sys.path`).
"""
from __future__ import annotations

import torch

import datasets  # noqa: F401  (registers the datasets)
import trainers  # noqa: F401  (registers the trainer)
from dassl.config import get_cfg_default
from dassl.engine import build_trainer
from datasets import add_dataset_config
from trainers import add_trainer_config


def build_tiny_trainer(root: str, weights: str, out_dir, *opts: str, **options):
    """A trainer on the synthetic AGIQA-3K at `root` with the CLIP weights file `weights`.

    Base settings: 4 context tokens, no worker processes, quiet; `opts` (KEY VALUE ...) override
    them; `options` go to the trainer's constructor (e.g. `trained`). The torch RNG is seeded right before the model is built, so every trainer made with the
    same options starts from the same context vectors and head.
    """
    cfg = get_cfg_default()
    add_dataset_config(cfg)
    add_trainer_config(cfg)
    cfg.merge_from_list([
        "DATASET.NAME", "AGIQA", "DATASET.ROOT", root, "OUTPUT_DIR", str(out_dir),
        "TRAINER.NAME", "CLIP_AGIQA", "MODEL.BACKBONE.NAME", weights,
        "TRAINER.CLIP_AGIQA.N_CTX", "4", "DATALOADER.NUM_WORKERS", "0", "OPTIM.NAME", "sgd",
        "VERBOSE", "False",
    ] + [str(x) for x in opts])
    cfg.freeze()
    torch.manual_seed(0)
    return build_trainer(cfg, **options)
