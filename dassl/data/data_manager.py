"""``DataManager`` (datasets -> loaders), ``DatasetWrapper`` and ``build_data_loader``."""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torchvision.transforms as T
from tabulate import tabulate
from torch.utils.data import DataLoader, Dataset

from dassl.utils import ConfigError, read_image

from .datasets import build_dataset
from .samplers import build_sampler
from .transforms import INTERPOLATION_MODES, build_transform


class DatasetWrapper(Dataset):
    """Reads and transforms the images of a list of ``Datum``.

    ``__getitem__`` returns a dict: ``img`` (float32 ``(3, H, W)`` after the transform; a list of
    K tensors when ``DATALOADER.K_TRANSFORMS`` = K > 1 in training; ``img``, ``img2``, ... for a
    list of transforms), ``label`` (int), ``domain`` (int), ``impath`` (str), ``index`` (int),
    ``mos`` (float; only when the datum has one) and ``img0`` (resized, un-augmented; only when
    ``DATALOADER.RETURN_IMG0``). After default collation ``mos`` is float64 ``(B,)``.
    """

    def __init__(self, cfg, data_source: list, transform=None, is_train: bool = False) -> None:
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0
        if self.k_tfm > 1 and transform is None:
            raise ValueError(f"Cannot augment the image {self.k_tfm} times because transform is None")
        self.to_tensor = None
        if self.return_img0:
            steps = [T.Resize(tuple(cfg.INPUT.SIZE),
                              interpolation=INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]),
                     T.ToTensor()]
            if "normalize" in cfg.INPUT.TRANSFORMS:
                steps.append(T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
            self.to_tensor = T.Compose(steps)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        if item.mos is not None:
            output["mos"] = item.mos
        if getattr(item, "prompt", None) is not None:
            output["prompt"] = item.prompt
        img0 = read_image(item.impath)
        if self.transform is None:
            output["img"] = img0
        elif isinstance(self.transform, (list, tuple)):
            for i, tfm in enumerate(self.transform):
                output["img" if i == 0 else f"img{i + 1}"] = self._transform_image(tfm, img0)
        else:
            output["img"] = self._transform_image(self.transform, img0)
        if self.to_tensor is not None:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0):
        images = [tfm(img0) for _ in range(self.k_tfm)]
        return images[0] if len(images) == 1 else images


def build_data_loader(cfg, sampler_type: str = "SequentialSampler", data_source: Optional[list] = None,
                      batch_size: int = 64, n_domain: int = 0, n_ins: int = 2, tfm=None,
                      is_train: bool = True, dataset_wrapper=None) -> DataLoader:
    """DataLoader over ``data_source`` with the given sampler and ``DATALOADER.NUM_WORKERS``.

    Training loaders drop the last incomplete batch iff ``len(data_source) >= batch_size``;
    memory is pinned only when CUDA is actually used. An empty loader raises ``ValueError``.
    """
    if data_source is None:
        raise ValueError("build_data_loader needs a data_source")
    sampler = build_sampler(sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size,
                            n_domain=n_domain, n_ins=n_ins)
    wrapper = dataset_wrapper or DatasetWrapper
    with warnings.catch_warnings():
        # torch checks the worker count against the CPUs when a loader is built and again when
        # it starts its workers. Only the second is about workers that run: a trainer may
        # replace this loader before any use (a trainer with its own data path does), and then
        # "This DataLoader will create N worker processes" was noise on every run.
        warnings.filterwarnings("ignore", message="This DataLoader will create",
                                category=UserWarning)
        loader = DataLoader(
            wrapper(cfg, data_source, transform=tfm, is_train=is_train),
            batch_size=batch_size,
            sampler=sampler,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
            drop_last=is_train and len(data_source) >= batch_size,
            pin_memory=bool(cfg.USE_CUDA) and torch.cuda.is_available(),
        )
    if len(loader) == 0:
        raise ConfigError(f"Data loader is empty: {len(data_source)} items, batch size {batch_size}")
    return loader


class DataManager:
    """Builds the dataset (``DATASET.NAME``), the transforms and the loaders.

    Attributes: ``dataset``, ``train_loader_x`` (None with ``DATASET.SPLIT_MODE all``,
    which has no training split, and for an evaluation: ``training`` False),
    ``train_loader_u``, ``test_loader`` (None only with ``DATASET.TEST_RATIO 0``) (None
    without ``train_u``),
    ``val_loader`` (None without ``val``), ``test_loader``, ``tfm_train``, ``tfm_test``,
    ``num_classes``, ``num_source_domains``, ``lab2cname``.
    """

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None,
                 training: bool = True) -> None:
        """``training`` False (an evaluation): no training transform or loaders are built (the
        training images are never read)."""
        dataset = build_dataset(cfg)
        self.tfm_train = None if not training else (
            build_transform(cfg, is_train=True) if custom_tfm_train is None else custom_tfm_train)
        self.tfm_test = (build_transform(cfg, is_train=False) if custom_tfm_test is None
                         else custom_tfm_test)
        # SPLIT_MODE "all" (every row tested, for evaluating a model trained elsewhere) is the
        # one configuration without a training split.
        evaluation_only = not training or cfg.DATASET.get("SPLIT_MODE", "") == "all"
        if not dataset.train_x and not evaluation_only:
            raise ConfigError(f"Dataset {cfg.DATASET.NAME!r} has an empty training split: check "
                              "DATASET.TEST_RATIO / VAL_RATIO and the label file")
        # TEST_RATIO 0 (train on every row, report on the validation part) has no test split.
        no_test_part = float(cfg.DATASET.get("TEST_RATIO", 1.0)) == 0.0
        if not dataset.test and not no_test_part:
            raise ConfigError(f"Dataset {cfg.DATASET.NAME!r} has an empty test split: check "
                              "DATASET.TEST_RATIO and the label file")
        dl = cfg.DATALOADER

        self.train_loader_x = None if not (training and dataset.train_x) else build_data_loader(
            cfg, sampler_type=dl.TRAIN_X.SAMPLER, data_source=dataset.train_x,
            batch_size=dl.TRAIN_X.BATCH_SIZE, n_domain=dl.TRAIN_X.N_DOMAIN, n_ins=dl.TRAIN_X.N_INS,
            tfm=self.tfm_train, is_train=True, dataset_wrapper=dataset_wrapper)

        self.train_loader_u = None
        if training and dataset.train_u:
            u = dl.TRAIN_X if dl.TRAIN_U.SAME_AS_X else dl.TRAIN_U
            self.train_loader_u = build_data_loader(
                cfg, sampler_type=u.SAMPLER, data_source=dataset.train_u, batch_size=u.BATCH_SIZE,
                n_domain=u.N_DOMAIN, n_ins=u.N_INS, tfm=self.tfm_train, is_train=True,
                dataset_wrapper=dataset_wrapper)

        self.val_loader = None
        if dataset.val:
            self.val_loader = build_data_loader(
                cfg, sampler_type=dl.TEST.SAMPLER, data_source=dataset.val,
                batch_size=dl.TEST.BATCH_SIZE, tfm=self.tfm_test, is_train=False,
                dataset_wrapper=dataset_wrapper)

        self.test_loader = None if not dataset.test else build_data_loader(
            cfg, sampler_type=dl.TEST.SAMPLER, data_source=dataset.test,
            batch_size=dl.TEST.BATCH_SIZE, tfm=self.tfm_test, is_train=False,
            dataset_wrapper=dataset_wrapper)

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def num_source_domains(self) -> int:
        return self._num_source_domains

    @property
    def lab2cname(self) -> dict:
        return self._lab2cname

    def show_dataset_summary(self, cfg) -> None:
        """Print a table: dataset name, number of classes and split sizes."""
        ds = self.dataset
        table = [["Dataset", cfg.DATASET.NAME], ["# classes", f"{self.num_classes:,}"],
                 ["# train_x", f"{len(ds.train_x):,}"]]
        if ds.train_u:
            table.append(["# train_u", f"{len(ds.train_u):,}"])
        if ds.val:
            table.append(["# val", f"{len(ds.val):,}"])
        table.append(["# test", f"{len(ds.test):,}"])
        print(tabulate(table))
