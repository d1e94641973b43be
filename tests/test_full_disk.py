"""Issue 25, fault 2: when the disk fills or is read-only, every command that writes output says
so in one `error:` line naming the path (exit 2) and keeps the last good state: checkpoints,
results, scores, converted label files. Simulated (a test cannot fill the disk, and root ignores
chmod): torch.save's stream failure, and os.replace / the write raising ENOSPC or EROFS."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import mat2csv
import score
import train
from dassl.utils import error_message, read_checkpoint_pointer

from conftest import file_state


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.tmp")]


def test_a_checkpoint_that_does_not_fit_is_one_line_and_the_run_resumes(tiny_args, user_error,
                                                                         tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 2:
            Path(path).write_bytes(b"PK\x03\x04 partial")  # what fitted before the disk filled
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "
                               "3584 vs 3472")
        return real_save(obj, path, *args, **kwargs)
    monkeypatch.setattr(torch, "save", full_disk)
    message = user_error(tiny_args(out, epochs=2))
    assert message.startswith(f"cannot write {out / 'prompt_learner' / 'model.pth.tar-2'}: no "
                              "space left on the device; nothing was replaced")
    assert read_checkpoint_pointer(str(out / "prompt_learner")) == "model.pth.tar-1"
    assert _no_temp_files(out) and not (out / "results.json").exists()
    monkeypatch.undo()
    results = train.main(tiny_args(out, epochs=2))  # space freed: the run resumes and ends
    assert results["last"]["epoch"] == 2


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on the device"),
                                         (errno.EDQUOT, "the disk quota is exceeded"),
                                         (errno.EROFS, "the file system is read-only")])
def test_every_output_names_the_path_and_keeps_the_previous_file(
        code, words, tiny_args, user_error, tmp_path, monkeypatch, capsys, aigciqa2023_mos):
    real_replace = os.replace
    failing = set()

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(dst) in failing:
            raise OSError(code, os.strerror(code), dst)
        return real_replace(src, dst, *args, **kwargs)
    monkeypatch.setattr(os, "replace", replace)

    # train.py's results.json
    failing.add("results.json")
    out = tmp_path / "run"
    message = user_error(tiny_args(out))
    assert message.startswith(f"cannot write {out / 'results.json'}: {words}")
    assert _no_temp_files(out)

    # score.py's CSV: an earlier complete file stays as it was
    output = tmp_path / "scores.csv"
    output.write_text("name,score\nold.png,1.0\n")
    before = file_state([output])
    failing.add("scores.csv")
    images = next(Path(tiny_args(out)[1]).rglob("*.jpg"))  # --root's first image
    capsys.readouterr()
    assert score.main([str(out), str(images), "--output", str(output)]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write {output}: {words}")
    assert file_state([output]) == before and _no_temp_files(tmp_path)

    # mat2csv's label files
    failing.update({"mos_quality.csv", "mos_authenticity.csv", "mos_correspondence.csv"})
    assert mat2csv.main([str(aigciqa2023_mos), str(tmp_path / "labels")]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write {tmp_path / 'labels'}")
    assert words in errors[0]


def test_a_raw_write_failure_is_named(tmp_path):
    """Writers outside the atomic helper (log file, images) reach the same wording."""
    path = str(tmp_path / "log.txt")
    assert error_message(OSError(errno.ENOSPC, "No space left on device", path)) == \
        f"cannot write {path}: no space left on the device"
    assert error_message(OSError(errno.EROFS, "Read-only file system", path)) == \
        f"cannot write {path}: the file system is read-only"
