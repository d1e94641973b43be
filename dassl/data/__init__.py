"""Data: datasets, transforms, samplers and loaders."""
from .data_manager import DataManager, DatasetWrapper, build_data_loader
from .samplers import check_dataloader_cfg

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader", "check_dataloader_cfg"]
