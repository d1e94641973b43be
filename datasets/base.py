"""Dassl-facing base class: turns a ``LevelledData`` into ``Datum`` lists on a ``DatasetBase``,
after checking that every image decodes (``DATASET.CHECK_FILES``, or ``SKIP_BAD_IMAGES``).

With the check off, an image that fails later (in either training pipeline) stops the run with
one ``error: Cannot read image file PATH: reason`` line and exit status 2
(``dassl.utils.ImageReadError``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dassl.data.datasets import DatasetBase, Datum
from dassl.utils import find_unreadable_images, format_bad_images

from .core import DatasetOptions, LevelledData, read_options
from .errors import DatasetError, MissingDataError
from .registry import DATABASES

__all__ = ["LevelDataset", "to_datums", "drop_unreadable"]

_SHOW_BAD = 10  # unreadable files an error message lists


def to_datums(part: pd.DataFrame, data: LevelledData,
              generator_of: Callable[[str], str | None] | None = None) -> list[Datum]:
    """One ``Datum`` per row of ``part``, in order.

    ``name`` is the image name exactly as the label file gives it (split files print it),
    ``impath`` the resolved path (in the row's ``folder`` when the table has that column),
    ``mos`` a Python float, ``label`` the level index, ``classname`` its level name and
    ``prompt`` the generation prompt (None without one), ``generator`` the database's
    ``generator_of(name)`` (None without a rule). Existence was already checked in bulk,
    so ``check_file`` is off.
    """
    prompts = part["prompt"] if "prompt" in part else [None] * len(part)
    return [
        Datum(impath=str(folder / name), label=int(label), classname=data.level_names[int(label)],
              mos=float(mos), name=name, prompt=prompt,
              generator=generator_of(name) if generator_of else None)
        for folder, name, mos, label, prompt in zip(image_folders(part, data.image_dir),
                                                    part["name"], part["mos"], part["label"],
                                                    prompts)
    ]


def image_folders(part: pd.DataFrame, image_dir: Path) -> list[Path]:
    """The folder of each row's image: its ``folder`` column when present, else ``image_dir``."""
    if "folder" in part:
        return [Path(f) for f in part["folder"]]
    return [image_dir] * len(part)


def drop_unreadable(tables: dict[str, pd.DataFrame], image_dir: Path,
                    skip: bool) -> tuple[dict[str, pd.DataFrame], list[tuple[str, str]]]:
    """Decode-check every image of every part before training (see
    ``dassl.utils.image_check``; about 2-5 ms per image, spread over a few threads).

    ``skip`` False: any unreadable image raises one ``DatasetError`` naming the first ones.
    ``skip`` True (``DATASET.SKIP_BAD_IMAGES``): they are removed from their part, after the
    split, so every other image keeps its reference split; a warning with the count and the
    files goes to the log. Returns the (filtered) tables and the ``(path, reason)`` list.
    """
    paths = [str(folder / name) for table in tables.values()
             for folder, name in zip(image_folders(table, image_dir), table["name"])]
    bad = find_unreadable_images(paths)
    if not bad:
        return tables, []
    listing = format_bad_images(bad, limit=len(bad) if skip else _SHOW_BAD)
    if not skip:
        raise DatasetError(
            f"{len(bad)} of {len(paths)} images cannot be read (truncated or corrupt files):\n"
            f"{listing}\nReplace them, or set DATASET.SKIP_BAD_IMAGES True to train without "
            "them (they are then listed in the log)")
    bad_paths = {path for path, _ in bad}
    kept, dropped = {}, []
    for part, table in tables.items():
        mask = pd.Series([str(folder / name) in bad_paths for folder, name in
                          zip(image_folders(table, image_dir), table["name"])], dtype=bool)
        kept[part] = table[~mask].reset_index(drop=True)
        dropped.append(f"{part} {int(mask.sum())}")
    message = (f"DATASET.SKIP_BAD_IMAGES: skipping {len(bad)} of {len(paths)} images that cannot "
               f"be read ({', '.join(dropped)}):\n{listing}")
    # One plain line (and the list) on the console and in the log, not a Python warning too.
    print(f"WARNING: {message}")
    return kept, bad


class LevelDataset(DatasetBase):
    """A MOS dataset whose items carry a float ``mos`` and a quality-level label.

    Subclasses implement ``load(options) -> LevelledData``. Attributes after construction:
    ``task`` (str), ``thresholds`` (list of float, the MOS cut points used), ``dataset_dir``
    (the image folder), plus DatasetBase's ``train_x``/``val``/``test`` and ``classnames`` =
    ``DATASET.LEVEL_NAMES``, and ``skipped_images`` (``(path, reason)`` of the unreadable images
    left out, see ``drop_unreadable``), ``provenance`` (where labels and split came from, see
    ``LevelledData``). Nothing is written to disk. Like upstream,
    ``DATASET.NUM_SHOTS`` is not applied: the whole training split is used.
    """

    def __init__(self, cfg: Any) -> None:
        options = read_options(cfg)
        name = type(self).__name__  # the registered dataset name, the registry's key
        # Imported here, not at the top: `python -m datasets.fetch` runs that module as __main__,
        # and a copy already imported by the package would make runpy warn on every call.
        from .fetch import fetch_if_absent, repair_hint

        if options.fetch:
            fetch_if_absent(name, options.root)
        try:
            data = self.load(options)
        except MissingDataError as exc:
            raise MissingDataError(f"{exc}{repair_hint(name, options.root)}") from None
        self.task = data.task
        self.thresholds = list(data.thresholds)
        self.dataset_dir = str(data.image_dir)
        self.provenance = dict(data.provenance)
        tables = dict(data.parts)
        self.skipped_images: list[tuple[str, str]] = []
        # Skipping needs to know which images fail, so SKIP_BAD_IMAGES runs the decode check
        # even with CHECK_FILES False.
        if options.check_files or options.skip_bad_images:
            checked = {part: tables[part] for part in options.checked_parts()}
            checked, self.skipped_images = drop_unreadable(checked, data.image_dir,
                                                           options.skip_bad_images)
            tables.update(checked)
        database = DATABASES.get(name)
        generator_of = database.generator if database else None
        parts = {part: to_datums(table, data, generator_of) for part, table in tables.items()}
        super().__init__(train_x=parts["train"], val=parts["val"] or None, test=parts["test"],
                         classnames=list(data.level_names))

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        raise NotImplementedError
