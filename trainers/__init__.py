"""CLIP-AGIQA method: importing this package registers the "CLIP_AGIQA" trainer in dassl's
`TRAINER_REGISTRY`; `add_trainer_config(cfg)` declares its config keys; `ModelSpec` describes a
model (built from a config, saved in every checkpoint); `load_scorer(run_dir)` scores images
with a trained run."""

from .method.model_spec import ModelSpec, add_trainer_config, check_trainer_config
from .clip_agiqa import CLIP_AGIQA
from .inference.scorer import Scorer, load_scorer

__all__ = ["ModelSpec", "add_trainer_config", "check_trainer_config", "CLIP_AGIQA", "Scorer",
           "load_scorer"]
