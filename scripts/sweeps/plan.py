"""The sweep's saved plan, ``OUTPUT/sweep_plan.json``: what the sweep in a folder is, so that
``--status``, ``--collect-only`` and a rerun work from the folder alone.

``scripts/sweep.py`` writes it (atomically) when a sweep starts running or submitting, and reads
it when a command names the folder (``--output``) but neither a spec nor ``--datasets`` /
``--variants``. Format, version 1::

    {"format": "clip-agiqa sweep plan", "version": 1,
     "spec": {"root": "/abs/data",
              "datasets": [{"name": "AGIQA", "config": "configs/datasets/AGIQA.yaml",
                            "opts": []}],
              "variants": [{"name": ..., "config": ..., "opts": [KEY, VALUE, ...],
                            "trainer": "CLIP_AGIQA"}],
              "protocols": ["configs/protocols/paper.yaml"],
              "seeds": [1], "split_seeds": [42], "split_indices": [], "cross": false,
              "extra_opts": [KEY, VALUE, ...]}}

``spec`` is a sweep spec mapping in the format of a sweep yaml (``scripts/sweeps/spec.py``) with
every entry resolved: config paths relative to the repository (absolute outside it), opts as
command-line text with working-directory-relative paths made absolute. The output folder is not
stored: it is the folder holding the file, so a moved sweep folder still reads. A command's plan
fits the saved one when it holds every saved run (``plan_differences``; it may add runs: the sweep
grows), comparing all but ``root`` and the opts that do not change an experiment
(``NON_SEMANTIC_KEYS``), as run identities do (``Run.identity``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

from dassl.utils import atomic_write_text

from .spec import (SPEC_KEYS, Entry, SweepError, SweepSpec, absolute_opts, display_path,
                   semantic_opts)

__all__ = ["PLAN_FILE", "PLAN_FORMAT", "PLAN_VERSION", "plan_of", "write_plan", "read_plan",
           "plan_differences"]

PLAN_FILE = "sweep_plan.json"
PLAN_FORMAT = "clip-agiqa sweep plan"
PLAN_VERSION = 1
# Spec keys that do not make another sweep: where the data is, and where the sweep is.
_NOT_COMPARED = ("root", "output")
# Spec lists a sweep may grow: a plan holding every saved item (and more) extends the sweep.
_GROWABLE = ("datasets", "variants", "protocols", "seeds", "split_seeds", "split_indices")


def _entry(entry: Entry, with_trainer: bool) -> dict:
    record = {"name": entry.name, "config": display_path(entry.config),
              "opts": absolute_opts(entry.opts)}
    return dict(record, trainer=entry.trainer) if with_trainer else record


def plan_of(spec: SweepSpec) -> dict:
    """The spec mapping of ``spec`` as the plan stores it (see the module doc)."""
    return {"root": spec.root,
            "datasets": [_entry(d, False) for d in spec.datasets],
            "variants": [_entry(v, True) for v in spec.variants],
            "protocols": [display_path(p.path) for p in spec.protocols],
            "seeds": list(spec.seeds), "split_seeds": list(spec.split_seeds),
            "split_indices": list(spec.split_indices), "cross": spec.cross,
            "extra_opts": absolute_opts(spec.extra_opts)}


def write_plan(spec: SweepSpec) -> Path:
    """Write ``spec.output / PLAN_FILE`` atomically (a reader never sees half a file); returns
    its path. ``OSError`` / ``OutputWriteError`` when the folder cannot be written."""
    spec.output.mkdir(parents=True, exist_ok=True)
    path = spec.output / PLAN_FILE
    document = {"format": PLAN_FORMAT, "version": PLAN_VERSION, "spec": plan_of(spec)}
    atomic_write_text(str(path), json.dumps(document, indent=2) + "\n")
    return path


def read_plan(output: Path) -> Optional[dict]:
    """The spec mapping saved in ``output / PLAN_FILE``, None when there is no such file.
    ``SweepError`` (naming the file) for a file that is not a plan of a version this code
    reads."""
    path = Path(output) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise SweepError(f"{path} cannot be read as a sweep plan ({exc}); delete it and give "
                         "the sweep's spec or flags again") from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise SweepError(f"{path} is not a sweep plan (no \"format\": \"{PLAN_FORMAT}\")")
    if document.get("version") != PLAN_VERSION:
        raise SweepError(f"{path} is a sweep plan of version {document.get('version')!r}; this "
                         f"code reads version {PLAN_VERSION}")
    spec = document.get("spec")
    if not isinstance(spec, dict) or set(spec) - set(SPEC_KEYS):
        raise SweepError(f"{path}: \"spec\" must be a mapping of sweep spec keys "
                         f"({', '.join(SPEC_KEYS)})")
    return spec


def _comparable(key: str, value: Any) -> Any:
    """``value`` of spec ``key`` reduced to what makes the experiment (``semantic_opts``)."""
    if key == "extra_opts":
        return semantic_opts(list(value or []))
    if key in ("datasets", "variants"):
        return [dict(e, opts=semantic_opts(list(e.get("opts") or []))) if isinstance(e, Mapping)
                else e for e in value or []]
    return value


def _shown(key: str, value: Any) -> str:
    """``value`` as the difference message shows it: entries as ``NAME (CONFIG OPTS...)``."""
    if key not in ("datasets", "variants"):
        return json.dumps(value)
    texts = []
    for entry in value or []:
        if not isinstance(entry, Mapping):
            texts.append(repr(entry))
            continue
        words = [str(entry.get("config")), *map(str, entry.get("opts") or [])]
        texts.append(f"{entry.get('name')} ({' '.join(words)})")
    return "[" + ", ".join(texts) + "]"


def plan_differences(saved: Mapping[str, Any], planned: Mapping[str, Any]) -> list[str]:
    """``"KEY: saved X, now Y"`` for each spec key on which this command's plan (``plan_of``)
    leaves out or changes runs of the saved one. A plan that only adds runs (more datasets,
    variants, protocols, seeds or splits, ``cross`` turned on) extends the saved sweep: no
    difference. ``root`` and the opts that do not change an experiment are not compared."""
    out = []
    for key in SPEC_KEYS:
        if key in _NOT_COMPARED:
            continue
        old, new = _comparable(key, saved.get(key)), _comparable(key, planned.get(key))
        if key in _GROWABLE:
            changed = any(item not in (new or []) for item in old or []) \
                or (key == "split_indices" and bool(old) != bool(new))
        elif key == "cross":
            changed = bool(old) and not new
        else:
            changed = old != new
        if changed:
            out.append(f"{key}: saved {_shown(key, old)}, now {_shown(key, new)}")
    return out
