"""Configuration: Dassl defaults (yacs) and a merge helper."""
from __future__ import annotations

import difflib
import os
from typing import Iterable, Optional, Sequence

from yacs.config import CfgNode

from .defaults import _C as cfg_default


def get_cfg_default() -> CfgNode:
    """A fresh, mutable copy of the default configuration."""
    return cfg_default.clone()


def _leaf_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        if isinstance(value, CfgNode):
            keys.extend(_leaf_keys(value, prefix + key + "."))
        else:
            keys.append(prefix + key)
    return keys


def _check_keys_exist(cfg: CfgNode, keys: Iterable[str]) -> None:
    """Raise ``KeyError`` (with a did-you-mean hint) for keys absent from ``cfg``.

    yacs only asserts this in ``merge_from_list``, which ``python -O`` would skip.
    """
    valid = set(_leaf_keys(cfg))
    for key in keys:
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"Non-existent config key: {key}{hint}")


def merge_config(cfg: CfgNode, config_files: Iterable[str] = (),
                 opts: Optional[Sequence[str]] = None) -> CfgNode:
    """Merge yaml files (in order, empty paths skipped) and then ``KEY VALUE`` ``opts`` into ``cfg``.

    This is the yacs part of the merge chain defaults -> dataset yaml -> method yaml -> CLI ->
    opts (CLI flags are applied by the caller between files and opts). Unknown keys raise
    ``KeyError`` and values of the wrong type ``ValueError`` (yacs). Returns ``cfg`` (not frozen).
    """
    for path in config_files:
        if not path:
            continue
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Config file not found: {path}")
        cfg.merge_from_file(path)
    if opts:
        if len(opts) % 2:
            raise ValueError(f"opts must be KEY VALUE pairs, got an odd number of items: {list(opts)}")
        _check_keys_exist(cfg, opts[0::2])
        cfg.merge_from_list(list(opts))
    return cfg


__all__ = ["get_cfg_default", "merge_config", "CfgNode"]
