"""Seeding, RNG-state snapshots, determinism switches and an environment summary."""
from __future__ import annotations

import os
import platform
import random
import sys
import warnings
from typing import Any

import numpy as np
import PIL
import torch


def set_random_seed(seed: int) -> None:
    """Seed Python ``random``, NumPy and torch (CPU and every CUDA device) with ``seed``.

    Any integer >= 0 is honoured, including 0.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"Seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_rng_state() -> dict[str, Any]:
    """Snapshot of the Python, NumPy, torch CPU and CUDA generators as plain data/tensors.

    Everything in it survives ``torch.load(weights_only=True)`` (no NumPy arrays, no objects).
    """
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`get_rng_state` (CUDA part only if device counts match)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    npst = state["numpy"]
    np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def configure_determinism(cfg) -> None:
    """Apply ``cfg.DETERMINISTIC``.

    True: deterministic algorithms (warn-only, so ops without a deterministic kernel still run),
    cuDNN deterministic and no benchmarking. False: upstream behaviour, cuDNN benchmarking on
    whenever CUDA is used (fastest, not bit-reproducible).
    """
    use_cuda = bool(cfg.USE_CUDA) and torch.cuda.is_available()
    if cfg.DETERMINISTIC:
        # cuBLAS needs a fixed workspace configuration for deterministic GEMMs; it is read when
        # CUDA initialises, so call this before anything touches the GPU.
        if "CUBLAS_WORKSPACE_CONFIG" not in os.environ and torch.cuda.is_initialized():
            warnings.warn("DETERMINISTIC is set but CUDA was initialised before "
                          "configure_determinism(): export CUBLAS_WORKSPACE_CONFIG=:4096:8 "
                          "before starting Python for deterministic cuBLAS", UserWarning,
                          stacklevel=2)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = use_cuda


def collect_env_info() -> str:
    """Short multi-line description of the software/hardware environment (fast, no subprocess)."""
    import torchvision

    lines = [
        f"Python: {sys.version.split()[0]} ({platform.platform()})",
        f"PyTorch: {torch.__version__} (CUDA build {torch.version.cuda})",
        f"torchvision: {torchvision.__version__}",
        f"NumPy: {np.__version__}",
        f"Pillow: {PIL.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(f"GPU {i}: {torch.cuda.get_device_name(i)}")
    return "\n".join(lines)
