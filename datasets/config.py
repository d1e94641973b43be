"""Dataset config keys (under ``DATASET``) shared by the AGIQA and AIGCIQA2023 loaders."""

from __future__ import annotations

from typing import Any

from dassl.data.levels import UPSTREAM_LEVEL_NAMES

__all__ = ["add_dataset_config", "DEFAULT_LEVEL_NAMES", "DATASET_KEYS"]

# Upstream's six quality levels, worst to best (a fresh list: callers may change theirs).
DEFAULT_LEVEL_NAMES = list(UPSTREAM_LEVEL_NAMES)

# key -> (default, meaning); the meaning doubles as the one-line comment of each key.
_KEYS: dict[str, tuple[Any, str]] = {
    "TASK": ("", "which MOS to predict; '' = the dataset default 'quality' "
                 "(AGIQA: quality|alignment, AIGCIQA2023: quality|authenticity|correspondence)"),
    "LEVEL_NAMES": (list(DEFAULT_LEVEL_NAMES), "ordered level (class) names, worst first"),
    "LEVEL_THRESHOLDS": ([], "MOS cut points between levels, strictly increasing, "
                             "len(LEVEL_NAMES) - 1 values; [] = dataset/task default"),
    "SPLIT_SEED": (42, "random_state of the train/test (and train/val) split"),
    "TEST_RATIO": (0.2, "fraction of all rows held out as the test split"),
    "VAL_RATIO": (0.0, "fraction of the training split carved out as validation; 0 = no val"),
    "SPLIT_MODE": ("random", "'random' = split rows (the reference split); 'prompt' = split "
                             "whole prompts, so no prompt is in two parts (ratios approximate); "
                             "'all' = every row in the test part (cross-database --eval-only)"),
    "PROMPT_FILE": ("", "CSV with columns name,prompt giving each image's prompt (SPLIT_MODE "
                        "prompt, TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE); '' = the label file's own "
                        "prompt column (AGIQA-3K has one)"),
    "LABEL_FILE": ("", "label file relative to the database folder (or absolute); '' = the "
                       "database's own (AIGIQA-20K: a full name,prompt,mos file switches to the "
                       "official train/val/test membership)"),
    "LABEL_SHEET": ("", "sheet of an .xlsx label file; '' = its first sheet"),
    "DROP_DUPLICATE_NAMES": (False, "AGIQA-1K: keep only the first row of an image name listed "
                                    "twice (default keeps both rows, as published splits do)"),
    "SPLIT_FILE": ("", "split as data, relative to the database folder (or absolute): a CSV "
                       "name,split (train|val|test) or a folder with train.csv, val.csv "
                       "[, test.csv]; '' = split with SPLIT_SEED/TEST_RATIO/VAL_RATIO"),
    "SPLIT_INDEX": (-1, "K >= 0: read the split folder SPLIT_FILE/K/; -1 = SPLIT_FILE itself"),
    "CHECK_FILES": (True, "verify that every listed image exists and decodes before training"),
    "CHECK_PARTS": ([], "the parts (train, val, test) whose images CHECK_FILES and "
                        "SKIP_BAD_IMAGES check; [] = every part (train.py --eval-only: only the "
                        "evaluated TEST.SPLIT, so missing training images do not matter)"),
    "FETCH": (True, "when the database's folder is absent under an existing ROOT, download it, "
                    "verified (python -m datasets.fetch; databases with a known source)"),
    "SKIP_BAD_IMAGES": (False, "leave out images that do not decode (warning + list in the log) "
                               "instead of stopping with an error; runs the decode check even "
                               "with CHECK_FILES False"),
}
# The keys add_dataset_config declares, in declaration order (DATASET.ROOT is Dassl's own).
DATASET_KEYS: tuple[str, ...] = tuple(_KEYS)


def add_dataset_config(cfg: Any) -> Any:
    """Declare the dataset keys on ``cfg.DATASET`` (a yacs ``CfgNode``) and return ``cfg``.

    Idempotent: keys that already exist keep their current value, so calling it twice, or after
    a merge, changes nothing. Raises ``ValueError`` if ``cfg`` is frozen and a key is missing.
    """
    node = cfg.DATASET
    for key, (default, _meaning) in _KEYS.items():
        if key in node:
            continue
        if node.is_frozen():
            raise ValueError(f"cannot add DATASET.{key}: the config is frozen; call "
                             "add_dataset_config(cfg) before cfg.freeze()")
        setattr(node, key, list(default) if isinstance(default, list) else default)
    return cfg
