"""How the fast pipeline keeps each split's images within `TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB`.

Decoding every image once at full size is fastest, but 20,000 images of up to 1024 px
(AIGIQA-20K) take tens of GiB as uint8. `plan_memory` decides from the image sizes (read from
the file headers, nothing decoded) before anything is decoded:

1. every split at full size fits the budget: decode once at full size (the default path);
2. otherwise the test and validation splits, whose transform is deterministic (shorter side to
   `max(INPUT.SIZE)`, centre crop), are kept as their test crops ("transformed") when those are
   smaller than the images: the crop is what the test transform computes from the full image,
   stored in whole 8-bit levels, and the test transform of a stored square crop is the
   identity, so the features are unchanged. With `TEST.NUM_CROPS` > 1 or a non-square
   `INPUT.SIZE` that does not hold; they stay at full size, or, when even the smaller of the two
   exceeds the budget, are decoded again for each evaluation ("streamed");
3. the training split stays decoded at full size if it fits beside them, else it is decoded
   again every epoch, chunk by chunk, in DataLoader worker processes ("streamed"): random
   resized crops need the full resolution, so no smaller copy would give the same crops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from .decoded_images import PIXEL_BYTES, decoded_nbytes

__all__ = ["MemoryPlan", "plan_memory", "GIB"]

GIB = 2 ** 30
KEY = "TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB"


@dataclass(frozen=True)
class MemoryPlan:
    """`train` "full" | "streamed"; `evaluation` (test and val) "full" | "transformed" |
    "streamed"; `full_bytes` per split at full size; `kept_bytes` the decoded bytes held under
    this plan (without the chunks a streamed split has in flight); `budget_bytes`; `message`
    the log line that says what was chosen and why."""

    train: str
    evaluation: str
    full_bytes: Mapping[str, int]
    kept_bytes: int
    budget_bytes: int
    message: str


def _gib(nbytes: int) -> str:
    return f"{nbytes / GIB:.2f} GiB"


def plan_memory(sizes: Mapping[str, Sequence[tuple[int, int]]], budget_gb: float,
                crop_size: tuple[int, int], num_crops: int, workers: int) -> MemoryPlan:
    """The storage of each split for images of `sizes` (`{"train" | "val" | "test": [(H, W),
    ...]}`) under a budget of `budget_gb` GiB; `crop_size` is `INPUT.SIZE` `(h, w)`,
    `num_crops` `TEST.NUM_CROPS`, `workers` the decoding processes of a streamed split."""
    full = {name: decoded_nbytes(split) for name, split in sizes.items()}
    total = sum(full.values())
    budget = int(budget_gb * GIB)
    parts = ", ".join(f"{name} {_gib(nbytes)}" for name, nbytes in full.items())
    if total <= budget:
        return MemoryPlan("full", "full", full, total, budget, (
            f"Memory: the decoded images take {_gib(total)} ({parts}), within {KEY} "
            f"{budget_gb:g}: every split is decoded once at full size"))
    evaluated = sum(len(sizes.get(name, ())) for name in ("val", "test"))
    eval_full = full.get("val", 0) + full.get("test", 0)
    # The smallest exact way to keep the test/val images; decoding them again for each
    # evaluation ("streamed") only when even that exceeds the budget.
    options = [("full", eval_full, f"test/val images decoded once at full size "
                                   f"({_gib(eval_full)})")]
    if num_crops == 1 and crop_size[0] == crop_size[1]:
        crop_bytes = PIXEL_BYTES * crop_size[0] * crop_size[1] * evaluated
        options.append(("transformed", crop_bytes,
                        f"test/val images kept as their {crop_size[0]}x{crop_size[1]} test "
                        f"crops ({_gib(crop_bytes)}, the same crops)"))
    evaluation, eval_bytes, eval_text = min(options, key=lambda option: option[1])
    if evaluation == "full" and len(options) > 1:
        eval_text += " (smaller than their test crops)"
    if eval_bytes > budget:
        evaluation, eval_bytes = "streamed", 0
        eval_text = "test/val images decoded again for each evaluation" + (
            "" if len(options) > 1 else " (TEST.NUM_CROPS > 1 or a non-square INPUT.SIZE: "
                                        "their crops need the full image)")
    train_bytes = full.get("train", 0)
    where = f"{workers} loader worker processes" if workers else "the main process"
    if train_bytes + eval_bytes <= budget:
        train, kept = "full", train_bytes + eval_bytes
        train_text = f"training images decoded once at full size ({_gib(train_bytes)})"
    else:
        train, kept = "streamed", eval_bytes
        train_text = (f"training images decoded again every epoch in {where} (random resized "
                      "crops need the full resolution)")
    return MemoryPlan(train, evaluation, full, kept, budget, (
        f"Memory: the decoded images would take {_gib(total)} ({parts}), over {KEY} "
        f"{budget_gb:g}: {train_text}; {eval_text}"))
