"""What each run of a sweep needs on this machine, checked by ``--dry-run``.

A run needs its database (the folder under ``DATASET.ROOT``, the label file, a split file when
one is configured, the images listed there) and its CLIP weights (a file given as
``MODEL.BACKBONE.NAME``, or a model name's file in the CLIP or Hugging Face cache, or a
download host that answers). ``missing_inputs`` returns, per run, one line per missing thing,
in the words of the error the run would stop with. Checks are shared by the runs that need
the same database or weights, and nothing is decoded or downloaded. What reading a database
prints (e.g. AGIQA-1K's duplicated-name notice) is shown once per sweep, however many of its
configurations are checked.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Any, Callable, Optional, Sequence

from clip import weights as clip_weights

__all__ = ["missing_inputs", "dataset_problem", "weights_problem"]


def dataset_problem(cfg: Any, shown: Optional[set[str]] = None) -> Optional[str]:
    """Why the database of ``cfg`` cannot be read (label file, split file, images present),
    else None. Reads the label file and lists the image folders; decodes no image. The lines
    the loader prints are printed unless already in ``shown`` (then added to it)."""
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.utils import UserError
    from datasets.core import read_options

    dataset = DATASET_REGISTRY.get(cfg.DATASET.NAME)
    load = getattr(dataset, "load", None)
    if load is None:  # not one of the level datasets: only a full run can tell
        return None
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            load(read_options(cfg))
    except (UserError, OSError, ValueError) as exc:  # DatasetError is a UserError
        return str(exc)
    finally:
        shown = set() if shown is None else shown
        for line in printed.getvalue().splitlines():
            if line not in shown:
                shown.add(line)
                print(line)
    return None


def weights_problem(backbone: str, probe: Callable[[str], Optional[str]] = None
                    ) -> Optional[str]:
    """Why the CLIP weights ``backbone`` (``MODEL.BACKBONE.NAME``) are not available to a run,
    else None: a path that is not a file, or a model name in neither cache while downloads are
    off (``HF_HUB_OFFLINE``) or both download hosts do not answer (``probe``, default
    ``clip.weights.unreachable``: one short connection attempt each)."""
    probe = probe or clip_weights.unreachable
    if backbone not in clip_weights.MODELS:
        path = os.path.expanduser(backbone)
        if os.path.isfile(path):
            return None
        kind = "a folder" if os.path.isdir(path) else "not an existing file"
        return (f"CLIP weights MODEL.BACKBONE.NAME {backbone}: {kind} and not a model name "
                f"({', '.join(clip_weights.MODELS)})")
    if clip_weights.cached_weights(backbone) is not None:
        return None
    where = (f"{clip_weights.weights_filename(backbone)} is not in {clip_weights.cache_dir()} "
             f"nor in the Hugging Face cache")
    fix = (f"; put it there, or pass --extra-opts MODEL.BACKBONE.NAME "
           f"path/to/{clip_weights.weights_filename(backbone)}")
    if clip_weights.offline_mode():
        return f"CLIP weights {backbone}: {where}, and HF_HUB_OFFLINE forbids downloads{fix}"
    down = [probe(clip_weights.MODELS[backbone]), probe(clip_weights.mirror_url(backbone))]
    if all(down):
        return (f"CLIP weights {backbone}: {where}, and no download host answers "
                f"({'; '.join(down)}){fix}")
    return None


def missing_inputs(jobs: Sequence[Any], configs: Sequence[Any],
                   trained_by: Sequence[Optional[str]]) -> dict[str, list[str]]:
    """``{job key: [missing input, ...]}`` (an empty list when the run has what it needs).

    ``configs`` are the jobs' frozen configs (as ``train.py`` builds them), ``trained_by`` the
    key of the training job an evaluation job needs (None for a training job): an evaluation
    also misses what its training run misses (its model, weights included, comes from there).
    """
    datasets: dict[str, Optional[str]] = {}
    backbones: dict[str, Optional[str]] = {}
    missing: dict[str, list[str]] = {}
    shown: set[str] = set()
    for job, cfg, trained in zip(jobs, configs, trained_by):
        problems = []
        data_key = _dataset_key(cfg)
        if data_key not in datasets:
            datasets[data_key] = dataset_problem(cfg, shown)
        if datasets[data_key]:
            problems.append(f"data: {datasets[data_key]}")
        if trained is None:
            backbone = str(cfg.MODEL.BACKBONE.NAME)
            if backbone not in backbones:
                backbones[backbone] = weights_problem(backbone)
            if backbones[backbone]:
                problems.append(f"weights: {backbones[backbone]}")
        else:
            problems += [f"its training run: {p}" for p in missing.get(trained, [])]
        missing[job.key] = problems
    return missing


def _dataset_key(cfg: Any) -> str:
    """The dataset part of a config that decides which files a run reads (the split seed
    chooses rows, not files)."""
    node = cfg.DATASET.clone()
    node.defrost()
    node.SPLIT_SEED = 0
    return node.dump()
