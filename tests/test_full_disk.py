"""Issue 25, fault 2: when the disk fills or is read-only, every command that writes output says
so in one `error:` line naming the path (exit 2) and keeps the last good state: checkpoints,
results, scores, converted label files. Simulated (a test cannot fill the disk, and root ignores
chmod): torch.save's stream failure, and os.replace / the write raising ENOSPC or EROFS."""
from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import pytest
import torch

import mat2csv
import score
import train
from scripts import seeds_summary
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


@pytest.fixture
def failing_writes(monkeypatch):
    """``set_errno(code)``: from then on every ``write()`` to a file opened for writing raises
    ``OSError(code)`` without a file name, as a real full or read-only disk does mid-file (the
    open itself succeeds). Patches ``builtins.open``, through which Pillow, pandas, SciPy, torch's
    callers and our own writers all go."""
    import builtins
    real_open = builtins.open
    state = {"code": None}

    class FailingFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            raise OSError(state["code"], os.strerror(state["code"]))

        def fileno(self):  # no descriptor: Pillow then writes through write() too
            raise io.UnsupportedOperation("fileno")

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    def failing_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if state["code"] is not None and any(c in mode for c in "wax+") and not isinstance(file, int):
            return FailingFile(handle)
        return handle
    monkeypatch.setattr(builtins, "open", failing_open)
    return lambda code: state.update(code=code)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_module_commands_name_the_file_a_full_disk_stopped(code, failing_writes, tmp_path, capsys):
    """python -m clip.random_weights, python -m datasets.synthetic (agiqa: Pillow, pandas;
    aigciqa2023: Pillow, SciPy) and scripts/seeds_summary.py: one `error:` line naming the file,
    in the house's words, exit 2."""
    from clip import random_weights
    from datasets import synthetic
    from dassl.utils.errors import write_failure

    words = write_failure(OSError(code, os.strerror(code)))
    seed_dir = tmp_path / "seed1"
    seed_dir.mkdir()
    (seed_dir / "results.json").write_text(json.dumps(
        {"mode": "train", "seed": 1, "selected": {"epoch": 1, "split": "test",
                                                  "metrics": {"srcc": 0.5}}}))
    failing_writes(code)
    weights = tmp_path / "w" / "tiny.pt"
    commands = [(random_weights.main, [str(weights)], str(weights)),
                (synthetic.main, ["agiqa", "--root", str(tmp_path / "a"), "--n", "2"],
                 str(tmp_path / "a" / "AGIQA-3K" / "AttnGAN_normal_000.jpg")),
                (synthetic.main, ["aigciqa2023", "--root", str(tmp_path / "b"), "--n", "2"],
                 str(tmp_path / "b" / "AIGCIQA2023" / "allimg" / "0.png"))]
    for main, argv, path in commands:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert errors == [f"error: cannot write {path}: {words}"], err
        assert "Traceback" not in err
    # scripts/seeds_summary.py (through the atomic writer: the longer "nothing was replaced" line)
    assert seeds_summary.main([str(seed_dir)]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        f"error: cannot write {tmp_path / 'seeds_summary.csv'}: {words}; nothing was replaced")
    assert not weights.exists() and not list(weights.parent.iterdir())  # no partial file left


def test_clip_words_a_failed_write_as_dassl_does():
    """clip may import nothing of ours, so it keeps its own copy of the words for a failed
    write; they must stay those of dassl.utils.errors.write_failure."""
    from clip import random_weights
    from dassl.utils.errors import _WRITE_FAILURES, write_failure
    assert random_weights._WRITE_FAILURES == _WRITE_FAILURES
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        exc = OSError(code, os.strerror(code), "/x")
        assert random_weights._write_problem(exc) == write_failure(exc)
