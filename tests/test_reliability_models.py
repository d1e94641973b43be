"""Bad weights, bad model directories and unusable output directories: one clear `error:` line,
exit status 2, no traceback, and nothing in OUTPUT_DIR written over."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import train

from conftest import file_state
from dassl.utils.run_lock import LOCK_FILE


@pytest.fixture(scope="module")
def trained(tiny_args, tmp_path_factory) -> Path:
    """A finished 1-epoch run (N_CTX 4); treat as read-only, copy it to modify it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train.main(tiny_args(out))
    return out


def all_files(folder: Path) -> list[Path]:
    """The files of ``folder``, without the run folder lock (taken by every writer, holding who
    writes, not what was written)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != LOCK_FILE)


# ----------------------------------------------------------------- CLIP weights
def test_corrupt_weights_file(user_error, tiny_args, sentinel, tmp_path):
    weights = tmp_path / "garbage.pt"
    weights.write_bytes(b"<html><body>404 Not Found</body></html>")  # a failed download
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", weights=weights))
    assert f"cannot read CLIP weights from {weights}: it is an HTML page" in message  # issue 14
    assert untouched()


def test_truncated_weights_file(user_error, tiny_args, tiny_assets, sentinel, tmp_path):
    data = Path(tiny_assets["weights"]).read_bytes()
    weights = tmp_path / "truncated.pt"
    weights.write_bytes(data[: len(data) // 2])
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", weights=weights))
    assert f"cannot read CLIP weights from {weights}: it is a truncated archive" in message
    assert untouched()


def test_wrong_architecture_weights(user_error, tiny_args, sentinel, tmp_path):
    weights = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, weights)
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", weights=weights))
    assert f"{weights} does not hold OpenAI-layout CLIP weights" in message
    assert "missing key(s)" in message
    assert untouched()


def test_cached_weights_with_wrong_checksum(user_error, tiny_args, sentinel, tmp_path,
                                           monkeypatch):
    cache = tmp_path / "clip_cache"
    cache.mkdir()
    (cache / "ViT-B-32.pt").write_bytes(b"a file that is not the published ViT-B/32")
    monkeypatch.setenv("CLIP_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: only the caches are consulted
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", weights="ViT-B/32"))
    assert "CLIP weights for 'ViT-B/32' are not available" in message
    assert f"{cache / 'ViT-B-32.pt'}: SHA-256 mismatch" in message
    assert untouched()


# ----------------------------------------------------------------- --eval-only model directory
def test_eval_only_without_model_dir(user_error, tiny_args, tmp_path):
    message = user_error(tiny_args(tmp_path / "out", flags=["--eval-only"]))
    assert message == "--eval-only needs --model-dir: the output directory of a training run"
    assert not (tmp_path / "out").exists()


def test_eval_only_missing_model_dir(user_error, tiny_args, tmp_path):
    model_dir = tmp_path / "runs" / "seed1"
    (tmp_path / "runs" / "seed2").mkdir(parents=True)
    message = user_error(tiny_args(tmp_path / "out",
                                   flags=["--eval-only", "--model-dir", str(model_dir)]))
    assert f"model directory {model_dir} not found" in message and "contains: seed2/" in message
    assert not (tmp_path / "out").exists()


def test_eval_only_missing_epoch(user_error, tiny_args, trained, tmp_path):
    message = user_error(tiny_args(tmp_path / "out", flags=["--eval-only", "--model-dir",
                                                        str(trained), "--load-epoch", "7"]))
    assert f"model directory {trained} has no model.pth.tar-7" in message
    assert message.endswith("checkpoint files found: ['model.pth.tar-1']")
    # A finished last_step run has no model-best.pth.tar: its deployed model is the last epoch.
    results = train.main(tiny_args(tmp_path / "last", flags=["--eval-only", "--model-dir",
                                                             str(trained)]))
    assert results["evaluated_checkpoint"]["file"] == "model.pth.tar-1"
    # Without the record of a finished run (results.json), the message says how to pick one.
    unfinished = tmp_path / "unfinished"
    shutil.copytree(trained, unfinished)
    (unfinished / "results.json").unlink()
    message = user_error(tiny_args(tmp_path / "out", flags=["--eval-only", "--model-dir",
                                                            str(unfinished)]))
    assert "has no model-best.pth.tar" in message and "pass --load-epoch E" in message
    assert not (tmp_path / "out").exists()


def test_eval_only_incompatible_model_dir(user_error, tiny_args, trained, sentinel, tmp_path):
    out = tmp_path / "out"
    untouched = sentinel(out)
    before = file_state(all_files(trained))
    message = user_error(tiny_args(out, "TRAINER.CLIP_AGIQA.N_CTX", "8", flags=[
        "--eval-only", "--model-dir", str(trained), "--load-epoch", "1"]))
    # The checkpoint fixes the model: an option that contradicts it is refused, naming both.
    assert message == (f"TRAINER.CLIP_AGIQA.N_CTX 8 differs from the model of "
                       f"{trained / 'prompt_learner' / 'model.pth.tar-1'} (4): an evaluation "
                       "takes the model from its checkpoint; leave N_CTX out")
    assert untouched() and file_state(all_files(trained)) == before


# ----------------------------------------------------------------- output directory
def test_output_dir_is_a_file(user_error, tiny_args, tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder")
    assert user_error(tiny_args(out)) == \
        f"OUTPUT_DIR {out} is a file, not a folder: give a folder for the run"
    assert out.read_text() == "not a folder"


def test_eval_only_into_a_training_run(user_error, tiny_args, trained, tmp_path):
    before = file_state(all_files(trained))
    message = user_error(tiny_args(trained, flags=["--eval-only", "--model-dir", str(trained),
                                                   "--load-epoch", "1"]))
    assert f"{trained} already holds the results of a training run, not of an --eval-only " \
           "run" in message
    assert "pass --force" in message
    assert file_state(all_files(trained)) == before


def test_finished_run_with_another_config(user_error, tiny_args, trained, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(trained, out)
    before = file_state(all_files(out))
    message = user_error(tiny_args(out, "OPTIM.LR", "0.01"))
    assert "already holds the results of a run with a different config (OPTIM.LR: 0.002 -> " \
           "0.01)" in message
    assert file_state(all_files(out)) == before


def test_unfinished_run_with_another_config(user_error, tiny_args, trained, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(trained, out)
    (out / "results.json").unlink()
    before = file_state(all_files(out))
    message = user_error(tiny_args(out, "TRAINER.CLIP_AGIQA.CSC", "True"))
    assert "holds an unfinished run with a different config (TRAINER.CLIP_AGIQA.CSC: False -> " \
           "True)" in message
    assert file_state(all_files(out)) == before


def test_resume_from_a_corrupt_checkpoint(user_error, tiny_args, tmp_path):
    out = tmp_path / "out"
    for module in ("prompt_learner", "regression"):
        (out / module).mkdir(parents=True)
        (out / module / "checkpoint").write_text("model.pth.tar-1\n")
        (out / module / "model.pth.tar-1").write_bytes(b"\x80\x02garbage")
    before = file_state(all_files(out))
    message = user_error(tiny_args(out, epochs=2))
    assert f"Cannot read checkpoint {out / 'prompt_learner' / 'model.pth.tar-1'}" in message
    assert "(truncated or corrupt file?)" in message
    assert file_state([Path(p) for p in before]) == before


def test_resume_from_an_incompatible_checkpoint(user_error, tiny_args, trained, tmp_path):
    out = tmp_path / "out"
    for module in ("prompt_learner", "regression"):  # checkpoints without their config.yaml
        shutil.copytree(trained / module, out / module)
    before = file_state(all_files(out))
    message = user_error(tiny_args(out, "TRAINER.CLIP_AGIQA.N_CTX", "8", epochs=2))
    assert f"Cannot resume from {out / 'prompt_learner' / 'model.pth.tar-1'}: it does not fit " \
           "the model of this run" in message
    assert file_state([Path(p) for p in before]) == before
