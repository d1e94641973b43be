"""Numeric precision of a run: which one it uses, how the model is cast to it, how it is recorded.

Precisions (`TRAINER.CLIP_AGIQA.PREC`, and the effective precision a run records):
- `fp32`: everything in float32.
- `fp16`: OpenAI's mixed fp16 (upstream): the towers' convolution/linear weights and biases, the
  fused attention projections and the output projections (`visual.proj`, `text_projection`) in
  float16; layer norms, embeddings, `class_embedding` and `logit_scale` stay float32 and layer
  norms compute in float32 (`clip.layers.LayerNorm`). With SGD the learnable context is float16
  and SGD updates it in float16, as upstream; the head is float32. Every other optimiser
  (`OPTIM.NAME` adam, amsgrad, adamw, rmsprop, radam) gets a float32 context (a master copy, cast
  to float16 where it enters the text tower; `ModelSpec.fp32_ctx`, recorded in the checkpoints):
  in float16 its default eps 1e-8 is 0 and its second-moment state (squared gradients, below
  6e-8 for gradients below 2.4e-4) underflows to 0, so the first step divides by zero (NaN, as
  seen on the CPU's real fp16 path and in openai/CLIP issues 40 and 57). A larger eps float16
  can hold (>= 6e-5 to stay a normal number) would instead change every update where the
  gradient is small, i.e. no longer be Adam; the float32 copy keeps the optimiser's own update
  and costs 4 bytes per context value.
- `bf16`: the same tensors as fp16 in bfloat16 (the frozen towers). The learnable context stays
  float32 (master copy, cast to bfloat16 where it enters the text tower): bfloat16 keeps 8
  significant bits, so an SGD update of a context value (~0.02, spacing of bf16 numbers there
  ~1e-4) by lr 0.002 x a gradient below ~0.05 would round away. Layer norms (statistics over 512
  or 768 values) and the float32 head keep float32 for the same reason.
- `amp`: float32 weights under `torch.autocast` (float16 on a GPU, bfloat16 on a CPU, torch's
  defaults) with a gradient scaler whose state is checkpointed.

On a GPU a run uses `PREC`. On a CPU, `PREC fp16` becomes `TRAINER.CLIP_AGIQA.CPU_PREC`, whose
`auto` is a fixed rule read off the CPU's feature flags (never a timing probe): `bf16` when the CPU
does bfloat16 arithmetic natively (Linux `/proc/cpuinfo` flag `avx512_bf16` or `amx_bf16`),
else `fp32`. Never `fp16`: CPUs without native fp16 arithmetic (no `avx512_fp16` / `amx_fp16`, e.g.
AMD Zen 4) convert fp16 operands and run slower than fp32 (benchmarks/README.md). A forced
`CPU_PREC fp16` runs the real fp16 path on a CPU (tests use it).

Every module checkpoint records the effective precision in its `model_spec`
(`trainers.method.model_spec.ModelSpec.precision`; read it with `recorded_precision`). A
checkpoint without one (the original code's) counts as fp32 on a CPU and as its `PREC` on a GPU,
which is what those runs computed in.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from clip.model import convert_weights

from .model_spec import CPU_PRECISIONS

__all__ = ["TOWER_DTYPES", "CPU_PRECISIONS", "BF16_CPU_FLAGS", "cpu_flags", "auto_cpu_precision",
           "resolve_precision", "cast_clip", "autocast_dtype",
           "recorded_precision", "is_cpu_precision_forced", "describe", "precision_for_checkpoint"]

# Effective precision -> dtype of the frozen towers' cast weights.
TOWER_DTYPES = {"fp32": torch.float32, "amp": torch.float32, "fp16": torch.float16,
                "bf16": torch.bfloat16}
# /proc/cpuinfo flags of native bfloat16 arithmetic (AVX-512 BF16 dot products, AMX tiles).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = "/proc/cpuinfo"


def cpu_flags(path: str = CPUINFO) -> frozenset[str]:
    """Feature flags of the first CPU in `path` (Linux); elsewhere, torch's own bf16 check."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return frozenset(value.split())
    except OSError:
        pass
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return frozenset({"avx512_bf16"}) if probe is not None and probe() else frozenset()


def auto_cpu_precision(flags: Iterable[str]) -> str:
    """`CPU_PREC auto`: "bf16" when `flags` include native bf16 arithmetic, else "fp32"."""
    return "bf16" if BF16_CPU_FLAGS & set(flags) else "fp32"


def resolve_precision(prec: str, device: torch.device | str, cpu_prec: str = "auto",
                      flags: Iterable[str] | None = None) -> str:
    """The effective precision of `PREC` on `device` (see the module docstring)."""
    if torch.device(device).type != "cpu" or prec != "fp16":
        return prec
    if cpu_prec == "auto":
        return auto_cpu_precision(cpu_flags() if flags is None else flags)
    return cpu_prec


def autocast_dtype(device: torch.device | str) -> torch.dtype:
    """What `torch.autocast` computes in for amp: float16 on a GPU, bfloat16 on a CPU."""
    return torch.get_autocast_dtype(torch.device(device).type)


def cast_clip(model: nn.Module, precision: str) -> nn.Module:
    """Cast a CLIP (or any module holding its towers) in place to `precision`'s layout; return it.

    All of it becomes float32 first, then, for fp16 and bf16, the weights OpenAI ships in fp16
    (`clip.model.convert_weights`) take the tower dtype. Exact from fp16 or fp32 weights (as
    loaded); a bf16 model cast back to fp32 keeps its bf16-rounded weights.
    """
    model.float()
    if precision in ("fp16", "bf16"):
        convert_weights(model, TOWER_DTYPES[precision])
    return model


def recorded_precision(checkpoint: dict, device: torch.device | str,
                       configured: str) -> tuple[str, bool]:
    """`(precision, recorded)` a checkpoint was computed in: its `model_spec`'s precision (the
    effective one); `recorded` False for checkpoints without one (then fp32 on a CPU,
    `configured` = the config's `PREC` elsewhere)."""
    spec = checkpoint.get("model_spec") if isinstance(checkpoint, dict) else None
    value = spec.get("precision") if isinstance(spec, dict) else None
    if isinstance(value, str) and value in TOWER_DTYPES:
        return value, True
    return ("fp32" if torch.device(device).type == "cpu" else configured), False


def is_cpu_precision_forced(prec: str, cpu_prec: str, device: torch.device | str) -> bool:
    """True when the user chose the CPU precision explicitly (`cpu_prec`, i.e. `CPU_PREC`, other
    than auto) and it applies (`prec`, i.e. `PREC`, fp16 on a CPU)."""
    return torch.device(device).type == "cpu" and prec == "fp16" and cpu_prec != "auto"


def describe(precision: str, prec: str, cpu_prec: str, device: torch.device | str) -> str:
    """One log line naming the effective `precision` and why (`prec`/`cpu_prec`: the configured
    `PREC` and `CPU_PREC`)."""
    device = torch.device(device)
    if device.type == "cpu" and prec == "fp16":
        why = (f"TRAINER.CLIP_AGIQA.CPU_PREC {cpu_prec}" if cpu_prec != "auto" else
               "CPU_PREC auto: " + ("the CPU has native bf16" if precision == "bf16"
                                    else "the CPU lacks native bf16"))
        return f"Precision: {precision} (PREC fp16 on the CPU; {why})"
    extra = f", autocast in {str(autocast_dtype(device)).replace('torch.', '')}" \
        if precision == "amp" else ""
    return f"Precision: {precision} on {device.type.upper()}{extra}"


def precision_for_checkpoint(prec: str, cpu_prec: str, device: torch.device | str,
                             checkpoint: dict, source: str, resume: bool,
                             evaluation_cpu_prec: str | None = None) -> tuple[str, str | None]:
    """`(precision, log line or None)` to load the checkpoint read from `source` in.

    `prec`/`cpu_prec` are the configured `PREC` and `CPU_PREC`; `current` below is the precision
    they give on `device` (`resolve_precision`). A run never silently continues in another precision: the checkpoint's recorded
    precision (`recorded_precision`) wins over `current`, with a log line. A `CPU_PREC` forced by
    the user wins for evaluation and scoring (also logged), while a resume that would change
    precision raises `ConfigError`. `evaluation_cpu_prec` is a `CPU_PREC` the user set for this
    evaluation (`--eval-only` with the option on the command line, `score.py --cpu-prec`), not the
    trained run's saved one: on a CPU, other than auto, it wins whatever precision the checkpoint
    records (fp32, bf16, amp or fp16), with a log line; ignored on a resume and on a GPU.
    """
    from dassl.utils import ConfigError

    current = resolve_precision(prec, device, cpu_prec)
    recorded, known = recorded_precision(checkpoint, device, prec)
    if (not resume and evaluation_cpu_prec not in (None, "auto")
            and torch.device(device).type == "cpu"):
        return evaluation_cpu_prec, (
            f"Precision: {evaluation_cpu_prec} (TRAINER.CLIP_AGIQA.CPU_PREC "
            f"{evaluation_cpu_prec} set for this evaluation; {source} was computed in {recorded})")
    if recorded == current:
        return current, None
    origin = "recorded in" if known else "assumed for the unrecorded"
    if is_cpu_precision_forced(prec, cpu_prec, device):
        if resume:
            raise ConfigError(
                f"{source} was computed in {recorded} ({origin} checkpoint), but "
                f"TRAINER.CLIP_AGIQA.CPU_PREC {cpu_prec} asks for {current}: a run never "
                f"continues in another precision. Resume with CPU_PREC {recorded} (or auto), or "
                "train into a new output directory")
        return current, (f"Precision: {current} (TRAINER.CLIP_AGIQA.CPU_PREC {cpu_prec}), "
                         f"although {source} was computed in {recorded}")
    return recorded, (f"Precision: {recorded} ({origin} checkpoint {source}; the config alone "
                      f"would give {current})")
