"""The CLIP-AGIQA trainer: learns prompt contexts and a regression head to predict MOS.

Registered in dassl's `TRAINER_REGISTRY` as "CLIP_AGIQA". Two modules are trained and
registered in this order: `prompt_learner` (the context vectors) and `regression` (the MLP head,
or the similarity head's affine map with `HEAD similarity`); each has its own optimizer and LR
scheduler built from `OPTIM`. The CLIP encoders are frozen, except that
`TRAIN_IMAGE_ENCODER last_k / lora` registers a third module, `image_encoder` (the trained
blocks or LoRA factors, learning rate `ENCODER_LR`).
Loss: MSE between predicted and ground-truth MOS (float32, mean over the batch).

`TRAINER.CLIP_AGIQA.PIPELINE` "fast" (default) replaces the image loaders with loaders of
precomputed image features (`trainers.fast.feature_loaders`): images are decoded once, augmented on
the device and encoded in large no-grad batches, test features are computed once, and the
training step runs only the prompt/text path and the head. The updates are those of the
"reference" pipeline (dassl's per-batch loaders, as upstream): same batches, augmentation
distribution, optimizer steps and per-epoch test. The data source is chosen once, in
`build_model` (`train_input`, `test_input`): the fast pipeline's batches carry `feat` `(B, D)`
image features and go through `CustomCLIP.predict_from_features`, the reference pipeline's (and
the training batches of a trained image encoder) carry `img` `(B, 3, H, W)` images and go
through `CustomCLIP.forward`.
"""
from __future__ import annotations

import os
from contextlib import nullcontext

import torch

from dassl.data.transforms import build_test_transform
from dassl.engine import TRAINER_REGISTRY, TrainerX
from dassl.engine.trainer import NOT_VALIDATED
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import CheckpointMismatchError, ConfigError, load_state_dict_checked
from dassl.utils.run_record import RUN_INFO_FILE, update_run_record

from .fast.decoded_images import header_sizes
from .fast.feature_loaders import (CachedFeatureLoader, FeatureEpochLoader, ImageEpochLoader,
                                   ImageFeatureEncoder)
from .fast.memory_plan import MemoryPlan, plan_memory
from .fast.multi_crop import MultiCropTransform
from .fast.tensor_transforms import TensorTransform
from .inference.run_model import TrainedRun
from .method.custom_clip import (ENCODER_MODULE, IGNORED_ON_LOAD, MODULE_NAMES, CustomCLIP,
                                 load_clip, load_clip_to_cpu, module_names,
                                 training_target_stats)
from .method.model_spec import MethodConfig, ModelSpec, PipelineOptions, fast_unsupported_reason
from .method.precision import describe, resolve_precision
from .method.prompt_learner import PromptLearner, TextEncoder
from .method.similarity_head import training_mos_range

__all__ = ["CLIP_AGIQA", "CustomCLIP", "PromptLearner", "TextEncoder", "load_clip_to_cpu",
           "CheckpointMismatchError", "load_state_dict_checked"]

def check_prompts(spec: ModelSpec, splits: dict) -> None:
    """With `PROMPT_TEMPLATE`, every image of every split needs a generation prompt.

    `splits` maps a split name to its Datum list. Raises `ConfigError` naming the first image
    without one and how to provide prompts.
    """
    if not spec.prompt_template:
        return
    for split, items in splits.items():
        missing = [item.name for item in items or [] if getattr(item, "prompt", None) is None]
        if missing:
            raise ConfigError(
                f"TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE needs each image's generation prompt, but "
                f"{len(missing)} {split} image(s) have none (e.g. {missing[0]}): use a database "
                "with a prompt column (AGIQA-3K) or set DATASET.PROMPT_FILE (CSV name,prompt)")


@TRAINER_REGISTRY.register()
class CLIP_AGIQA(TrainerX):
    """CoOp-style prompt learning + MLP regression of MOS on frozen CLIP features."""

    def __init__(self, cfg, validated=NOT_VALIDATED, trained: TrainedRun | None = None) -> None:
        """`trained`: the run an evaluation loads (`train.py --eval-only`): its spec, when it
        has one, is the model built, in the precision its checkpoints record (`TrainedRun
        .precision`), with its test input; the config's model keys do not apply."""
        self.trained = trained
        super().__init__(cfg, validated)

    @classmethod
    def validate_cfg(cls, cfg) -> MethodConfig:
        """Dassl's checks and the method's: the model spec (level names of
        `DATASET.LEVEL_NAMES`; the dataset's own ones are set in `build_model`) and the pipeline
        options, built once per run. Raises `ConfigError` / `ValueError` naming the key."""
        super().validate_cfg(cfg)
        return MethodConfig.from_config(cfg)

    @property
    def pipeline_options(self) -> PipelineOptions:
        """How this trainer feeds the model (validated with the config)."""
        return self.validated.pipeline

    def checkpoint_extra_state(self) -> dict:
        """Also (amp) the gradient scaler's state; the effective precision is recorded in every
        module checkpoint's `model_spec`."""
        state = super().checkpoint_extra_state()
        if self.scaler is not None:
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def restore_extra_state(self, state: dict) -> None:
        super().restore_extra_state(state)
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])

    def _make_scaler(self):
        return torch.amp.GradScaler(self.device.type) if self.prec == "amp" else None

    def _record_precision(self) -> None:
        """Put the effective precision into OUTPUT_DIR/run_info.json (when train.py wrote one)."""
        path = os.path.join(self.cfg.OUTPUT_DIR, RUN_INFO_FILE)
        if os.path.isfile(path):
            update_run_record(self.cfg.OUTPUT_DIR, precision=self.prec)

    def _model_spec(self) -> ModelSpec:
        """The model to build: the evaluated run's spec, else the validated config's."""
        trained = self.trained.spec if self.trained is not None else None
        return trained or self.validated.spec

    def evaluation_only(self) -> bool:
        """An evaluation (`trained` given) reads no training image and trains nothing."""
        return self.trained is not None

    def test_transform(self):
        """An evaluated run's own test transform for dassl's image loaders (reference pipeline);
        None otherwise (the config's INPUT builds it)."""
        if self.trained is None or self.trained.spec is None:
            return None
        test = self.trained.spec.test_input
        return build_test_transform(test.size, test.interpolation, test.mean, test.std,
                                    test.normalize)

    def _run_to_load(self, spec: ModelSpec) -> tuple[TrainedRun | None, bool]:
        """`(run, resume)`: the evaluated run, else the checkpoints a resume will load
        (`cfg.RESUME` or OUTPUT_DIR), else `(None, False)`."""
        if self.trained is not None:
            return self.trained, False
        directory = self.cfg.RESUME or self.output_dir
        fname = self._resume_file_name(directory, list(module_names(spec)))
        return (None, False) if fname is None else (TrainedRun(directory, fname), True)

    def _precision(self, spec: ModelSpec) -> str:
        """The effective precision to build in: the configured one on this device, or the one
        the checkpoints to load were computed in (see `TrainedRun.precision`), said once."""
        run, resume = self._run_to_load(spec)
        note = None
        if run is None:
            precision = resolve_precision(spec.precision, self.device, spec.cpu_precision)
        else:
            precision, note = run.precision(self.device, spec, resume)
            # Loading or resuming reads these files: read once (`open_checkpoints`).
            self.opened_checkpoints = run.checkpoints
        print(note or describe(precision, spec.precision, spec.cpu_precision, self.device))
        return precision

    def build_model(self) -> None:
        spec = self._spec_for_levels(self.level_names)
        self.prec = self._precision(spec)
        # What every module checkpoint records: the model with the precision it ran in.
        self.spec = spec.with_precision(self.prec)

        print(f"Loading CLIP (backbone: {spec.backbone})")
        clip_model = load_clip(spec.backbone, self.prec)

        dataset = self.dm.dataset
        check_prompts(spec, {"training": dataset.train_x, "validation": dataset.val,
                             "test": dataset.test})
        print("Building custom CLIP")
        # Without a training split (SPLIT_MODE all, evaluation only) the target statistics and
        # MOS range are the trained run's, loaded with the head's checkpoint: this data's scale
        # never enters the model.
        train_x = dataset.train_x
        target_stats = (training_target_stats(train_x)
                        if spec.standardize_target and train_x else None)
        mos_range = (training_mos_range(train_x) if spec.head == "similarity" and train_x
                     else None)
        self.model = CustomCLIP.from_spec(self.spec, clip_model, target_stats, mos_range)
        if self.model.dtype == torch.float16 and self.spec.fp32_ctx:
            print("Learnable context: float32, cast to float16 in the text tower (an optimiser "
                  "other than SGD: its float16 state would underflow; SGD keeps the original's "
                  "float16 context)")

        if not self.evaluation_only():
            print("Turning off gradients in both the image and the text encoder")
        trainable_prefixes = tuple(f"{name}." for name in MODULE_NAMES)
        for name, param in self.model.named_parameters():
            param.requires_grad_(name.startswith(trainable_prefixes))
        if self.model.encoder_tuning is not None:
            print(f"Fine-tuning the image encoder: TRAIN_IMAGE_ENCODER {spec.train_image_encoder} "
                  f"(learning rate {self.pipeline_options.encoder_lr}, parameters in float32)")
            for param in self.model.encoder_tuning.parameters():
                param.requires_grad_(True)
        if not self.evaluation_only():  # what would train: nothing does in an evaluation
            for name, param in self.model.named_parameters():
                if param.requires_grad:
                    print(f"training paras:  {name}")
            n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
            print(f"# trainable parameters: {n_trainable:,}")

        self.model.to(self.device)
        if self.pipeline_options.compile and self.model.compile_image_encoder().compiled:
            print("Image encoder: compiled with torch.compile at its first batch of each input "
                  "shape (TRAINER.CLIP_AGIQA.COMPILE)")
        for name in MODULE_NAMES:
            module = getattr(self.model, name)
            optim = build_optimizer(module, self.cfg.OPTIM)
            sched = build_lr_scheduler(optim, self.cfg.OPTIM)
            self.register_model(name, module, optim, sched)
        if self.model.encoder_tuning is not None:
            encoder_optim_cfg = self.cfg.OPTIM.clone()
            encoder_optim_cfg.defrost()
            encoder_optim_cfg.LR = self.pipeline_options.encoder_lr
            optim = build_optimizer(self.model.encoder_tuning, encoder_optim_cfg)
            sched = build_lr_scheduler(optim, encoder_optim_cfg)
            self.register_model(ENCODER_MODULE, self.model.encoder_tuning, optim, sched)
        self.scaler = self._make_scaler()
        self._record_precision()

        self.pipeline = self.spec.test_input.pipeline
        # The data source, chosen once: batches carry image features ("feat", fast pipeline)
        # or images ("img": reference pipeline, and training batches of a trained encoder).
        self.test_input = "feat" if self.pipeline == "fast" else "img"
        tuned = self.model.encoder_tuning is not None
        self.train_input = "img" if tuned else self.test_input
        self._test_prompts = None
        reason = fast_unsupported_reason(self.cfg) if self.trained is None else None
        if self.pipeline != self.pipeline_options.pipeline and reason:
            print(f"Fast pipeline unavailable ({reason}): using the reference pipeline")
        if self.pipeline == "fast":
            self._use_feature_loaders()
        elif self.spec.test_input.crops > 1:
            raise ConfigError("TEST.NUM_CROPS > 1 needs the fast pipeline, which this config "
                              "cannot use (see the log line above)")

    def _spec_for_levels(self, level_names: list[str]) -> ModelSpec:
        """The model's spec (`_model_spec`) with the dataset's level names (the prompt length is
        checked again only when they are not the spec's)."""
        spec = self._model_spec()
        return spec if list(spec.level_names) == level_names else \
            spec.with_level_names(level_names)

    def module_checkpoint_entries(self) -> dict:
        """`model_spec` (plain data) in every module checkpoint: the weights rebuild their model
        without config.yaml."""
        return {"model_spec": self.spec.to_dict()}

    def _use_feature_loaders(self) -> None:
        """Swap the train/val/test image loaders for feature loaders over the same splits."""
        cfg, options = self.cfg, self.pipeline_options
        on_device = options.decoded_on == "device"
        self.image_feature_encoder = ImageFeatureEncoder(
            self.model, self.device, options.encode_batch_size, self._autocast)
        test_transform = MultiCropTransform(self.spec.test_input)
        self.memory_plan = plan = self._plan_memory(test_transform)
        workers = int(cfg.DATALOADER.NUM_WORKERS)
        if self.dm.train_loader_x is not None:
            train_loader = ImageEpochLoader if self.model.encoder_tuning is not None \
                else FeatureEpochLoader
            self.train_loader_x = train_loader(
                self.dm.train_loader_x, TensorTransform.from_config(cfg, is_train=True),
                self.image_feature_encoder, on_device, plan.train, workers)
        if self.dm.test_loader is not None:
            self.test_loader = CachedFeatureLoader(
                self.dm.test_loader, test_transform, self.image_feature_encoder, on_device,
                plan.evaluation, workers)
        if self.val_loader is not None:
            self.val_loader = CachedFeatureLoader(
                self.dm.val_loader, test_transform, self.image_feature_encoder, on_device,
                plan.evaluation, workers)
        place = self.device if on_device else "cpu"
        crops = self.spec.test_input.crops
        tests = f"{crops} test crops per image, " if crops > 1 else ""
        if self.model.encoder_tuning is not None:
            print(f"Pipeline: fast, but the image encoder trains (TRAIN_IMAGE_ENCODER "
                  f"{self.spec.train_image_encoder}), so the image features change every step and the "
                  f"training feature cache does not apply: images decoded once and kept on "
                  f"{place}, augmented on the device and encoded at every step; {tests}test "
                  "features recomputed after each update")
            return
        print(f"Pipeline: fast (images decoded once and kept on {place}, encoded in batches of "
              f"{options.encode_batch_size}, {tests}test features cached)")

    def _plan_memory(self, test_transform: MultiCropTransform) -> MemoryPlan:
        """How each split keeps its images under `DECODED_MEMORY_GB` (`plan_memory`, sizes from
        the image headers); the choice is one log line."""
        dataset = self.dm.dataset
        splits = {"train": dataset.train_x if self.dm.train_loader_x is not None else None,
                  "val": dataset.val if self.val_loader is not None else None,
                  "test": dataset.test if self.dm.test_loader is not None else None}
        sizes = {name: header_sizes([item.impath for item in items]) if items else []
                 for name, items in splits.items()}
        plan = plan_memory(sizes, self.pipeline_options.decoded_memory_gb,
                           test_transform.size, test_transform.num_crops,
                           int(self.cfg.DATALOADER.NUM_WORKERS))
        print(plan.message)
        return plan

    def _autocast(self):
        """Autocast for amp (as the reference forward), a no-op context otherwise."""
        return torch.amp.autocast(self.device.type) if self.prec == "amp" else nullcontext()

    def _predict(self, inputs: torch.Tensor, kind: str, prompts=None) -> torch.Tensor:
        """`(B,)` MOS from inputs of `kind`: "feat" image features `(B, D)` (or `(B, C, D)` test
        crops) or "img" images `(B, 3, H, W)`; `prompts`: the images' generation prompts
        (PROMPT_TEMPLATE)."""
        if kind == "feat":
            return self.model.predict_from_features(inputs, prompts)
        return self.model(inputs, prompts)

    def set_model_mode(self, mode: str = "train", names=None) -> None:
        """Also switch the whole CustomCLIP, not only the registered modules (for all names)."""
        super().set_model_mode(mode, names)
        if names is None:
            self.model.train(mode == "train")

    def parse_batch_train(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(inputs, mos (B,) float32)` on the trainer's device; `inputs` are the batch's
        `train_input` entry."""
        if "mos" not in batch:
            raise KeyError(
                "CLIP_AGIQA needs MOS labels: the training batch has no 'mos' entry (keys: "
                f"{sorted(batch)}); use a dataset whose Datum objects carry mos"
            )
        inputs = batch[self.train_input].to(self.device, non_blocking=True)
        mos = batch["mos"].to(self.device, dtype=torch.float32, non_blocking=True)
        return inputs, mos

    def parse_batch_test(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """`(inputs, target)`: the batch's `test_input` entry on the device and dassl's
        `test_target` (the MOS)."""
        inputs = batch[self.test_input]
        self._test_prompts = batch.get("prompt")
        return inputs.to(self.device, non_blocking=True), self.test_target(batch)

    def test(self, split: str | None = None, tag: str | None = None) -> float:
        """dassl's `test`, also keeping `test_level_probabilities`: `(N, n_levels)` float32,
        the level prompts read zero-shot (`CustomCLIP.assess_features`, one text encoding for the
        scores and these) per tested image in
        loader order (the run report reads them)."""
        self._level_probabilities: list[torch.Tensor] = []
        return super().test(split, tag)

    @property
    def test_level_probabilities(self) -> torch.Tensor | None:
        """See `test`; None before a test."""
        parts = getattr(self, "_level_probabilities", None)
        if parts is None:
            return None
        return torch.cat(parts) if parts else torch.zeros(0, len(self.level_names))

    def model_inference(self, input: torch.Tensor) -> torch.Tensor:
        # The generation prompts of the batch last seen by parse_batch_test (PROMPT_TEMPLATE).
        prompts = self._test_prompts
        features = input if self.test_input == "feat" else self.model.encode_image(input)
        if getattr(self, "_level_probabilities", None) is None:
            return self._predict(features, "feat", prompts)
        scores, probabilities = self.model.assess_features(features, prompts)
        self._level_probabilities.append(probabilities.float().cpu())
        return scores

    def forward_backward(self, batch: dict) -> dict[str, float]:
        inputs, mos = self.parse_batch_train(batch)
        with self._autocast():
            output = self._predict(inputs, self.train_input, batch.get("prompt"))
        loss = self.model.loss(output, mos)
        if self.scaler is None:
            self.model_backward_and_update(loss)
        else:
            self.model_zero_grad()
            self.detect_anomaly(loss)
            self.scaler.scale(loss).backward()
            # Every registered optimizer goes through the scaler (upstream stepped only one).
            for name in self.get_model_names():
                # HEAD_INPUT "image" leaves the prompts without gradients: the scaler refuses those.
                if any(p.grad is not None for p in self._models[name].parameters()):
                    self.scaler.step(self._optims[name])
            self.scaler.update()
        return {"loss": loss.item()}

    def checkpoint_ignored_keys(self) -> dict:
        """The prompt buffers are recomputed from the level names: not required on loading."""
        return dict(IGNORED_ON_LOAD)
