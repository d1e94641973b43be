"""A trained run, read once (`TrainedRun`), and its model rebuilt for scoring (`load_run_model`).

A run directory holds `prompt_learner/` and `regression/` with checkpoints (and
`image_encoder/` when the run fine-tuned the image encoder, TRAIN_IMAGE_ENCODER). `TrainedRun`
opens the module checkpoints of one file name (`dassl.utils.ModuleCheckpoints`: each file read
once per command) and hands out what they record: the `ModelSpec` (the `model_spec` entry of the
prompt learner's checkpoint: the model, test input and effective precision the weights were
computed with, so copied weights rebuild their model alone), the precision to compute in, and
the weights. `train.py --eval-only`, a resume and `load_scorer` use it.

The original code's output has no spec: `load_run_model` reads it off the checkpoints' shapes
("checkpoint"). `ctx` `(n_ctx, width)` or `(n_levels, n_ctx, width)` gives N_CTX and CSC,
`token_prefix` `(n_levels, 1, width)` the number of levels, the width of `1.weight` (together
with the backbone's embedding dim) the head input, `target_mean` in the head's state the target
standardisation. What the checkpoints cannot tell (backbone, level names, class-token position)
comes from the arguments, defaulting to upstream's ViT-B/16, the six upstream level names and
"end". The level names and backbone are checked against the prompt embeddings stored in the
checkpoint (`token_suffix` holds the embedded level-name tokens).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from dassl.data.levels import UPSTREAM_LEVEL_NAMES
from dassl.utils import (BEST_MODEL_NAME, ConfigError, LoadedCheckpoint, ModuleCheckpoints,
                         checkpoint_file_name, read_checkpoint_pointer, resolve_device)
from dassl.utils.run_dir import check_run_dir

from ..method.custom_clip import (IGNORED_ON_LOAD, MODULE_NAMES, CustomCLIP, head_input_size,
                                  load_clip, module_names)
from ..method.model_spec import ModelSpec
from ..method.precision import precision_for_checkpoint

__all__ = ["RunModel", "TrainedRun", "load_run_model", "check_trained_run", "find_model_file",
           "UPSTREAM_LEVEL_NAMES"]

# What a run directory is called in error messages.
RUN_KIND = "trained CLIP-AGIQA run"
UPSTREAM_BACKBONE = "ViT-B/16"
# The module whose checkpoint carries the spec and the recorded precision.
FIRST_MODULE = MODULE_NAMES[0]


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


class TrainedRun:
    """The module checkpoints `directory/<module>/<file_name>` of a trained (or resumed) run,
    each file read once, and what they record.

    `spec`: the prompt learner checkpoint's `model_spec` (None for the original code's
    checkpoints); `cpu_precision`: a `CPU_PREC` the user chose for this evaluation or scoring
    (None: the recorded precision applies; see `precision`). Raises `FileNotFoundError`,
    `CheckpointFileError`, or `ConfigError` for an unreadable spec.
    """

    def __init__(self, directory: str, file_name: str, cpu_precision: str | None = None,
                 backbone: str | None = None) -> None:
        self.checkpoints = ModuleCheckpoints(directory, file_name)
        self.cpu_precision = cpu_precision
        stored = self.checkpoints.read(FIRST_MODULE)[0].get("model_spec")
        self.spec = None if stored is None else self._read_spec(stored)
        if self.spec is not None and backbone:
            self.spec = replace(self.spec, backbone=backbone)

    @classmethod
    def deployed(cls, run_dir: str, epoch: int | None = None, cpu_precision: str | None = None,
                 backbone: str | None = None) -> "TrainedRun":
        """The model `run_dir` deploys (`find_model_file`: `epoch`, else the best or latest
        checkpoint), every module file of it present; `backbone` replaces the spec's."""
        run_dir = os.fspath(run_dir)
        run = cls(run_dir, find_model_file(run_dir, epoch), cpu_precision, backbone)
        if run.module_names != MODULE_NAMES:
            find_model_file(run_dir, epoch, run.module_names)
        return run

    def _read_spec(self, stored: dict) -> ModelSpec:
        try:
            return ModelSpec.from_dict(stored)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path(FIRST_MODULE)}: unreadable model_spec: {exc}") from exc

    @property
    def module_names(self) -> tuple[str, ...]:
        """The checkpointed modules of the run's model (`custom_clip.module_names`)."""
        return MODULE_NAMES if self.spec is None else module_names(self.spec)

    def path(self, name: str) -> str:
        return self.checkpoints.path(name)

    def state(self, name: str) -> dict:
        """The state dict of module `name` (read once)."""
        return self.checkpoints.read(name)[1]

    def precision(self, device: torch.device, configured: ModelSpec | None = None,
                  resume: bool = False) -> tuple[str, str | None]:
        """`(precision, log line or None)` to build the model in on `device`: the one the
        checkpoints record, unless `cpu_precision` or the `configured` spec's (default: the
        run's own) forced `CPU_PREC` decides (`trainers.method.precision
        .precision_for_checkpoint`; a resume never changes precision)."""
        configured = configured or self.spec
        return precision_for_checkpoint(
            configured.precision, configured.cpu_precision, device,
            self.checkpoints.read(FIRST_MODULE)[0], self.path(FIRST_MODULE), resume,
            self.cpu_precision)

    def load_into(self, model: CustomCLIP) -> dict[str, LoadedCheckpoint]:
        """Load the weights into `model`'s checkpointed modules (strict but for the recomputed
        prompt buffers); raises `CheckpointMismatchError` naming the file."""
        return self.checkpoints.load(model.checkpointed_modules(), IGNORED_ON_LOAD)


@dataclass
class RunModel:
    """A run's rebuilt model: `model` (CustomCLIP in eval mode on `device`), its `spec` (the
    effective precision), `level_names`, `precision`, `config_source` ("model_spec" or
    "checkpoint"), `model_files` (module name -> absolute checkpoint path) and `precision_note`
    (why the precision differs from the recorded one; None when it does not)."""

    model: CustomCLIP
    spec: ModelSpec
    level_names: list[str]
    precision: str
    device: torch.device
    config_source: str
    model_files: dict[str, str] = field(default_factory=dict)
    precision_note: str | None = None


def _spec_from_checkpoints(pl_state: dict, level_names: Sequence[str] | None,
                           class_token_position: str | None, backbone: str | None) -> ModelSpec:
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
    # The learned ctx replaces any initial words; only the token count matters. The test input
    # defaults are the original method's (CLIP's preprocessing, PIL).
    return ModelSpec(backbone=backbone or UPSTREAM_BACKBONE, level_names=tuple(names),
                     n_ctx=int(ctx.shape[-2]), csc=ctx.dim() == 3,
                     class_token_position=class_token_position or "end")


def _complete_inferred_spec(spec: ModelSpec, reg_state: dict, clip_model) -> ModelSpec:
    embed_dim = int(clip_model.text_projection.shape[1])
    resolution = int(clip_model.visual.input_resolution)
    return replace(spec, head_input=_infer_head_input(reg_state, embed_dim, len(spec.level_names)),
                   standardize_target="target_mean" in reg_state,
                   test_input=replace(spec.test_input, size=(resolution, resolution)))


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

    `backbone` (CLIP name or weights file) overrides the run's; `level_names` /
    `class_token_position` are only for the original code's runs (a run with a spec that sets
    others raises `ConfigError`). Missing files raise `FileNotFoundError`, checkpoints that do
    not fit the rebuilt model `CheckpointMismatchError` / `ConfigError`, a device this machine
    lacks `ConfigError` (`dassl.utils.resolve_device`).
    """
    device = resolve_device(device)
    run = TrainedRun.deployed(run_dir, epoch, cpu_precision, backbone)
    spec, pl_path = run.spec, run.path(FIRST_MODULE)
    if spec is None:
        spec = _spec_from_checkpoints(run.state(FIRST_MODULE), level_names, class_token_position,
                                      backbone)
    elif (level_names and list(level_names) != list(spec.level_names)) or (
            class_token_position and class_token_position != spec.class_token_position):
        raise ConfigError(f"{pl_path}'s model_spec sets the level names {list(spec.level_names)} "
                          f"and class-token position {spec.class_token_position!r}; do not pass "
                          "other ones")
    precision, message = run.precision(device, spec)
    clip_model = load_clip(spec.backbone, precision)
    if run.spec is None:
        spec = _complete_inferred_spec(spec, run.state("regression"), clip_model)
    model = CustomCLIP.from_spec(spec, clip_model)
    _check_prompts(model, run.state(FIRST_MODULE), pl_path)
    loaded = run.load_into(model)
    model.to(device).eval()
    return RunModel(model=model, spec=spec.with_precision(precision),
                    level_names=list(spec.level_names), precision=precision, device=device,
                    config_source="checkpoint" if run.spec is None else "model_spec",
                    model_files={name: item.path for name, item in loaded.items()},
                    precision_note=message)
