"""A trained run is read once: `score.py`, `train.py --eval-only` and a resume open each module
checkpoint file once (`trainers.inference.run_model.TrainedRun` over
`dassl.utils.ModuleCheckpoints`), however many facts (spec, precision, weights) they take."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

import score
import train
from tiny_trainer import build_tiny_trainer

MODULES = ("prompt_learner", "regression")


@pytest.fixture
def opened(monkeypatch) -> Counter:
    """Counts `torch.load` calls per absolute path of checkpoint files (`*.pth.tar*`)."""
    counts: Counter = Counter()
    original = torch.load

    def counting(f, *args, **kwargs):
        if isinstance(f, (str, Path)) and ".pth.tar" in str(f):
            counts[str(Path(f).resolve())] += 1
        return original(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return counts


def files(run: Path, name: str) -> dict[str, int]:
    return {str((run / module / name).resolve()): 1 for module in MODULES}


@pytest.fixture(scope="module")
def trained(tiny_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained_run") / "run"
    train.main(tiny_args(out, "TEST.FINAL_MODEL", "best_val",
                         "TEST.ALLOW_SELECTION_ON_TEST", "True"))
    return out


def test_score_opens_each_checkpoint_once(trained, opened, tiny_assets, tmp_path):
    image = next(Path(tiny_assets["root"]).rglob("*.jpg"))
    assert score.main([str(trained), str(image), "--output", str(tmp_path / "s.csv"),
                       "--no-progress"]) == 0
    assert dict(opened) == files(trained, "model-best.pth.tar")


@pytest.mark.slow
def test_eval_only_opens_each_checkpoint_once(trained, opened, tiny_args, tmp_path):
    results = train.main(tiny_args(tmp_path / "eval", flags=[
        "--eval-only", "--model-dir", str(trained), "--load-epoch", "1"]))
    assert results is not None
    assert dict(opened) == files(trained, "model.pth.tar-1")


@pytest.mark.slow
def test_a_resume_opens_each_checkpoint_once(tiny_assets, tmp_path, opened):
    first = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                               "OPTIM.MAX_EPOCH", "1", "TRAINER.CLIP_AGIQA.PREC", "fp32")
    first.train()
    opened.clear()
    again = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                               "OPTIM.MAX_EPOCH", "2", "TRAINER.CLIP_AGIQA.PREC", "fp32")
    again.train()
    assert again.start_epoch == 1
    assert dict(opened) == files(tmp_path, "model.pth.tar-1")
