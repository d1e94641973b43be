"""Dataset base classes and registry (concrete datasets live in the top-level ``datasets``)."""
from .base_dataset import DatasetBase, Datum
from .build import DATASET_REGISTRY, build_dataset

__all__ = ["DATASET_REGISTRY", "build_dataset", "DatasetBase", "Datum"]
