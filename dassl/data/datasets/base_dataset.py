"""``Datum`` (one sample record) and ``DatasetBase`` (container of the splits)."""
from __future__ import annotations

import csv
import io
import os
import random
from collections import defaultdict
from typing import Optional, Sequence

from dassl.utils import atomic_write_text, mkdir_if_missing


class Datum:
    """One sample: image path, class label, domain, class name, optional MOS and name.

    Args:
        impath: image path.
        label: class index (quality level for IQA datasets).
        domain: domain index.
        classname: name of ``label``.
        mos: mean opinion score (stored as float) or None.
        name: image name as the label file gives it; defaults to ``basename(impath)``.
        prompt: the text the image was generated from, or None when the dataset has none.
        generator: the model that generated the image (the database's rule on its name), or
            None when the database has no such rule.
        check_file: raise ``FileNotFoundError`` at construction if ``impath`` is not a file.
    """

    def __init__(self, impath: str = "", label: int = 0, domain: int = 0, classname: str = "",
                 mos: Optional[float] = None, name: Optional[str] = None,
                 check_file: bool = False, prompt: Optional[str] = None,
                 generator: Optional[str] = None) -> None:
        if not isinstance(impath, str):
            raise TypeError(f"impath must be a str, got {type(impath).__name__}")
        if check_file and not os.path.isfile(impath):
            raise FileNotFoundError(f"No file found at {impath}")
        self._impath = impath
        self._label = label
        self._domain = domain
        self._classname = classname
        self._mos = None if mos is None else float(mos)
        self._name = os.path.basename(impath) if name is None else name
        self._prompt = None if prompt is None else str(prompt)
        self._generator = None if generator is None else str(generator)

    @property
    def impath(self) -> str:
        return self._impath

    @property
    def label(self) -> int:
        return self._label

    @property
    def domain(self) -> int:
        return self._domain

    @property
    def classname(self) -> str:
        return self._classname

    @property
    def mos(self) -> Optional[float]:
        return self._mos

    @property
    def name(self) -> str:
        return self._name

    @property
    def prompt(self) -> Optional[str]:
        return self._prompt

    @property
    def generator(self) -> Optional[str]:
        return self._generator

    def __repr__(self) -> str:
        return (f"Datum(impath={self._impath!r}, label={self._label}, domain={self._domain}, "
                f"classname={self._classname!r}, mos={self._mos}, name={self._name!r})")


class DatasetBase:
    """Holds ``train_x`` (labelled train), ``train_u`` (unlabelled), ``val`` and ``test`` lists of
    :class:`Datum`.

    ``classnames`` (ordered list), when given, defines ``classnames``, ``lab2cname`` (index ->
    name) and ``num_classes``; otherwise they are derived from ``train_x`` as in Dassl.
    """

    dataset_dir = ""  # subclasses: folder under DATASET.ROOT
    domains: list = []  # subclasses: domain names, if any

    def __init__(self, train_x: Optional[list] = None, train_u: Optional[list] = None,
                 val: Optional[list] = None, test: Optional[list] = None,
                 classnames: Optional[Sequence[str]] = None) -> None:
        self._train_x = train_x
        self._train_u = train_u
        self._val = val
        self._test = test
        if classnames is not None:
            self._classnames = list(classnames)
            self._lab2cname = dict(enumerate(self._classnames))
            self._num_classes = len(self._classnames)
        else:
            self._num_classes = self.get_num_classes(train_x or [])
            self._lab2cname, self._classnames = self.get_lab2cname(train_x or [])

    @property
    def train_x(self):
        return self._train_x

    @property
    def train_u(self):
        return self._train_u

    @property
    def val(self):
        return self._val

    @property
    def test(self):
        return self._test

    @property
    def lab2cname(self) -> dict:
        return self._lab2cname

    @property
    def classnames(self) -> list:
        return self._classnames

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @staticmethod
    def get_num_classes(data_source: list) -> int:
        """``max(label) + 1`` over ``data_source`` (0 when empty)."""
        return max((item.label for item in data_source), default=-1) + 1

    @staticmethod
    def get_lab2cname(data_source: list) -> tuple[dict, list]:
        """Label -> class name mapping (first name seen per label) and names sorted by label."""
        mapping: dict = {}
        for item in data_source:
            mapping.setdefault(item.label, item.classname)
        labels = sorted(mapping)
        return {lab: mapping[lab] for lab in labels}, [mapping[lab] for lab in labels]

    def save_splits(self, directory: str) -> None:
        """Write ``train.csv``, ``val.csv`` (only when there is a val split; a stale one is
        removed) and ``test.csv`` with columns ``name,mos`` in dataset order, atomically."""
        mkdir_if_missing(directory)
        splits = {"train": self._train_x, "val": self._val, "test": self._test}
        for split, items in splits.items():
            fpath = os.path.join(directory, f"{split}.csv")
            if not items:
                if split == "val" and os.path.exists(fpath):
                    os.remove(fpath)
                if split == "val":
                    continue
                items = []
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["name", "mos"])
            for item in items:
                writer.writerow([item.name, "" if item.mos is None else repr(item.mos)])
            atomic_write_text(fpath, buf.getvalue())

    def generate_fewshot_dataset(self, *data_sources, num_shots: int = -1, repeat: bool = False):
        """Sample ``num_shots`` items per label from each source (Python ``random``).

        ``num_shots < 1`` returns the input unchanged. Labels with fewer items keep all of them,
        or are sampled with replacement when ``repeat``. Returns a list for one source, else a
        list of lists.
        """
        if num_shots < 1:
            return data_sources[0] if len(data_sources) == 1 else list(data_sources)
        print(f"Creating a {num_shots}-shot dataset")
        output = []
        for data_source in data_sources:
            sampled = []
            for items in self.split_dataset_by_label(data_source).values():
                if len(items) >= num_shots:
                    sampled.extend(random.sample(items, num_shots))
                else:
                    sampled.extend(random.choices(items, k=num_shots) if repeat else items)
            output.append(sampled)
        return output[0] if len(output) == 1 else output

    @staticmethod
    def split_dataset_by_label(data_source: list) -> dict:
        """Label -> list of items (first-seen label order)."""
        output = defaultdict(list)
        for item in data_source:
            output[item.label].append(item)
        return output

    @staticmethod
    def split_dataset_by_domain(data_source: list) -> dict:
        """Domain -> list of items (first-seen domain order)."""
        output = defaultdict(list)
        for item in data_source:
            output[item.domain].append(item)
        return output
