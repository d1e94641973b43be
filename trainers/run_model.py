"""Rebuild the trained model of a run directory, for scoring outside the trainer.

A run directory holds `prompt_learner/` and `regression/` with checkpoints (and
`image_encoder/` when the run fine-tuned the image encoder, TRAIN_IMAGE_ENCODER). Two layouts:
- ours: `OUTPUT_DIR/config.yaml` (the full config of the run) gives the model config;
- the original code's output (or one of ours without config.yaml): the model config is read off
  the checkpoints. `ctx` `(n_ctx, width)` or `(n_levels, n_ctx, width)` gives N_CTX and CSC,
  `token_prefix` `(n_levels, 1, width)` the number of levels, the width of `1.weight` (together
  with the backbone's embedding dim) the head input, `target_mean` in the head's state the
  target standardisation. What the checkpoints cannot tell (backbone, level names, class-token
  position) comes from the arguments, defaulting to upstream's ViT-B/16, the six upstream level
  names and "end". The level names and backbone are checked against the prompt embeddings
  stored in the checkpoint (`token_suffix` holds the embedded level-name tokens).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import torch
import yaml
from yacs.config import CfgNode

from clip.clip import OPENAI_MEAN, OPENAI_STD
from dassl.config import get_cfg_default
from dassl.utils import (BEST_MODEL_NAME, ConfigError, checkpoint_file_name,
                         load_module_checkpoints, module_checkpoint_paths, read_checkpoint_pointer,
                         read_module_checkpoint)

from .clip_agiqa import IGNORED_ON_LOAD, MODULE_NAMES, checkpointed_modules, module_names
from .config import add_trainer_config
from .custom_clip import (CustomCLIP, head_input_size, load_clip_in_precision,
                          resolve_precision)

__all__ = ["RunModel", "load_run_model", "find_model_file", "UPSTREAM_LEVEL_NAMES"]

CONFIG_FILE = "config.yaml"
# Upstream's six levels, worst first (as datasets.config.DEFAULT_LEVEL_NAMES, repeated here
# because trainers never depend on the datasets package).
UPSTREAM_LEVEL_NAMES = ("terrible", "bad", "poor", "average", "good", "perfect")
UPSTREAM_BACKBONE = "ViT-B/16"
UPSTREAM_TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
# Config subtrees that define the model and its test-time input (plus TEST.NUM_CROPS).
MODEL_SUBTREES = ("INPUT", "MODEL", "TRAINER")
TEST_KEYS = ("NUM_CROPS",)


@dataclass
class RunModel:
    """A run's rebuilt model: `model` (CustomCLIP in eval mode on `device`), its frozen `cfg`,
    `level_names`, effective `precision`, `config_source` ("config.yaml" or "checkpoint") and
    `model_files` (module name -> absolute checkpoint path)."""

    model: CustomCLIP
    cfg: CfgNode
    level_names: list[str]
    precision: str
    device: torch.device
    config_source: str
    model_files: dict[str, str] = field(default_factory=dict)


def find_model_file(run_dir: str, epoch: int | None = None,
                    names: Sequence[str] = MODULE_NAMES) -> str:
    """Checkpoint file name to load from every module folder (`names`) of `run_dir`.

    `epoch` given: `model.pth.tar-<epoch>`. Otherwise the model the run deploys:
    `model-best.pth.tar` when every module has one, else the latest checkpoint (`checkpoint`
    pointer). Raises `FileNotFoundError` naming what is missing.
    """
    folders = [os.path.join(run_dir, name) for name in names]
    missing = [f for f in folders if not os.path.isdir(f)]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a trained CLIP-AGIQA run directory: missing {missing} (expected "
            f"the module folders {list(names)} with checkpoints)")
    if epoch is not None:
        name = checkpoint_file_name(epoch)
    elif all(os.path.isfile(os.path.join(f, BEST_MODEL_NAME)) for f in folders):
        name = BEST_MODEL_NAME
    else:
        name = read_checkpoint_pointer(folders[0])
        if name is None:
            raise FileNotFoundError(f"{folders[0]} has neither {BEST_MODEL_NAME} nor a "
                                    "'checkpoint' pointer; pass the epoch to load")
    for folder in folders:
        if not os.path.isfile(os.path.join(folder, name)):
            present = sorted(f for f in os.listdir(folder) if f.startswith("model"))
            raise FileNotFoundError(f"{os.path.join(folder, name)} does not exist (present: "
                                    f"{present})")
    return name


def _base_config() -> CfgNode:
    cfg = get_cfg_default()
    add_trainer_config(cfg)
    return cfg


def _config_from_file(path: str) -> tuple[CfgNode, list[str]]:
    """Model config (INPUT, MODEL, TRAINER subtrees) and level names of a stored config.yaml."""
    try:
        with open(path, encoding="utf-8") as handle:
            stored = yaml.safe_load(handle)
        subset = {key: stored[key] for key in MODEL_SUBTREES if key in stored}
        test = stored.get("TEST") or {}
        subset["TEST"] = {key: test[key] for key in TEST_KEYS if key in test}
        names = list(stored["DATASET"]["LEVEL_NAMES"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the model config from {path}: {exc}") from exc
    cfg = _base_config()
    try:
        cfg.merge_from_other_cfg(CfgNode(subset))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{path} does not fit this version's config keys: {exc}") from exc
    return cfg, names


def _config_from_checkpoints(pl_state: dict, level_names: Sequence[str] | None,
                             class_token_position: str | None) -> tuple[CfgNode, list[str]]:
    """Model config read off the prompt learner's checkpoint, plus the given/upstream settings."""
    ctx = pl_state.get("ctx")
    if not torch.is_tensor(ctx) or ctx.dim() not in (2, 3):
        raise ConfigError("the prompt_learner checkpoint has no 2-D or 3-D 'ctx' tensor")
    prefix = pl_state.get("token_prefix")
    n_levels = int(prefix.shape[0]) if torch.is_tensor(prefix) else (
        int(ctx.shape[0]) if ctx.dim() == 3 else None)
    names = list(level_names) if level_names else list(UPSTREAM_LEVEL_NAMES)
    if n_levels is not None and len(names) != n_levels:
        raise ConfigError(f"the checkpoint has {n_levels} level prompts but {len(names)} level "
                          f"names are given ({names}); pass {n_levels} level names, worst first")
    cfg = _base_config()
    node = cfg.TRAINER.CLIP_AGIQA
    node.N_CTX = int(ctx.shape[-2])
    node.CSC = ctx.dim() == 3
    node.CTX_INIT = ""  # the learned ctx replaces the initial words; only the count matters
    node.CLASS_TOKEN_POSITION = class_token_position or "end"
    node.PIPELINE = "reference"  # upstream preprocessed with PIL
    cfg.INPUT.INTERPOLATION = "bicubic"
    # Test-time input of the original method yaml files: CLIP's own normalisation.
    cfg.INPUT.PIXEL_MEAN = list(OPENAI_MEAN)
    cfg.INPUT.PIXEL_STD = list(OPENAI_STD)
    cfg.INPUT.TRANSFORMS = UPSTREAM_TRANSFORMS
    return cfg, names


def _infer_head_input(reg_state: dict, embed_dim: int, n_levels: int) -> str:
    weight = reg_state.get("1.weight")
    if not torch.is_tensor(weight) or weight.dim() != 2:
        raise ConfigError("the regression checkpoint has no 2-D '1.weight' tensor")
    width = int(weight.shape[1])
    for mode in ("image_text", "image", "text"):
        if head_input_size(mode, embed_dim, n_levels) == width:
            return mode
    raise ConfigError(f"the regression head reads {width} inputs, which fits no head input for "
                      f"embedding dim {embed_dim} and {n_levels} levels: wrong backbone?")


def _check_prompts(model: CustomCLIP, pl_state: dict, source: str) -> None:
    """The stored `token_suffix` (embedded level names) must match the rebuilt prompts."""
    stored = pl_state.get("token_suffix")
    if not torch.is_tensor(stored):
        return
    rebuilt = model.prompt_learner.token_suffix
    if stored.shape != rebuilt.shape or not torch.allclose(
            stored.float(), rebuilt.float(), rtol=1e-3, atol=1e-4):
        raise ConfigError(f"{source}: the level-name prompts differ from those the run was "
                          "trained with: give the run's level names (worst first) and backbone")


def load_run_model(run_dir: str, device: str | torch.device = "cpu", epoch: int | None = None,
                   backbone: str | None = None, level_names: Sequence[str] | None = None,
                   class_token_position: str | None = None) -> RunModel:
    """Rebuild and load the model of `run_dir` (see the module docstring for the layouts).

    `backbone` (CLIP name or weights file) overrides the run's `MODEL.BACKBONE.NAME`;
    `level_names` / `class_token_position` are only for runs without config.yaml (a conflict
    with the stored config raises `ConfigError`). Missing files raise `FileNotFoundError`,
    checkpoints that do not fit the rebuilt model `CheckpointMismatchError` / `ConfigError`.
    """
    run_dir = os.fspath(run_dir)
    device = torch.device(device)
    config_path = os.path.join(run_dir, CONFIG_FILE)
    stored = _config_from_file(config_path) if os.path.isfile(config_path) else None
    modules = module_names(stored[0]) if stored else MODULE_NAMES
    model_file = find_model_file(run_dir, epoch, modules)
    paths = module_checkpoint_paths(run_dir, modules, model_file)
    states = {name: read_module_checkpoint(path)[1] for name, path in paths.items()
              if name in MODULE_NAMES}
    if stored:
        cfg, names = stored
        stored_ctp = cfg.TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION
        if (level_names and list(level_names) != names) or (
                class_token_position and class_token_position != stored_ctp):
            raise ConfigError(f"{config_path} sets the level names {names} and class-token "
                              f"position {stored_ctp!r}; do not pass other ones")
        source = CONFIG_FILE
    else:
        cfg, names = _config_from_checkpoints(states["prompt_learner"], level_names,
                                              class_token_position)
        cfg.MODEL.BACKBONE.NAME = UPSTREAM_BACKBONE
        source = "checkpoint"
    if backbone:
        cfg.MODEL.BACKBONE.NAME = backbone
    precision = resolve_precision(cfg.TRAINER.CLIP_AGIQA.PREC, device)
    clip_model = load_clip_in_precision(cfg, precision)
    if source == "checkpoint":
        embed_dim = int(clip_model.text_projection.shape[1])
        node = cfg.TRAINER.CLIP_AGIQA
        node.HEAD_INPUT = _infer_head_input(states["regression"], embed_dim, len(names))
        node.STANDARDIZE_TARGET = "target_mean" in states["regression"]
        resolution = int(clip_model.visual.input_resolution)
        cfg.INPUT.SIZE = (resolution, resolution)
    cfg.freeze()
    model = CustomCLIP(cfg, names, clip_model)
    _check_prompts(model, states["prompt_learner"], paths["prompt_learner"])
    load_module_checkpoints(checkpointed_modules(model, modules), run_dir, model_file,
                            IGNORED_ON_LOAD)
    model.to(device).eval()
    return RunModel(model=model, cfg=cfg, level_names=names, precision=precision, device=device,
                    config_source=source, model_files=paths)

