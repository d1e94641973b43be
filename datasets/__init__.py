"""IQA datasets for CLIP-AGIQA: importing this package registers "AGIQA", "AGIQA1K",
"AIGCIQA2023" and "AIGIQA20K" in dassl's ``DATASET_REGISTRY``; ``add_dataset_config(cfg)``
declares their config keys. ``registry.py`` holds each database's facts once (folder, configs,
label columns, licence, download sources); ``python -m datasets.fetch`` downloads them, verified."""

from .config import add_dataset_config
from .errors import DatasetError
from .agiqa import AGIQA
from .agiqa1k import AGIQA1K
from .aigciqa2023 import AIGCIQA2023
from .aigiqa20k import AIGIQA20K

__all__ = ["add_dataset_config", "DatasetError", "AGIQA", "AGIQA1K", "AIGCIQA2023", "AIGIQA20K"]
