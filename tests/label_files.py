"""Label files for the tests: the committed real ones and same-shape stand-ins for the others.

`tests/data/README.md` lists the files, their source and licence. AGIQA-3K and AGIQA-1K (MIT) are
committed. AIGCIQA2023's MOS files have no known licence: a user may put them in
`tests/data/aigciqa2023/`; otherwise `write_aigciqa2023_mos` writes stand-ins of the real shape
(the reference split depends only on the row count and order), and the few tests that need the
real values are marked `needs_real_aigciqa2023`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from datasets.registry import PRODUCT_DATA

TEST_DATA = Path(__file__).resolve().parent / "data"
AGIQA3K_CSV = PRODUCT_DATA / "AGIQA-3K" / "data.csv"  # shipped for users (MIT)
AGIQA1K_XLSX = TEST_DATA / "agiqa1k" / "AIGC_MOS_Zscore.xlsx"
AGIQA1K_PEER_SPLITS = TEST_DATA / "agiqa1k" / "peer_splits"
AIGCIQA2023_DIR = TEST_DATA / "aigciqa2023"
AIGCIQA2023_ROWS = 2400
AIGCIQA2023_TASK_FILES = {1: "quality", 2: "authenticity"}  # mosz<k>.mat -> task

REAL_AIGCIQA2023 = all((AIGCIQA2023_DIR / f"mosz{k}.mat").is_file() for k in AIGCIQA2023_TASK_FILES)
needs_real_aigciqa2023 = pytest.mark.skipif(
    not REAL_AIGCIQA2023,
    reason="needs AIGCIQA2023's real scores: copy MOS/mosz1.mat and MOS/mosz2.mat of the AIGCIQA2023 "
           f"release into {AIGCIQA2023_DIR} (see tests/data/README.md)")


def write_aigciqa2023_mos(folder: Path, tasks: tuple[int, ...] = (1, 2)) -> Path:
    """Write ``folder/mosz<k>.mat`` for each k in ``tasks`` and return ``folder``.

    The real files from ``tests/data/aigciqa2023/`` when present; otherwise stand-ins of the
    real layout: one float64 variable ``MOSz`` of shape (2400, 1), values uniform in the real
    range 27..74, a different seeded draw per file. Raises FileNotFoundError for k outside 1, 2.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k in tasks:
        if k not in AIGCIQA2023_TASK_FILES:
            raise FileNotFoundError(f"no real or stand-in mosz{k}.mat for the tests")
        if REAL_AIGCIQA2023:
            shutil.copy(AIGCIQA2023_DIR / f"mosz{k}.mat", folder / f"mosz{k}.mat")
        else:
            scores = np.random.default_rng(2023 + k).uniform(27.0, 74.0, (AIGCIQA2023_ROWS, 1))
            savemat(folder / f"mosz{k}.mat", {"MOSz": scores})
    return folder


def dataset_options(root: Path, **keys):
    """The dataset options (`datasets.core.read_options`) of a default config whose
    ``DATASET.ROOT`` is ``root`` and whose other ``DATASET`` keys are set by ``keys``."""
    from dassl.config import get_cfg_default
    from datasets import add_dataset_config
    from datasets.core import read_options

    cfg = get_cfg_default()
    add_dataset_config(cfg)
    cfg.DATASET.ROOT = str(root)
    for key, value in keys.items():
        cfg.DATASET[key] = value
    return read_options(cfg)
