"""IQA datasets for CLIP-AGIQA: importing this package registers "AGIQA" and "AIGCIQA2023"
in dassl's ``DATASET_REGISTRY``; ``add_dataset_config(cfg)`` declares their config keys."""

from .config import add_dataset_config
from .errors import DatasetError
from .agiqa import AGIQA
from .aigciqa2023 import AIGCIQA2023

__all__ = ["add_dataset_config", "DatasetError", "AGIQA", "AIGCIQA2023"]
