"""One way to report bad input: train.py and score.py catch the same designed error types
(`dassl.utils.USER_ERRORS`) and print them alike (`report_user_error`): one `error:` line, exit
status 2, no traceback; anything else is a bug and keeps its traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

import score
import train
from dassl.utils import (EXIT_USER_ERROR, USER_ERRORS, ConfigError, InputError, UserError,
                         report_user_error)


@pytest.fixture(scope="module")
def run(tiny_args, tmp_path_factory) -> Path:
    """A finished one-epoch run (its only checkpoint: model.pth.tar-1)."""
    out = tmp_path_factory.mktemp("user_errors") / "run"
    train.main(tiny_args(out))
    return out


def train_error(argv: list[str], capsys) -> str:
    """train.main's bad-input exit: SystemExit(2), no traceback; returns stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        train.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USER_ERROR and "Traceback" not in err, err
    return err


def score_error(argv: list[str], capsys) -> str:
    """score.main's bad-input exit: status 2, no traceback; returns stderr."""
    capsys.readouterr()
    status = score.main(argv + ["--no-progress"])
    err = capsys.readouterr().err
    assert status == EXIT_USER_ERROR and "Traceback" not in err, err
    return err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["missing", "empty", "no_checkpoints"])
def test_a_bad_run_folder_is_the_same_error_line_in_both_tools(folder, run, tiny_args,
                                                                tiny_assets, tmp_path, capsys):
    model_dir = tmp_path / "model"
    if folder != "missing":
        model_dir.mkdir()
    if folder == "no_checkpoints":
        (model_dir / "prompt_learner").mkdir()
        (model_dir / "config.yaml").write_text("{}\n")
    image = next(Path(tiny_assets["root"]).rglob("*.jpg"))
    trained = train_error(tiny_args(tmp_path / "eval", flags=[
        "--eval-only", "--model-dir", str(model_dir)]), capsys)
    scored = score_error([str(model_dir), str(image), "--output", str(tmp_path / "s.csv")],
                         capsys)
    assert len(error_lines(trained)) == 1
    assert error_lines(trained) == error_lines(scored) == [last_line(scored)]
    assert str(model_dir) in last_line(scored)


@pytest.mark.slow
def test_a_bad_image_is_one_error_line_in_both_tools(run, tiny_args, tiny_data, tmp_path,
                                                     capsys):
    # An image the evaluation reads: one of the test split (an evaluation checks only those).
    first_test = (Path(run) / "splits" / "test.csv").read_text().splitlines()[1].split(",")[0]
    bad = next(tiny_data.rglob(first_test))
    bad.write_bytes(b"not an image")
    trained = train_error(tiny_args(tmp_path / "eval", root=tiny_data, flags=[
        "--eval-only", "--model-dir", str(run), "--load-epoch", "1"]), capsys)
    scored = score_error([str(run), str(bad), "--output", str(tmp_path / "s.csv")], capsys)
    assert len(error_lines(trained)) == 1 and error_lines(scored) == [last_line(scored)]
    # The same reason, from the same image check, names the same file in both.
    reason = last_line(scored).split(f"{bad}: ", 1)[1]
    reason, offer = reason.split("; add --skip-unreadable", 1)  # score.py offers skipping
    assert offer.startswith(" to score the other images")
    assert f"{bad} ({reason})" in trained


@pytest.mark.slow
def test_score_keeps_the_traceback_of_a_bug(run, tiny_assets, tmp_path, monkeypatch):
    """A plain ValueError is a bug, not bad input: score.py no longer swallows it."""
    image = next(Path(tiny_assets["root"]).rglob("*.jpg"))

    def broken(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(score, "load_scorer", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        score.main([str(run), str(image), "--output", str(tmp_path / "s.csv")])


def test_score_input_errors_are_designed_types(tmp_path, capsys):
    """score.py's own checks raise `InputError`, which both tools report."""
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    for path in (first, second):
        path.parent.mkdir()
        path.write_bytes(b"")
    with pytest.raises(InputError, match="two images are named x.png"):
        score.collect_images([str(first), str(second)])
    with pytest.raises(InputError, match="cannot write"):
        score.write_output(str(first / "s.csv"), "name,score\n")  # under a file
    assert issubclass(InputError, UserError) and issubclass(InputError, USER_ERRORS)


def test_report_user_error_is_one_line_and_exit_status_2(capsys):
    assert report_user_error(ConfigError("bad value")) == 2
    assert report_user_error(KeyError("no such key"), prog="sweep") == 2
    assert capsys.readouterr().err == "error: bad value\nsweep: error: no such key\n"


@pytest.mark.slow
@pytest.mark.parametrize("opts, start", [
    (["INPUT.TRANSFORMS", "['flipp']"], "INPUT.TRANSFORMS: The requested one is expected"),
    (["INPUT.SIZE", "(256, 256)"], "INPUT.SIZE (256, 256) must equal the CLIP input resolution"),
    (["MODEL.BACKBONE.NAME", ""], "MODEL.BACKBONE.NAME is empty"),
])
def test_config_values_found_while_building_are_user_errors(opts, start, user_error, tiny_args,
                                                            tmp_path):
    """Values only the data manager or the model can check are still one `error:` line (they
    were tracebacks: plain ValueErrors raised after the config check)."""
    message = user_error(tiny_args(tmp_path / "out", *opts))
    assert message.startswith(start)
    assert not (tmp_path / "out").exists()  # the folder the failed command made is gone
