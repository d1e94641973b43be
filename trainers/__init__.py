"""CLIP-AGIQA method: importing this package registers the "CLIP_AGIQA" trainer in dassl's
`TRAINER_REGISTRY`; `add_trainer_config(cfg)` declares its config keys; `load_scorer(run_dir)`
scores images with a trained run."""

from .config import add_trainer_config, check_trainer_config
from .clip_agiqa import CLIP_AGIQA
from .scorer import Scorer, load_scorer

__all__ = ["add_trainer_config", "check_trainer_config", "CLIP_AGIQA", "Scorer", "load_scorer"]
