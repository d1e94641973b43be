"""Top-k accuracy."""
from __future__ import annotations

import torch


def compute_accuracy(output: torch.Tensor, target: torch.Tensor, topk=(1,)) -> list[torch.Tensor]:
    """Top-k accuracy in % for logits ``output (B, C)`` (or a tuple whose first item is that)
    and integer ``target (B,)``; returns one 0-dim tensor per k."""
    maxk = max(topk)
    batch_size = target.size(0)
    if isinstance(output, (tuple, list)):
        output = output[0]
    _, pred = output.topk(maxk, 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    return [correct[:k].reshape(-1).float().sum(0) * (100.0 / batch_size) for k in topk]
