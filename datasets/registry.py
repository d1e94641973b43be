"""The databases this project reads: one entry per database, the one place their facts live.

Each ``Database`` says what the database is (title, reference, licence, origin), where it lies
under ``DATASET.ROOT`` (``folder``), which dataset yamls of ``configs/datasets/`` use it
(``configs``), the label-file columns a user's copy has (``name_column``, ``task_columns``: read
by the loaders and by ``score.py --labels``), the text of the README's database table, and where
``python -m datasets.fetch`` gets its files (``sources``, each with exact size and SHA-256).
The loaders (``agiqa.py`` ...), ``scripts/main.sh --help``, ``score.py`` and the README table
(``python datasets/registry.py --update-readme README.md`` writes it,
``tests/test_registry.py`` checks it) read it.

This module imports nothing but the standard library, so the shell scripts run it as a file
(``python datasets/registry.py --help-lines``) without importing the loaders.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

try:
    from dassl.names import shown  # standard library only, like this module
except ImportError:  # run as a file (the shell scripts): the repository root is not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from dassl.names import shown

__all__ = ["Source", "Database", "generator_before_first", "generator_before_last",
           "aigciqa2023_generator", "DATABASES", "by_config", "database_names", "config_names",
           "readme_table", "with_readme_table", "hub_url", "HF_DEFAULT_ENDPOINT", "PRODUCT_DATA"]

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
# Files this repository ships for users (not for its tests): licence and source in its README.
PRODUCT_DATA = Path(__file__).resolve().parent / "data"


def hub_url(repo: str, revision: str, path: str, endpoint: str | None = None) -> str:
    """Download URL of a file of a Hugging Face *dataset* repository:
    ``{endpoint}/datasets/{repo}/resolve/{revision}/{path}``; the endpoint is ``HF_ENDPOINT``
    when set (mirrors, e.g. for users in mainland China, as pyiqa advises), else huggingface.co."""
    base = (endpoint or os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")
    return f"{base}/datasets/{repo}/resolve/{revision}/{path}"


@dataclass(frozen=True)
class Source:
    """One published file of a database.

    ``name``: the file's name (also the key of a manifest override, see ``datasets.fetch``);
    ``size`` in bytes and ``sha256`` (64 hex digits) as published; ``licence`` of this copy;
    either ``hub`` = ``(repo, revision, path)`` of a Hugging Face dataset repository (its URL
    follows ``HF_ENDPOINT``) or ``url``; or ``bundled`` = a file under ``datasets/data/`` that
    this repository ships (nothing to download). ``unpack``: a zip archive whose members go
    into the database folder; otherwise the file is saved there as ``name``.
    """

    name: str
    size: int
    sha256: str
    licence: str
    hub: tuple[str, str, str] | None = None
    url: str = ""
    bundled: str = ""
    unpack: bool = False

    def location(self) -> str:
        """Where the file comes from: its URL, or the bundled file's path."""
        if self.bundled:
            return str(PRODUCT_DATA / self.bundled)
        return hub_url(*self.hub) if self.hub else self.url


def _stem(name: str) -> str:
    """The file name of ``name`` (a label file may give a relative path) without its suffix."""
    return os.path.splitext(os.path.basename(name.replace("\\", "/")))[0]


def generator_before_first(name: str) -> str | None:
    """The generator of an image named ``GENERATOR_rest.ext``: the part before the first ``_``
    (AGIQA-3K ``midjourney_normal_001.jpg`` -> ``midjourney``); None without a ``_``."""
    stem = _stem(name)
    return stem.split("_", 1)[0] if "_" in stem else None


def generator_before_last(name: str) -> str | None:
    """The generator of an image named ``GENERATOR_index.ext`` whose generator may itself hold
    ``_`` (AIGIQA-20K ``SDXL_Turbo_12.jpg`` -> ``SDXL_Turbo``); None without a ``_``."""
    stem = _stem(name)
    return stem.rsplit("_", 1)[0] if "_" in stem else None


# AIGCIQA2023's image ``i.png`` by index, 400 per model (pic-index.xlsx of the official
# repository wangjiarui153/AIGCIQA2023).
AIGCIQA2023_GENERATORS = ("Controlnet", "DALLE", "Glide", "Lafite", "stable-diffusion",
                          "Unidiffuser")
AIGCIQA2023_PER_GENERATOR = 400


def aigciqa2023_generator(name: str) -> str | None:
    """The generator of AIGCIQA2023's ``i.png``: index 0-399 Controlnet, 400-799 DALLE, ...,
    2000-2399 Unidiffuser; None for a name that is not such an index."""
    stem = _stem(name)
    if not stem.isdigit():
        return None
    block = int(stem) // AIGCIQA2023_PER_GENERATOR
    return AIGCIQA2023_GENERATORS[block] if block < len(AIGCIQA2023_GENERATORS) else None


@dataclass(frozen=True)
class Database:
    """One database: see the module docstring. ``task_columns`` maps each task to its MOS column
    in the database's own label file (the first task is the default); ``readme`` holds the cells
    of its README table row (images / label rows, origin, default split); ``manual``: how to get
    it by hand when it has no verified ``sources``; ``generator``: the rule that gives an
    image's generator (its model) from its name as the label file gives it, None where the
    database has no such rule (results.json's ``final.per_generator`` reads it)."""

    name: str
    title: str
    reference: str
    folder: str
    configs: tuple[str, ...]
    name_column: str
    task_columns: dict[str, str]
    licence: str
    origin: str
    images: str
    default_split: str
    sources: tuple[Source, ...] = ()
    manual: str = ""
    generator: Callable[[str], str | None] | None = None

    def download_size(self) -> int:
        """Bytes to download (bundled files excluded)."""
        return sum(s.size for s in self.sources if not s.bundled)


# AGIQA-3K (Li et al., "AGIQA-3K: An Open Database for AI-Generated Image Quality Assessment",
# TCSVT 2023; GitHub lcysyzxdxc/AGIQA-3k-Database, MIT). Facts of issue 23: the images as
# AGIQA-3K.zip of the Hugging Face dataset repository chaofengc/IQA-PyTorch-Datasets (pyiqa's),
# revision e874459a..., 97,950,738 bytes (the same blob is in IntMeGroup/AIGIs), card licence
# cc-by-sa-4.0 for the mirror; data.csv of lcysyzxdxc/AGIQA-3k-Database at commit 30ded2be...,
# 445,544 bytes, shipped with this repository (datasets/data/AGIQA-3K/data.csv).
AGIQA3K = Database(
    name="AGIQA", title="AGIQA-3K", reference="Li et al., TCSVT 2023", folder="AGIQA-3K",
    configs=("AGIQA", "AGIQA_alignment"), name_column="name",
    task_columns={"quality": "mos_quality", "alignment": "mos_align"},
    licence="MIT", origin="GitHub `lcysyzxdxc/AGIQA-3k-Database`", images="2,982",
    default_split="seeded 80/20: 2,385 / 597 (the original's)",
    # Names such as AttnGAN_normal_000.jpg; generators AttnGAN, DALLE2, glide, midjourney,
    # sd1.5, xl2.2 (the database's data.csv).
    generator=generator_before_first,
    sources=(
        Source(name="AGIQA-3K.zip", size=97_950_738,
               sha256="96401d1f9844ef68092c7f6d5681c8ec90b20c33d238fb4d25033133f10084cf",
               licence="MIT (database); cc-by-sa-4.0 (the Hugging Face mirror's card)",
               hub=("chaofengc/IQA-PyTorch-Datasets", "e874459ad97a21e02874115a6090722c1ce19f24",
                    "AGIQA-3K.zip"), unpack=True),
        Source(name="data.csv", size=445_544,
               sha256="4b1945c2137e196d9378b9cf4a114de2267b97a4724f0743e260287eb2ddd6c0",
               licence="MIT", bundled="AGIQA-3K/data.csv"),
    ),
)

# AGIQA-1K (Zhang et al., "A Perceptual Quality Assessment Exploration for AIGC Images", 2023;
# GitHub lcysyzxdxc/AGIQA-1k-Database, MIT): no verified download source is known.
AGIQA1K = Database(
    name="AGIQA1K", title="AGIQA-1K", reference="Zhang et al., 2023", folder="AGIQA-1K",
    configs=("AGIQA1K",), name_column="Image", task_columns={"quality": "MOS"},
    licence="MIT", origin="GitHub `lcysyzxdxc/AGIQA-1k-Database`", images="1,079 / 1,080",
    default_split="seeded 80/20: 864 / 216; peer folders via `SPLIT_FILE`",
    # Names such as deepai_0001.png and dreamStudio_0001.png (AIGC_MOS_Zscore.xlsx).
    generator=generator_before_first,
    manual="the links in the README of GitHub lcysyzxdxc/AGIQA-1k-Database; put "
           "AIGC_MOS_Zscore.xlsx and the images (file/) in ROOT/AGIQA-1K/",
)

# AIGCIQA2023 (Wang et al., 2023; GitHub wangjiarui153/AIGCIQA2023, no licence stated). Facts of
# issue 23: the images as AIGCIQA2023.zip of the Hugging Face dataset repository IntMeGroup/AIGIs,
# revision dfdcd9ef..., 889,119,660 bytes; the MOS as AIGCIQA2023_DATA.zip of the same
# repository, revision d62912fd..., 4,941,678 bytes (the release's MOS/ and STD/ .mat files).
AIGCIQA2023 = Database(
    name="AIGCIQA2023", title="AIGCIQA2023", reference="Wang et al., 2023", folder="AIGCIQA2023",
    configs=("AIGCIQA2023", "AIGCIQA2023_authenticity", "AIGCIQA2023_correspondence"),
    name_column="name",
    # The columns of the all-in-one AIGCIQA2023.csv (pull request 4 of wangjiarui153/AIGCIQA2023).
    task_columns={"quality": "quality_mos", "authenticity": "authenticity_mos",
                  "correspondence": "correspondence_mos"},
    licence="none stated", origin="GitHub `wangjiarui153/AIGCIQA2023`", images="2,400",
    default_split="seeded 80/20: 1,920 / 480 (the original's)",
    generator=aigciqa2023_generator,
    sources=(
        Source(name="AIGCIQA2023.zip", size=889_119_660,
               sha256="ec51293d2c910d010f233a4f33ecd07c3fba018157f6e428dbada081d6a02616",
               licence="none stated", unpack=True,
               hub=("IntMeGroup/AIGIs", "dfdcd9efded13b223a67ce0d20b96f6c04a1b938",
                    "AIGCIQA2023.zip")),
        Source(name="AIGCIQA2023_DATA.zip", size=4_941_678,
               sha256="0102b3c184c2fdd371fc9b7dbc602ab7439dcb6117881f96d33a78a0b9af68a7",
               licence="none stated", unpack=True,
               hub=("IntMeGroup/AIGIs", "d62912fd99d8a7090dfc528491b221b05069f190",
                    "AIGCIQA2023_DATA.zip")),
    ),
)

# AIGIQA-20K (image track of AIGCQA-30K, NTIRE 2024): no verified download source is known.
AIGIQA20K = Database(
    name="AIGIQA20K", title="AIGIQA-20K", reference="NTIRE 2024 AIGC quality, image track",
    folder="AIGIQA-20K", configs=("AIGIQA20K",), name_column="name",
    task_columns={"quality": "mos"}, licence="none stated",
    origin="the challenge's release (AIGCQA-30K)", images="20,000 (14,000 with public MOS)",
    default_split="80/20 of the 14,000: 11,200 / 2,800; official 14,000 / 2,000 / 4,000 with a "
                  "full label file",
    # Model names such as LCM_Pixart and SDXL_Turbo hold "_": the part before the last one.
    generator=generator_before_last,
    manual="the NTIRE 2024 AIGC quality challenge's release (AIGCQA-30K, image track); put "
           "info_train.xlsx, info_val.xlsx, info_test.xlsx and the images in ROOT/AIGIQA-20K/",
)

DATABASES: dict[str, Database] = {db.name: db for db in (AGIQA3K, AGIQA1K, AIGCIQA2023,
                                                         AIGIQA20K)}


def by_config(name: str) -> Database:
    """The database of a dataset yaml stem (``AGIQA_alignment`` -> AGIQA-3K) or a registered
    dataset name; ``KeyError`` naming the known ones otherwise."""
    for db in DATABASES.values():
        if name == db.name or name in db.configs:
            return db
    raise KeyError(f"unknown database {shown(name)}; known: {', '.join(config_names())}")


def config_names() -> list[str]:
    """Every dataset yaml stem, database by database."""
    return [config for db in DATABASES.values() for config in db.configs]


def database_names() -> list[str]:
    """The registered dataset names (``DATASET.NAME`` values)."""
    return list(DATABASES)


def readme_table() -> str:
    """The README's database table (between ``<!-- databases:start -->`` and ``:end``)."""
    lines = ["| database | config | images / label rows | source | licence | default split | "
             "`datasets.fetch` |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for db in DATABASES.values():
        configs = ", ".join(f"`{c}`" for c in db.configs)
        fetch = (f"{db.download_size() / 1e6:,.0f} MB, verified" if db.sources
                 else "by hand")
        lines.append(f"| {db.title} ({db.reference}) | {configs} | {db.images} | {db.origin} | "
                     f"{db.licence} | {db.default_split} | {fetch} |")
    return "\n".join(lines) + "\n"


def help_lines() -> str:
    """The DATASET values for ``main.sh --help``, one database a line."""
    return "\n".join(f"  {', '.join(db.configs)}  ({db.title}, licence {db.licence})"
                     for db in DATABASES.values())


README_MARKERS = ("<!-- databases:start -->\n", "<!-- databases:end -->")


def with_readme_table(text: str) -> str:
    """``text`` (the README) with the lines between the database markers replaced by
    ``readme_table()``; ``ValueError`` when the markers are missing."""
    start, end = README_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"the README lacks the lines {start.strip()} and {end}")
    head, rest = text.split(start, 1)
    return head + start + readme_table() + end + rest.split(end, 1)[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print facts of the database registry.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--configs", action="store_true", help="the dataset yaml stems")
    group.add_argument("--help-lines", action="store_true", help="main.sh --help's list")
    group.add_argument("--readme-table", action="store_true", help="the README's table")
    group.add_argument("--update-readme", metavar="README", help="rewrite the table in README")
    args = parser.parse_args(argv)
    if args.update_readme:
        path = Path(args.update_readme)
        path.write_text(with_readme_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    text = (" ".join(config_names()) + "\n" if args.configs
            else help_lines() + "\n" if args.help_lines else readme_table())
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
