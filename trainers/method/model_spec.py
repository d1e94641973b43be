"""The method's config keys and the typed objects built from them: the one reader of
`TRAINER.CLIP_AGIQA.*`.

- `add_trainer_config(cfg)` declares the keys (before any yaml or option sets them: yacs rejects
  unknown keys).
- `ModelSpec.from_config(cfg, level_names)` builds and validates the frozen description of the
  model (backbone, level names, prompts, head, precision, test-time input: `TestInput`). It is
  saved as plain data (`to_dict`) under `model_spec` in every module checkpoint, so a run's
  weights rebuild their model and its test input without `config.yaml` (`from_dict`); no config
  is ever built back from a spec.
- `PipelineOptions.from_config(cfg)`: how the trainer feeds images (not part of the model).
- `MethodConfig.from_config(cfg)`: both, built once per run (the trainer's `validate_cfg`).

A new option of the method is a key in `_KEYS`, a field of `ModelSpec` (the key's name in
lower case, the key's default) read in `from_config`, and its use in the model
(`CustomCLIP.from_spec`); saving it in checkpoints, rebuilding it (`from_dict`) and comparing
runs need nothing more. Invalid values raise `ValueError` naming the key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Sequence

from yacs.config import CfgNode as CN

from clip.clip import OPENAI_MEAN, OPENAI_STD

__all__ = ["ModelSpec", "TestInput", "PipelineOptions", "fast_unsupported_reason", "MethodConfig",
           "SPEC_VERSION", "FP16_CONTEXT_OPTIMIZERS", "add_trainer_config",
           "check_trainer_config", "count_bpe_tokens", "PRECISIONS", "CPU_PRECISIONS", "PIPELINES",
           "DECODED_ON",
           "CLASS_TOKEN_POSITIONS", "HEAD_INPUTS", "HEADS", "ENCODER_MODES",
           "EXTRA_PROMPT_TOKENS"]

PRECISIONS = ("fp16", "fp32", "amp", "bf16")
CPU_PRECISIONS = ("auto", "fp16", "bf16", "fp32")
PIPELINES = ("fast", "reference")
DECODED_ON = ("device", "cpu")
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")
HEAD_INPUTS = ("image_text", "image", "text")
HEADS = ("mlp", "similarity")
ENCODER_MODES = ("none", "last_k", "lora")
# Tokens of a prompt besides the context and the level name: SOT, the final "." and EOT.
EXTRA_PROMPT_TOKENS = 3
# CLIP's text context length (all OpenAI models).
CONTEXT_LENGTH = 77
# Version of the `model_spec` checkpoint entry; `from_dict` reads this one (2: typed test input).
SPEC_VERSION = 2
# What the fast pipeline's tensor transforms reproduce (`trainers.fast.tensor_transforms`).
FAST_TRANSFORMS = ("random_resized_crop", "random_crop", "random_flip", "center_crop",
                   "normalize")
FAST_INTERPOLATIONS = ("bicubic", "bilinear")
# Optimisers (`OPTIM.NAME`) that update a float16 context in float16, as the original does with
# SGD; every other one keeps a float32 context (`ModelSpec.fp32_ctx`): its state (Adam's second
# moment, RMSprop's square average) and eps underflow in float16 (see trainers.method.precision).
FP16_CONTEXT_OPTIMIZERS = ("sgd",)

# key -> (default, meaning); the meaning doubles as the one-line comment of each key.
_KEYS = {
    "N_CTX": (16, "number of learnable context tokens (CTX_INIT's token count wins when set)"),
    "CSC": (False, "class-specific contexts: one context per quality level instead of a shared one"),
    "CTX_INIT": ("", "words initialising the shared context, e.g. 'a photo of a'; '' = random init"),
    "PREC": ("fp16", "precision: fp16 (CLIP and ctx in half, as upstream; on a CPU see CPU_PREC), "
                     "fp32, amp (autocast: fp16 on GPU, bf16 on CPU), bf16 (towers in bfloat16)"),
    "CPU_PREC": ("auto", "what PREC fp16 runs in on a CPU: auto (bf16 where the CPU has native "
                         "bf16, else fp32), fp16, bf16, fp32"),
    "CLASS_TOKEN_POSITION": ("end", "level name position relative to the context: end/middle/front"),
    "PIPELINE": ("fast", "fast: decode once, batch/cache the frozen image features; "
                         "reference: per-batch decode + encode (same updates; parity checks)"),
    "ENCODE_BATCH_SIZE": (256, "fast pipeline: images per no-grad image-encoder call"),
    "DECODED_ON": ("device", "fast pipeline: hold the decoded uint8 images on 'device' or 'cpu'"),
    "DECODED_MEMORY_GB": (12.0, "fast pipeline: most GiB the decoded uint8 images of all splits "
                                "may take (estimated from the image headers); above it test/val "
                                "images are kept as their test crops and training images are "
                                "decoded each epoch in DATALOADER.NUM_WORKERS processes (logged); "
                                "12 fits a 24 GiB machine beside CLIP and the rest"),
    "HEAD_INPUT": ("image_text", "head input: image_text (upstream), image, or text (level-prompt "
                                 "features scaled by their cosine similarity to the image)"),
    "HEAD_DROPOUT": (0.5, "dropout probability before each Linear layer of the regression head "
                          "(upstream 0.5)"),
    "STANDARDIZE_TARGET": (False, "regress (MOS - mean) / std of the training split (MSE on that "
                                  "scale); False = raw MOS (upstream); predictions stay in MOS"),
    "HEAD": ("mlp", "mlp: regression MLP (upstream); similarity: CLIP logit scale x cosine to each "
                    "level, softmax, expected level index, learned affine map to MOS"),
    "PROMPT_TEMPLATE": ("", "level prompt with the image's generation prompt, e.g. "
                            "'{level}, {prompt}'; '' = plain level prompts (upstream)"),
    "TRAIN_IMAGE_ENCODER": ("none", "image encoder: none (frozen, upstream), last_k (last "
                                    "ENCODER_LAST_K blocks train) or lora (rank LORA_RANK)"),
    "ENCODER_LAST_K": (1, "last_k: number of trained transformer blocks at the top of the ViT"),
    "LORA_RANK": (4, "lora: rank of the adapters on the attention and MLP projections"),
    "COMPILE": (False, "compile the frozen image encoder with torch.compile (inductor: C++ on a "
                       "CPU, Triton on a GPU): a fixed compile time per batch shape, repaid over "
                       "training epochs (where: docs/performance.md); a compile that fails falls "
                       "back to the uncompiled encoder with one log line"),
    "ENCODER_LR": (5e-6, "learning rate of the trained image-encoder parameters (OPTIM.LR is the "
                         "prompts' and head's)"),
}



def add_trainer_config(cfg: CN) -> CN:
    """Declare `TRAINER.CLIP_AGIQA.*` with their defaults and return `cfg`.

    Idempotent: keys that already exist keep their value. Raises `ValueError` if `cfg` is frozen
    and a key is missing.
    """
    if "CLIP_AGIQA" not in cfg.TRAINER:
        if cfg.is_frozen():
            raise ValueError("cannot add TRAINER.CLIP_AGIQA: the config is frozen; call "
                             "add_trainer_config(cfg) before cfg.freeze()")
        cfg.TRAINER.CLIP_AGIQA = CN()
    node = cfg.TRAINER.CLIP_AGIQA
    for key, (default, _meaning) in _KEYS.items():
        if key in node:
            continue
        if node.is_frozen():
            raise ValueError(f"cannot add TRAINER.CLIP_AGIQA.{key}: the config is frozen")
        setattr(node, key, default)
    return cfg


def count_bpe_tokens(text: str) -> int:
    """Number of BPE tokens of `text` (without SOT/EOT), counted with CLIP's own tokenizer."""
    from clip import clip

    # A generous context so counting never raises; the EOT id is the largest, so argmax finds it.
    ids = clip.tokenize(text, context_length=1024, truncate=True)[0]
    return int(ids.argmax().item()) - 1


def _choice(node: CN, key: str, choices: Sequence[str]) -> str:
    value = node[key]
    if value not in choices:
        raise ValueError(f"TRAINER.CLIP_AGIQA.{key} must be one of {tuple(choices)}, "
                          f"got {value!r}")
    return value


def _positive_int(node: CN, key: str, prefix: str = "TRAINER.CLIP_AGIQA.") -> int:
    value = node[key]
    if isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{prefix}{key} must be a positive integer, got {value!r}")
    return int(value)


def _flag(node: CN, key: str) -> bool:
    value = node[key]
    if not isinstance(value, bool):
        raise ValueError(f"TRAINER.CLIP_AGIQA.{key} must be True or False, got {value!r}")
    return value


def _probability(node: CN, key: str) -> float:
    value = node[key]
    if isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"TRAINER.CLIP_AGIQA.{key} must be a probability in [0, 1), got "
                         f"{value!r}")
    return float(value)


def _plain(value: Any) -> Any:
    """YAML/`weights_only`-safe copy: tuples become lists, CfgNodes dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fast_unsupported_reason(cfg: CN) -> str | None:
    """Why the fast pipeline cannot reproduce `cfg`'s transforms, or None if it can."""
    inp, dl = cfg.INPUT, cfg.DATALOADER
    if inp.NO_TRANSFORM:
        return "INPUT.NO_TRANSFORM is set"
    unknown = [c for c in inp.TRANSFORMS if c not in FAST_TRANSFORMS]
    if unknown:
        return f"INPUT.TRANSFORMS {unknown} (supported: {list(FAST_TRANSFORMS)})"
    if inp.INTERPOLATION not in FAST_INTERPOLATIONS:
        return (f"INPUT.INTERPOLATION {inp.INTERPOLATION!r} (supported: "
                f"{list(FAST_INTERPOLATIONS)})")
    if dl.K_TRANSFORMS != 1 or dl.RETURN_IMG0:
        return "DATALOADER.K_TRANSFORMS != 1 or DATALOADER.RETURN_IMG0"
    return None


@dataclass(frozen=True)
class TestInput:
    """How a test image becomes the model's input: shorter side resized to `max(size)` with
    `interpolation`, `size` `(height, width)` pixels cropped at the centre (`crops` > 1: a grid
    of `crops` such crops, `TEST.NUM_CROPS`), scaled to [0, 1] and, when `normalize`,
    standardised per RGB channel by `mean` and `std` ([0, 1] units). `pipeline` "fast" (the
    tensor transform of decoded images) or "reference" (dassl's PIL transform): how the run
    computed it. Defaults: the original method's (CLIP's own preprocessing, PIL)."""

    __test__ = False  # a name pytest would otherwise collect
    size: tuple[int, int] = (224, 224)
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = OPENAI_MEAN
    std: tuple[float, ...] = OPENAI_STD
    normalize: bool = True
    crops: int = 1
    pipeline: str = "reference"

    @classmethod
    def from_config(cls, cfg: CN) -> "TestInput":
        """The test input of `cfg` (`INPUT.*`, `TEST.NUM_CROPS`, `PIPELINE` where the fast path
        supports the transforms); raises `ValueError` naming the key."""
        pipeline = _choice(cfg.TRAINER.CLIP_AGIQA, "PIPELINE", PIPELINES)
        crops = _positive_int(cfg.TEST, "NUM_CROPS", prefix="TEST.")
        if crops > 1 and pipeline != "fast":
            raise ValueError("TEST.NUM_CROPS > 1 needs TRAINER.CLIP_AGIQA.PIPELINE fast (the crops "
                             "are cut from the decoded images)")
        if pipeline == "fast" and fast_unsupported_reason(cfg) is not None:
            pipeline = "reference"
        inp = cfg.INPUT
        return cls(size=(int(inp.SIZE[0]), int(inp.SIZE[1])), interpolation=inp.INTERPOLATION,
                   mean=tuple(float(v) for v in inp.PIXEL_MEAN),
                   std=tuple(float(v) for v in inp.PIXEL_STD),
                   normalize="normalize" in inp.TRANSFORMS, crops=crops, pipeline=pipeline)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TestInput":
        """Inverse of `dataclasses.asdict` (lists back to tuples); raises `TypeError` for
        unknown entries."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class ModelSpec:
    """Everything that defines a CLIP-AGIQA model and its test-time input.

    A field read from a `TRAINER.CLIP_AGIQA.*` key is the key's name in lower case (`PREC`,
    `CPU_PREC`: `precision`, `cpu_precision`) and means what docs/config_keys.md (generated from
    `_KEYS`) says, except: `n_ctx` is the effective context length (CTX_INIT's BPE token count
    when `ctx_init` is set) and `precision` the effective one once the trainer has resolved it for
    its device (`trainers.method.precision`). The others: `backbone` (`MODEL.BACKBONE.NAME`),
    `level_names` worst first, `test_input` how a test image becomes its input (`TestInput`, with
    the pipeline that computed it and the crops per image), `fp32_ctx` (from `OPTIM.NAME`) True
    keeps the learnable context in float32 also with fp16 towers (a master copy cast to float16
    where it enters the text tower): set for optimisers outside `FP16_CONTEXT_OPTIMIZERS`; False
    (the default, and what checkpoints without the entry mean) is the original's fp16 context.
    """

    # The defaults of the fields read from keys are the keys' defaults (`_KEYS`).
    backbone: str
    level_names: tuple[str, ...]
    n_ctx: int = _KEYS["N_CTX"][0]
    ctx_init: str = _KEYS["CTX_INIT"][0]
    csc: bool = _KEYS["CSC"][0]
    class_token_position: str = _KEYS["CLASS_TOKEN_POSITION"][0]
    head_input: str = _KEYS["HEAD_INPUT"][0]
    head_dropout: float = _KEYS["HEAD_DROPOUT"][0]
    standardize_target: bool = _KEYS["STANDARDIZE_TARGET"][0]
    head: str = _KEYS["HEAD"][0]
    prompt_template: str = _KEYS["PROMPT_TEMPLATE"][0]
    train_image_encoder: str = _KEYS["TRAIN_IMAGE_ENCODER"][0]
    encoder_last_k: int = _KEYS["ENCODER_LAST_K"][0]
    lora_rank: int = _KEYS["LORA_RANK"][0]
    precision: str = _KEYS["PREC"][0]
    cpu_precision: str = _KEYS["CPU_PREC"][0]
    fp32_ctx: bool = False
    test_input: TestInput = TestInput()
    version: int = SPEC_VERSION

    @classmethod
    def from_config(cls, cfg: CN, level_names: Sequence[str] | None = None) -> "ModelSpec":
        """Build and validate the spec of `cfg`; `level_names` default to `DATASET.LEVEL_NAMES`.

        Without level names (none given, none configured: the dataset's defaults apply later)
        the prompt-length check is skipped and `level_names` is empty. Raises `ValueError`.
        """
        node = cfg.TRAINER.CLIP_AGIQA
        names = list(level_names or cfg.get("DATASET", {}).get("LEVEL_NAMES", []) or [])
        ctx_init = node.CTX_INIT.replace("_", " ").strip()
        if ctx_init:
            n_ctx = count_bpe_tokens(ctx_init)
            if n_ctx < 1:
                raise ValueError(f"TRAINER.CLIP_AGIQA.CTX_INIT {node.CTX_INIT!r} contains no "
                                  "tokens")
        else:
            n_ctx = _positive_int(node, "N_CTX")
        spec = cls(
            backbone=str(cfg.MODEL.BACKBONE.NAME),
            level_names=tuple(names),
            n_ctx=n_ctx,
            ctx_init=node.CTX_INIT,
            csc=bool(node.CSC),
            class_token_position=_choice(node, "CLASS_TOKEN_POSITION", CLASS_TOKEN_POSITIONS),
            head_input=_choice(node, "HEAD_INPUT", HEAD_INPUTS),
            head_dropout=_probability(node, "HEAD_DROPOUT"),
            standardize_target=_flag(node, "STANDARDIZE_TARGET"),
            head=_choice(node, "HEAD", HEADS),
            prompt_template=node.PROMPT_TEMPLATE,
            train_image_encoder=_choice(node, "TRAIN_IMAGE_ENCODER", ENCODER_MODES),
            encoder_last_k=_positive_int(node, "ENCODER_LAST_K"),
            lora_rank=_positive_int(node, "LORA_RANK"),
            precision=_choice(node, "PREC", PRECISIONS),
            cpu_precision=_choice(node, "CPU_PREC", CPU_PRECISIONS),
            fp32_ctx=cfg.OPTIM.NAME not in FP16_CONTEXT_OPTIMIZERS,
            test_input=TestInput.from_config(cfg),
        )
        spec.check_variants()
        if names:
            spec.check_prompt_length()
        return spec

    def check_variants(self) -> None:
        """Combinations the head and prompt variants do not support; raises `ValueError`."""
        from .prompt_template import check_template

        if self.head == "similarity" and (self.head_input != "image_text"
                                          or self.standardize_target):
            raise ValueError("TRAINER.CLIP_AGIQA.HEAD similarity has no MLP: leave HEAD_INPUT "
                             "image_text and STANDARDIZE_TARGET False")
        check_template(self.prompt_template)
        if self.prompt_template and self.class_token_position != "end":
            raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE places the level after the "
                             "context: it needs CLASS_TOKEN_POSITION end")

    def check_prompt_length(self, context_length: int = CONTEXT_LENGTH) -> None:
        """Every prompt (SOT + context + level-name tokens + "." + EOT) must fit
        `context_length` tokens; raises `ValueError` naming the longest level name."""
        lengths = {name: count_bpe_tokens(name.replace("_", " ")) for name in self.level_names}
        longest = max(lengths, key=lengths.get)
        needed = self.n_ctx + lengths[longest] + EXTRA_PROMPT_TOKENS
        if needed > context_length:
            ctx_init = self.ctx_init.replace("_", " ").strip()
            source = (f"CTX_INIT {self.ctx_init!r} ({self.n_ctx} tokens)" if ctx_init
                      else f"N_CTX={self.n_ctx}")
            raise ValueError(
                f"Prompt too long: {source} + level name {longest!r} ({lengths[longest]} tokens) "
                f"+ {EXTRA_PROMPT_TOKENS} (SOT, '.', EOT) = {needed} tokens > context length "
                f"{context_length}; lower TRAINER.CLIP_AGIQA.N_CTX or shorten DATASET.LEVEL_NAMES"
            )

    def with_level_names(self, level_names: Sequence[str]) -> "ModelSpec":
        """The same spec for these level names (prompt length checked)."""
        spec = replace(self, level_names=tuple(level_names))
        spec.check_prompt_length()
        return spec

    def with_precision(self, precision: str) -> "ModelSpec":
        """The same spec with another (e.g. the effective) precision."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        return replace(self, precision=precision)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, lists, dicts): safe for `weights_only` loading."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelSpec":
        """Inverse of `to_dict`; other versions are refused, missing optional entries take
        their defaults. Raises `ValueError`."""
        if not isinstance(data, Mapping):
            raise ValueError(f"model_spec must be a mapping, got {type(data).__name__}")
        version = data.get("version")
        if version != SPEC_VERSION:
            raise ValueError(f"model_spec version {version!r} is not readable by this version "
                              f"(it reads version {SPEC_VERSION}; train the run again)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"model_spec has unknown entries {unknown}")
        values = dict(data)
        values["level_names"] = tuple(values.get("level_names", ()))
        try:
            values["test_input"] = TestInput.from_dict(values.get("test_input", {}))
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"model_spec has an unreadable test_input: {exc}") from exc
        return cls(**values)


@dataclass(frozen=True)
class PipelineOptions:
    """How the trainer feeds and trains (not part of the model): `pipeline` "fast" |
    "reference" (as configured), `encode_batch_size` images per no-grad encoder call,
    `decoded_on` "device" | "cpu", `decoded_memory_gb` the memory budget of the decoded images
    (GiB, > 0), `encoder_lr` learning rate of a trained image encoder, `compile` the frozen
    image encoder through `torch.compile` (`trainers.method.compiled`)."""

    pipeline: str = "fast"
    encode_batch_size: int = 256
    decoded_on: str = "device"
    decoded_memory_gb: float = 12.0
    encoder_lr: float = 5e-6
    compile: bool = False

    @classmethod
    def from_config(cls, cfg: CN) -> "PipelineOptions":
        node = cfg.TRAINER.CLIP_AGIQA
        if isinstance(node.ENCODER_LR, bool) or not float(node.ENCODER_LR) > 0:
            raise ValueError(f"TRAINER.CLIP_AGIQA.ENCODER_LR must be positive, got "
                             f"{node.ENCODER_LR!r}")
        budget = node.DECODED_MEMORY_GB
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
            raise ValueError("TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB must be a positive number of "
                             f"GiB, got {budget!r}")
        return cls(pipeline=_choice(node, "PIPELINE", PIPELINES),
                   encode_batch_size=_positive_int(node, "ENCODE_BATCH_SIZE"),
                   decoded_on=_choice(node, "DECODED_ON", DECODED_ON),
                   decoded_memory_gb=float(budget), encoder_lr=float(node.ENCODER_LR),
                   compile=_flag(node, "COMPILE"))


@dataclass(frozen=True)
class MethodConfig:
    """The validated `TRAINER.CLIP_AGIQA.*` of a run: the model as configured (`spec`: the
    configured precision, the level names of `DATASET.LEVEL_NAMES`) and how the trainer feeds
    it (`pipeline`). Built once per run (`CLIP_AGIQA.validate_cfg`)."""

    spec: ModelSpec
    pipeline: PipelineOptions

    @classmethod
    def from_config(cls, cfg: CN, level_names: Sequence[str] | None = None) -> "MethodConfig":
        """Both objects of `cfg` (see `ModelSpec.from_config`); raises `ValueError`."""
        method = cls(spec=ModelSpec.from_config(cfg, level_names),
                     pipeline=PipelineOptions.from_config(cfg))
        if method.pipeline.compile and method.spec.train_image_encoder != "none":
            raise ValueError("TRAINER.CLIP_AGIQA.COMPILE compiles the frozen image encoder: leave "
                             "it False with TRAIN_IMAGE_ENCODER "
                             f"{method.spec.train_image_encoder}")
        return method


def check_trainer_config(cfg: CN, level_names: Sequence[str] | None = None,
                         context_length: int = CONTEXT_LENGTH) -> MethodConfig:
    """Validate `TRAINER.CLIP_AGIQA.*` and return what was built from them; with level names
    (given or configured), also check that every prompt fits `context_length` tokens. Raises
    `ValueError`."""
    method = MethodConfig.from_config(cfg, level_names)
    if method.spec.level_names and context_length != CONTEXT_LENGTH:
        method.spec.check_prompt_length(context_length)
    return method
