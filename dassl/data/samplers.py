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


def _whole(value, key: str, least: int) -> None:
    """Raise ``ConfigError`` unless ``value`` is a whole number >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"DATALOADER.{key} must be a whole number >= {least}, got {value!r}")


def check_dataloader_cfg(cfg) -> None:
    """Check ``cfg.DATALOADER`` before any data is read: batch sizes >= 1, NUM_WORKERS >= 0,
    K_TRANSFORMS >= 1, samplers in ``AVAI_SAMPLERS``. Raises ``ConfigError`` naming the key."""
    dl = cfg.DATALOADER
    _whole(dl.NUM_WORKERS, "NUM_WORKERS", 0)
    _whole(dl.K_TRANSFORMS, "K_TRANSFORMS", 1)
    for part in ("TRAIN_X", "TRAIN_U", "TEST"):
        node = getattr(dl, part)
        _whole(node.BATCH_SIZE, f"{part}.BATCH_SIZE", 1)
        if node.SAMPLER not in AVAI_SAMPLERS:
            raise ConfigError(f"DATALOADER.{part}.SAMPLER must be one of {AVAI_SAMPLERS}, "
                              f"got {node.SAMPLER!r}")
