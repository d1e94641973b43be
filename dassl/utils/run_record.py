"""The record every run leaves in ``OUTPUT_DIR``: the full config and what it ran on.

- ``config.yaml``: the frozen config (``cfg.dump()``), loadable with ``cfg.merge_from_file``
  once the same keys are declared;
- ``run_info.json``: ``argv``, ``start_time`` (ISO 8601, local time with offset), ``seed``,
  ``python``, ``packages`` (name -> version or null), ``platform``, ``device``, ``git``
  (``{commit, dirty}`` of the source checkout, or null outside a git checkout) and
  ``previous_runs`` (the earlier entries of a resumed or repeated run, oldest first) and
  ``cwd`` (the working directory, against which a relative path of the config was given).
Both are written atomically at the start of a run; facts known only once the trainer exists
(``precision``: the effective precision) are added with ``update_run_record``.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any, Optional, Sequence

import torch

from .tools import atomic_write_text, read_json, write_json

__all__ = ["CONFIG_FILE", "RUN_INFO_FILE", "PACKAGES", "package_versions", "git_state",
           "device_name", "write_run_record", "update_run_record", "CWD_PATH_KEYS", "DATA_PATH_KEYS", "PATH_KEYS",
           "absolute_paths", "resolve_recorded_path"]

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run_info.json"
# Distributions whose versions can change the numbers of a run.
PACKAGES = ("torch", "torchvision", "numpy", "Pillow", "scipy", "pandas", "scikit-learn",
            "yacs", "safetensors")
_GIT_TIMEOUT_S = 10
# Config keys naming a file or folder relative to the working directory (or a CLIP model name,
# for MODEL.BACKBONE.NAME): an existing one is stored absolute, so that the run can be resumed,
# evaluated or scored from any folder.
CWD_PATH_KEYS = ("DATASET.ROOT", "DATASET.PROMPT_FILE", "MODEL.BACKBONE.NAME",
                 "MODEL.INIT_WEIGHTS")
# Every path-valued key (LABEL_FILE and SPLIT_FILE are relative to the database folder): two
# spellings of one existing file are the same config.
DATA_PATH_KEYS = ("DATASET.LABEL_FILE", "DATASET.SPLIT_FILE")
PATH_KEYS = CWD_PATH_KEYS + DATA_PATH_KEYS


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, Optional[str]]:
    """Installed version of each distribution (None when it is not installed)."""
    versions: dict[str, Optional[str]] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(source_dir: str, *args: str) -> Optional[str]:
    """Output of a read-only git command in ``source_dir``; None if git or the checkout is absent."""
    try:
        done = subprocess.run(["git", "-C", source_dir, *args], capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(source_dir: str) -> Optional[dict[str, Any]]:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``source_dir``, else None.

    ``dirty`` means tracked files differ from the commit (untracked files, e.g. outputs, do not
    count).
    """
    commit = _git(source_dir, "rev-parse", "HEAD")
    if not commit:
        return None
    status = _git(source_dir, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def device_name(cfg: Any) -> str:
    """The device the run computes on, e.g. ``"cuda: NVIDIA H100"`` or ``"cpu: x86_64"``."""
    if bool(cfg.USE_CUDA) and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.cuda.current_device())}"
    return f"cpu: {platform.processor() or platform.machine() or 'unknown'}"


def write_run_record(cfg: Any, argv: Sequence[str], source_dir: str) -> dict[str, Any]:
    """Write ``config.yaml`` and ``run_info.json`` into ``cfg.OUTPUT_DIR``; return the info."""
    output_dir = cfg.OUTPUT_DIR
    atomic_write_text(os.path.join(output_dir, CONFIG_FILE), cfg.dump())
    info: dict[str, Any] = {
        "argv": list(argv),
        "start_time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "seed": int(cfg.SEED),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "platform": platform.platform(),
        "device": device_name(cfg),
        "deterministic": bool(cfg.DETERMINISTIC),
        "git": git_state(source_dir),
        "cwd": os.getcwd(),
    }
    info["previous_runs"] = _previous_runs(os.path.join(output_dir, RUN_INFO_FILE))
    write_json(info, os.path.join(output_dir, RUN_INFO_FILE))
    return info


def update_run_record(output_dir: str, **fields: Any) -> dict[str, Any]:
    """Set ``fields`` (JSON-able) in ``output_dir/run_info.json``, for facts known only once the
    run has started (e.g. the effective precision); return the updated info. Raises ``OSError``
    / ``ValueError`` when the file is missing or unreadable."""
    path = os.path.join(output_dir, RUN_INFO_FILE)
    info = read_json(path)
    info.update(fields)
    write_json(info, path)
    return info


def _previous_runs(path: str) -> list:
    """Entries of an existing ``run_info.json`` (its own history first); [] if none/unreadable."""
    try:
        old = read_json(path)
    except (OSError, ValueError):
        return []
    if not isinstance(old, dict):
        return []
    history = old.pop("previous_runs", [])
    return (history if isinstance(history, list) else []) + [old]


def _node_and_leaf(cfg: Any, key: str) -> tuple[Any, str]:
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    return node, leaf


def absolute_paths(cfg: Any, base: Optional[str] = None) -> None:
    """Make every value of ``CWD_PATH_KEYS`` in the (unfrozen) ``cfg`` that names an existing
    file or folder relative to ``base`` (default: the working directory) absolute; names that
    exist nowhere (a CLIP model name such as "ViT-B/16", a missing file reported later) stay."""
    for key in CWD_PATH_KEYS:
        try:
            node, leaf = _node_and_leaf(cfg, key)
        except KeyError:
            continue
        if leaf in node and isinstance(node[leaf], str):
            node[leaf] = resolve_recorded_path(node[leaf], base)


def resolve_recorded_path(value: str, base: Optional[str]) -> str:
    """``value`` made absolute when it is a relative path that exists under ``base`` (None: the
    working directory); else ``value`` unchanged."""
    if not value or os.path.isabs(os.path.expanduser(value)):
        return value
    path = os.path.join(base or os.getcwd(), os.path.expanduser(value))
    return os.path.abspath(path) if os.path.exists(path) else value
