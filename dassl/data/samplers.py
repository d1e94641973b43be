"""``build_sampler``: the torch samplers Dassl's factory provides for CoOp-style training."""
from __future__ import annotations

from torch.utils.data import RandomSampler, Sampler, SequentialSampler

from dassl.utils import ConfigError

AVAI_SAMPLERS = ["RandomSampler", "SequentialSampler"]


def build_sampler(sampler_type: str, cfg=None, data_source=None, batch_size: int = 32,
                  n_domain: int = 0, n_ins: int = 16) -> Sampler:
    """``RandomSampler`` (new permutation each epoch, drawn from the torch global RNG) or
    ``SequentialSampler`` (index order). ``cfg``, ``batch_size``, ``n_domain`` and ``n_ins`` are
    accepted for Dassl compatibility (used only by Dassl's domain/class samplers, not provided)."""
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    raise ConfigError(f"Unknown sampler {sampler_type!r}; this compact dassl supports {AVAI_SAMPLERS}")
