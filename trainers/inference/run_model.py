"""Rebuild the trained model of a run directory, for scoring outside the trainer.

A run directory holds `prompt_learner/` and `regression/` with checkpoints (and
`image_encoder/` when the run fine-tuned the image encoder, TRAIN_IMAGE_ENCODER). The model's
`ModelSpec` comes from, in this order:
- the `model_spec` entry of the loaded prompt-learner checkpoint, which every checkpoint written
  since the spec exists carries: the model, test input and effective precision the weights were
  computed with, so copied weights rebuild their model alone and an edited or deleted
  config.yaml changes nothing ("model_spec");
- for runs of ours written before `model_spec` existed, `OUTPUT_DIR/config.yaml` ("config.yaml");
- for the original code's output (and such runs without config.yaml), the checkpoints' shapes
  ("checkpoint"). `ctx` `(n_ctx, width)` or
  `(n_levels, n_ctx, width)` gives N_CTX and CSC, `token_prefix` `(n_levels, 1, width)` the
  number of levels, the width of `1.weight` (together with the backbone's embedding dim) the
  head input, `target_mean` in the head's state the target standardisation. What the
  checkpoints cannot tell (backbone, level names, class-token position) comes from the
  arguments, defaulting to upstream's ViT-B/16, the six upstream level names and "end".
The level names and backbone are checked against the prompt embeddings stored in the checkpoint
(`token_suffix` holds the embedded level-name tokens).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch
import yaml
from yacs.config import CfgNode

from clip.clip import OPENAI_MEAN, OPENAI_STD
from dassl.config import get_cfg_default
from dassl.data.levels import UPSTREAM_LEVEL_NAMES
from dassl.utils import (BEST_MODEL_NAME, ConfigError, checkpoint_file_name,
                         load_module_checkpoints, module_checkpoint_paths, read_checkpoint_pointer,
                         read_module_checkpoint, resolve_device)
from dassl.utils.run_dir import check_run_dir
from dassl.utils.run_record import CONFIG_FILE, MODEL_SUBTREES, recorded_cwd, resolve_recorded_path

from ..clip_agiqa import (CLIP_AGIQA, IGNORED_ON_LOAD, MODULE_NAMES, checkpointed_modules,
                          module_names)
from ..method.custom_clip import CustomCLIP, head_input_size, load_clip
from ..method.model_spec import ModelSpec, add_trainer_config
from ..method.precision import precision_for_checkpoint, resolve_precision

__all__ = ["RunModel", "load_run_model", "check_trained_run", "find_model_file",
           "saved_model_spec", "spec_config", "UPSTREAM_LEVEL_NAMES"]

# The trainer the spec describes (its registry name).
TRAINER_NAME = CLIP_AGIQA.__name__

# What a run directory is called in error messages.
RUN_KIND = "trained CLIP-AGIQA run"
UPSTREAM_BACKBONE = "ViT-B/16"
UPSTREAM_TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
# Besides the model subtrees (`MODEL_SUBTREES`), the test-time input's TEST keys.
TEST_KEYS = ("NUM_CROPS",)


@dataclass
class RunModel:
    """A run's rebuilt model: `model` (CustomCLIP in eval mode on `device`), its `spec`, `cfg`
    (a frozen config equivalent to the spec, for the transforms), `level_names`, effective
    `precision`, `config_source` ("config.yaml", "model_spec" or "checkpoint"),
    `model_files` (module name -> absolute checkpoint path) and `precision_note` (why the
    precision differs from the config's, e.g. recorded in the checkpoint; None when it does not)."""

    model: CustomCLIP
    spec: ModelSpec
    cfg: CfgNode
    level_names: list[str]
    precision: str
    device: torch.device
    config_source: str
    model_files: dict[str, str] = field(default_factory=dict)
    precision_note: str | None = None


def check_trained_run(run_dir: str) -> list[str]:
    """The checkpoint folders of `run_dir`; `RunDirError` when it is missing or holds none
    (`dassl.utils.run_dir.check_run_dir`, the check of train.py's `--model-dir` too)."""
    return check_run_dir(run_dir, RUN_KIND)


def find_model_file(run_dir: str, epoch: int | None = None,
                    names: Sequence[str] = MODULE_NAMES) -> str:
    """Checkpoint file name to load from every module folder (`names`) of `run_dir`.

    `epoch` given: `model.pth.tar-<epoch>`. Otherwise the model the run deploys:
    `model-best.pth.tar` when every module has one, else the latest checkpoint (`checkpoint`
    pointer). Raises `FileNotFoundError` (`RunDirError` for a folder that is not a run, as
    train.py's `--model-dir`) naming what is missing.
    """
    check_trained_run(run_dir)
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


def _spec_from_checkpoints(pl_state: dict, level_names: Sequence[str] | None,
                           class_token_position: str | None) -> ModelSpec:
    """Spec read off the prompt learner's checkpoint plus the given/upstream settings; the head
    (input, standardisation) and the input size are filled in once CLIP is loaded."""
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
    test_input = dict(ModelSpec.from_config(_base_config()).test_input)
    # Test-time input of the original method yaml files: CLIP's own normalisation, bicubic.
    test_input.update(INTERPOLATION="bicubic", PIXEL_MEAN=list(OPENAI_MEAN),
                      PIXEL_STD=list(OPENAI_STD), TRANSFORMS=list(UPSTREAM_TRANSFORMS))
    # The learned ctx replaces any initial words; only the token count matters.
    return ModelSpec(backbone=UPSTREAM_BACKBONE, level_names=tuple(names),
                     n_ctx=int(ctx.shape[-2]), csc=ctx.dim() == 3,
                     class_token_position=class_token_position or "end",
                     test_input=test_input, test_pipeline="reference")  # upstream used PIL


def _complete_inferred_spec(spec: ModelSpec, reg_state: dict, clip_model) -> ModelSpec:
    embed_dim = int(clip_model.text_projection.shape[1])
    resolution = int(clip_model.visual.input_resolution)
    return replace(spec, head_input=_infer_head_input(reg_state, embed_dim, len(spec.level_names)),
                   standardize_target="target_mean" in reg_state,
                   test_input=dict(spec.test_input, SIZE=[resolution, resolution]))


def _validated(build: Callable[[], ModelSpec], where: str) -> ModelSpec:
    """`build()`; a stored value that does not validate (`ValueError`) becomes a `ConfigError`
    naming `where` the run stores it."""
    try:
        return build()
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"invalid config in {where}: {exc}") from exc


def _stored_spec(run_dir: str, pl_checkpoint: dict, level_names: Sequence[str] | None,
                 class_token_position: str | None) -> tuple[ModelSpec | None, str]:
    """`(spec, source)` from the checkpoint's `model_spec`, else (runs written before it
    existed) config.yaml; `(None, "checkpoint")` when the run has neither. Passing level names
    or a class-token position that differ from the stored ones raises `ConfigError`."""
    config_path = os.path.join(run_dir, CONFIG_FILE)
    if pl_checkpoint.get("model_spec") is not None:
        try:
            spec = ModelSpec.from_dict(pl_checkpoint["model_spec"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{run_dir}: unreadable model_spec in the prompt_learner "
                              f"checkpoint: {exc}") from exc
        source, where = "model_spec", "the checkpoint's model_spec"
    elif os.path.isfile(config_path):
        cfg, names = _config_from_file(config_path)
        spec = _validated(lambda: ModelSpec.from_config(cfg, names), config_path)
        source, where = CONFIG_FILE, config_path
    else:
        return None, "checkpoint"
    names = list(spec.level_names)
    if (level_names and list(level_names) != names) or (
            class_token_position and class_token_position != spec.class_token_position):
        raise ConfigError(f"{where} sets the level names {names} and class-token "
                          f"position {spec.class_token_position!r}; do not pass other ones")
    return spec, source


def saved_model_spec(run_dir: str, epoch: int | None = None) -> tuple[ModelSpec | None, str]:
    """`(spec, source)` of the model `run_dir` deploys (`find_model_file`: `epoch`, else the best
    or latest checkpoint), as `load_run_model` rebuilds it, without loading CLIP: source
    "model_spec" or "config.yaml"; `(None, "checkpoint")` for the original code's output."""
    model_file = find_model_file(os.fspath(run_dir), epoch)
    path = module_checkpoint_paths(os.fspath(run_dir), ["prompt_learner"],
                                   model_file)["prompt_learner"]
    return _stored_spec(os.fspath(run_dir), read_module_checkpoint(path)[0], None, None)


def spec_config(spec: ModelSpec) -> dict:
    """Plain config subtrees that build `spec`'s model and test input in the trainer:
    `INPUT`, `MODEL`, `TRAINER` (with `NAME` CLIP_AGIQA, `CLIP_AGIQA.PREC` the spec's
    precision), `TEST.NUM_CROPS` and `DATASET.LEVEL_NAMES`."""
    cfg = spec.to_config()
    cfg.TRAINER.NAME = TRAINER_NAME
    plain = yaml.safe_load(cfg.dump())
    subtrees = {key: plain[key] for key in MODEL_SUBTREES}
    subtrees["TEST"] = {key: plain["TEST"][key] for key in TEST_KEYS}
    subtrees["DATASET"] = {"LEVEL_NAMES": list(spec.level_names)}
    return subtrees


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
                   class_token_position: str | None = None,
                   cpu_precision: str | None = None) -> RunModel:
    """Rebuild and load the model of `run_dir` (see the module docstring for the layouts).

    `cpu_precision`: a `CPU_PREC` (`fp32`, `bf16`, `fp16`; None or auto: none) the user chose for
    this scoring: on a CPU it replaces the precision the checkpoint records (`precision_note`
    says so; `trainers.method.precision.precision_for_checkpoint`).

    `backbone` (CLIP name or weights file) overrides the run's `MODEL.BACKBONE.NAME`;
    `level_names` / `class_token_position` are only for runs without config.yaml (a conflict
    with the stored config raises `ConfigError`). Missing files raise `FileNotFoundError`,
    checkpoints that do not fit the rebuilt model `CheckpointMismatchError` / `ConfigError`, a
    device this machine lacks `ConfigError` (`dassl.utils.resolve_device`).
    """
    run_dir = os.fspath(run_dir)
    device = resolve_device(device)
    model_file = find_model_file(run_dir, epoch)
    pl_path = module_checkpoint_paths(run_dir, ["prompt_learner"], model_file)["prompt_learner"]
    pl_checkpoint, pl_state = read_module_checkpoint(pl_path)
    spec, source = _stored_spec(run_dir, pl_checkpoint, level_names, class_token_position)
    modules = MODULE_NAMES if spec is None else module_names(spec)
    if modules != MODULE_NAMES:
        model_file = find_model_file(run_dir, epoch, modules)
    paths = module_checkpoint_paths(run_dir, modules, model_file)
    inferred = spec is None
    if inferred:
        spec = _spec_from_checkpoints(pl_state, level_names, class_token_position)
    # A relative weights file of a run written before paths were stored absolute is relative
    # to the run's working directory (run_info.json's cwd), not to this command's.
    spec = replace(spec, backbone=backbone or resolve_recorded_path(spec.backbone,
                                                                    recorded_cwd(run_dir)))
    precision, message = precision_for_checkpoint(
        spec.precision, spec.cpu_precision, device,
        resolve_precision(spec.precision, device, spec.cpu_precision), pl_checkpoint, pl_path,
        resume=False, evaluation_cpu_prec=cpu_precision)
    clip_model = load_clip(spec.backbone, precision)
    if inferred:
        reg_state = read_module_checkpoint(paths["regression"])[1]
        spec = _complete_inferred_spec(spec, reg_state, clip_model)
    model = CustomCLIP.from_spec(spec, clip_model)
    _check_prompts(model, pl_state, paths["prompt_learner"])
    load_module_checkpoints(checkpointed_modules(model, modules), run_dir, model_file,
                            IGNORED_ON_LOAD)
    model.to(device).eval()
    cfg = spec.with_precision(precision).to_config()
    cfg.freeze()
    return RunModel(model=model, spec=spec, cfg=cfg, level_names=list(spec.level_names),
                    precision=precision, device=device, config_source=source, model_files=paths,
                    precision_note=message)
