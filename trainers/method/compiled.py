"""The frozen image encoder through `torch.compile`, falling back to it uncompiled by itself
(`TRAINER.CLIP_AGIQA.COMPILE`).

`torch.compile` builds its code at the first call of every new input shape (Dynamo traces,
inductor generates C++/OpenMP code on a CPU and Triton kernels on a GPU), so a compile that
cannot work here (no C compiler, an unsupported Python, a backend error) fails at that call, not
when `torch.compile` returns. `CompiledForward` catches that failure once, says so in one log
line and computes with the uncompiled module from then on; the failed call is computed again
uncompiled, so no batch is lost and an error of the computation itself (bad input, out of memory)
still reaches the caller from the uncompiled module.

Shapes are static (`dynamic=False`): each batch shape gets its own compiled code (a full encoder
batch and the last, smaller one of each split: a few compiles per run), so how a batch is
computed depends on its shape alone, never on which shapes came before: a resumed run computes
every batch as the uninterrupted one did, bit for bit on a CPU. (With dynamic shapes the second
shape compiles a shape-generic graph that later batches of the first shape may use too.)
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["CompiledForward"]


class CompiledForward:
    """`module` (frozen, any device) called through `torch.compile(module)`, else uncompiled.

    Deliberately not an `nn.Module`: held as a plain attribute of the model, it adds nothing to
    its state dict or parameters, and `module` moves with the model (`.to`). `log` receives the
    one fallback line. `compiled` is True while the compiled code is used.
    """

    def __init__(self, module: nn.Module, log: Callable[[str], None] = print) -> None:
        self.module = module
        self.log = log
        try:
            self._compiled = torch.compile(module, dynamic=False)
        except Exception as exc:  # torch.compile itself refused (e.g. unsupported Python)
            self._fall_back(exc)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def _fall_back(self, exc: BaseException) -> None:
        self._compiled = None
        # Dynamo wraps the backend's error (BackendCompilerFailed from the real one): say that.
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        while inner is not None:
            exc, inner = inner, getattr(inner, "inner_exception", None) or inner.__cause__
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        self.log(f"TRAINER.CLIP_AGIQA.COMPILE: torch.compile failed ({type(exc).__name__}: "
                 f"{first}); the image encoder runs uncompiled")

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as exc:
                self._fall_back(exc)
        return self.module(*args, **kwargs)
