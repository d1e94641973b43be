"""A new user's first day with the entry points (train.py, main.sh, eval.sh, --eval-only): each
test is one kind of friction, met through every door it enters by."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import train
from dassl.utils import ImageReadError
from dassl.utils.errors import TrainingDiverged
from dassl.utils.run_dir import check_new_run_folder, foreign_entries
from dassl.utils.run_lock import LOCK_FILE
from scripts.sweeps.runner import Job, take_lock

REPO = Path(__file__).resolve().parents[1]


def _state(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes: equal before and after = nothing touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _users_folder(path: Path) -> Path:
    (path / "figures").mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    (path / "thesis.tex").write_text("\\section{}\n")
    return path


# ---------------------------------------------------------------- 1. a folder of the user's
@pytest.mark.parametrize("flags", [(), ("--force",)])
def test_train_py_refuses_an_output_dir_of_other_files_and_touches_nothing(
        flags, user_error, tiny_args, tmp_path):
    out = _users_folder(tmp_path / "mine")
    before = _state(out)
    message = user_error(tiny_args(out, flags=flags))
    assert str(out) in message and "notes.txt" in message and "figures/" in message
    assert "another --output-dir" in message
    assert _state(out) == before and sorted(p.name for p in out.iterdir()) == \
        ["figures", "notes.txt", "thesis.tex"]  # no log, no lock, nothing moved


def test_under_main_sh_the_advice_names_what_main_sh_accepts(user_error, tiny_args, tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv(train.LAUNCHER_ENV, "eval.sh")
    message = user_error(tiny_args(_users_folder(tmp_path / "mine")))
    assert "--output-dir" not in message and "move them elsewhere" in message


@pytest.mark.parametrize("content", [[], ["config.yaml"], ["results.json"], ["log.txt"],
                                     [LOCK_FILE], ["prompt_learner/checkpoint"],
                                     ["previous-20260101-000000/config.yaml"], [".DS_Store"],
                                     ["sweep_run.json"], ["sweep.log"], ["sweep_job.json"]])
def test_empty_missing_and_run_folders_are_not_foreign(content, tmp_path):
    folder = tmp_path / "run"
    assert foreign_entries(str(folder)) == []  # missing
    folder.mkdir()
    for name in content:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    if content and content != [".DS_Store"]:  # a note beside a run is the run's business
        (folder / "notes.txt").write_text("my note\n")
    assert foreign_entries(str(folder)) == []
    check_new_run_folder(str(folder))


def test_a_sweep_does_not_start_a_run_in_a_folder_of_other_files(tmp_path):
    out = _users_folder(tmp_path / "sweep" / "AGIQA" / "seed1")
    before = _state(out)
    lines = []
    job = Job("AGIQA/seed1", (sys.executable, "-c", "pass"), out, {"key": "AGIQA/seed1"})
    assert take_lock(job, lines.append) is None
    assert len(lines) == 1 and "skip" in lines[0] and "notes.txt" in lines[0]
    assert "another --output" in lines[0] and "--output-dir" not in lines[0]
    assert _state(out) == before and not (out / LOCK_FILE).exists()


# ---------------------------------------------------------------- 6. TensorBoard's writer thread
def _fail_with(exc: BaseException):
    def fail(self, *args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("method, exc, code", [
    ("run_epoch", KeyboardInterrupt(), 130),                      # Ctrl-C mid-epoch
    ("after_epoch", TrainingDiverged("loss is nan"), 2),           # divergence
    ("_final_evaluation", ImageReadError("image.jpg: truncated"), 2),  # after the last epoch
    ("after_train", RuntimeError("a bug"), None),                  # a bug, after the loop
])
def test_a_failing_run_leaves_no_live_tensorboard_writer_and_no_warning(
        method, exc, code, tiny_args, tmp_path, monkeypatch, recwarn):
    from trainers import CLIP_AGIQA

    monkeypatch.setattr(CLIP_AGIQA, method, _fail_with(exc))
    gc.collect()  # earlier tests' garbage warns now, not during this run
    recwarn.clear()
    before = set(threading.enumerate())
    with pytest.raises((SystemExit, RuntimeError)) as info:
        train.main(tiny_args(tmp_path / "run"))
    assert getattr(info.value, "code", None) == code
    started = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert started == [], started
    gc.collect()  # an event file left open would warn (ResourceWarning) here
    assert [str(w.message) for w in recwarn] == []


# ---------------------------------------------------------------- 5. main.sh's own command line
def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / name), *args], cwd=cwd, text=True,
                          capture_output=True, env=dict(os.environ, PYTHON=sys.executable))


POSITIONAL = ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False"]


@pytest.mark.parametrize("args", [POSITIONAL + ["OPTIM.LR", "0.01"],
                                  POSITIONAL + ["1", "2", "OPTIM.LR", "0.01"],
                                  ["--force"] + POSITIONAL + ["TRAINER.CLIP_AGIQA.N_CTX", "16"]])
def test_main_sh_says_where_config_options_go(args, tmp_path):
    done = _script("main.sh", *args, cwd=tmp_path)
    key = next(a for a in args if "." in a)
    at = args.index(key)
    assert done.returncode == 2 and done.stderr.count("error: ") == 1, done.stderr
    assert done.stderr.strip().endswith(
        "put -- before config options: bash scripts/main.sh " +
        " ".join(args[:at] + ["--"] + args[at:])), done.stderr
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize("script, args", [("main.sh", ["--lr", "0.1"] + POSITIONAL),
                                          ("main.sh", POSITIONAL + ["1", "-f"]),
                                          ("eval.sh", ["--seed", "1"] + POSITIONAL),
                                          ("eval.sh", POSITIONAL + ["--overwrite"])])
def test_an_unknown_option_lists_the_scripts_own(script, args, tmp_path):
    done = _script(script, *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("error: ") == 1, done.stderr
    unknown = next(a for a in args if a.startswith("-"))
    assert f"error: unknown option {unknown}: the options of {script} are --force and --help" \
        in done.stderr


def test_a_failed_run_removes_the_empty_parent_folders_it_made(user_error, tiny_args, tmp_path):
    kept = tmp_path / "output" / "AGIQA"
    (kept / "other-run").mkdir(parents=True)  # not this command's: stays, and so do its parents
    out = kept / "CLIP_AGIQA" / "cfg_1shots" / "nctx4" / "seed1"
    user_error(tiny_args(out, root=tmp_path / "no-data"))
    assert sorted(p.name for p in kept.iterdir()) == ["other-run"]
    out = tmp_path / "fresh" / "CLIP_AGIQA" / "seed1"
    user_error(tiny_args(out, root=tmp_path / "no-data"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output"]


# ---------------------------------------------------------------- 2. data not where it is looked for
@pytest.mark.parametrize("launcher, remedy", [
    ("", "--root DIR (or DATASET.ROOT DIR)"),
    ("main.sh", "the DATA variable (DATA=DIR bash scripts/main.sh ...)"),
    ("eval.sh", "the DATA variable (DATA=DIR bash scripts/eval.sh ...)")])
@pytest.mark.parametrize("damage", ["no root", "no database folder", "fetch fails", "no images"])
def test_missing_data_names_the_root_remedy_the_parent_and_the_fetch_command(
        launcher, remedy, damage, user_error, tiny_args, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setenv(train.LAUNCHER_ENV, launcher)
    root = {"no root": tmp_path / "typo", "no database folder": tmp_path / "empty",
            "fetch fails": tmp_path / "empty", "no images": tiny_data}[damage]
    if root.name == "empty":
        (root / "elsewhere").mkdir(parents=True)
    if damage == "no images":
        for image in (root / "AGIQA-3K").glob("*.jpg"):
            image.unlink()
    # The tests' database sources refuse connections (conftest), so a fetch fails.
    fetch = "True" if damage == "fetch fails" else "False"
    message = user_error(tiny_args(tmp_path / "out", "DATASET.FETCH", fetch, root=root))
    lines = message.splitlines()
    assert lines[-1] == f"if it is elsewhere: name the folder that holds AGIQA-3K/ with {remedy}"
    assert "python -m datasets.fetch AGIQA" in message and f"--root {root}" in message
    if damage == "no root":  # the nearest folder that exists, and what it holds
        assert f"{tmp_path} contains: " in message
    if root.name == "empty":
        assert f"{root} contains: elsewhere/" in message
    assert not (tmp_path / "out").exists()


def test_a_file_where_a_folder_is_expected_is_called_one(user_error, tiny_args, tiny_assets,
                                                        tmp_path):
    a_file = tmp_path / "weights.pt"
    a_file.write_bytes(b"x")
    a_folder = tmp_path / "folder.csv"
    a_folder.mkdir()
    root_with_file = tmp_path / "root"
    root_with_file.mkdir()
    (root_with_file / "AGIQA-3K").write_text("not a folder")
    out = tmp_path / "out"
    cases = {
        "--root": (tiny_args(out, root=a_file), f"{a_file} is a file, not a folder"),
        "ROOT/AGIQA-3K": (tiny_args(out, root=root_with_file),
                          f"{root_with_file / 'AGIQA-3K'} is a file, not a folder"),
        "--resume": (tiny_args(out, flags=["--resume", str(a_file)]),
                     f"--resume {a_file} is a file, not a folder"),
        "--model-dir": (tiny_args(out, flags=["--eval-only", "--model-dir", str(a_file)]),
                        f"model directory {a_file} is a file, not a folder"),
        "--output-dir": (tiny_args(a_file), f"OUTPUT_DIR {a_file} is a file, not a folder"),
        "LABEL_FILE": (tiny_args(out, "DATASET.LABEL_FILE", str(a_folder)),
                       f"{a_folder} is a folder, not a file"),
        "PROMPT_FILE": (tiny_args(out, "DATASET.PROMPT_FILE", str(a_folder)),
                        f"{a_folder} is a folder, not a file"),
    }
    for door, (argv, expected) in cases.items():
        message = user_error(argv)
        assert expected in message and "does not exist" not in message, (door, message)


# ---------------------------------------------------------------- 3. a name that is not one
@pytest.mark.parametrize("name", ["ViT-B16", "vit-b/16", "ViT_B_16", "vit b 16"])
def test_a_misspelt_backbone_gets_did_you_mean_and_new_run_advice(name, user_error, tiny_args,
                                                                  tmp_path):
    message = user_error(tiny_args(tmp_path / "out", "MODEL.BACKBONE.NAME", name))
    assert "(did you mean ViT-B/16?)" in message and "'ViT-L/14'" in message
    assert "one of those names or the path of a CLIP weights file" in message
    assert "trained with" not in message


def test_a_missing_weights_file_is_worded_for_a_new_run_or_for_a_resume(
        user_error, tiny_args, sentinel, tmp_path):
    missing = str(tmp_path / "ViT-B-16.pt")
    new = user_error(tiny_args(tmp_path / "new", "MODEL.BACKBONE.NAME", missing))
    assert "trained with" not in new and "did you mean" not in new
    sentinel(tmp_path / "resumed")  # a run folder with a checkpoint: this command resumes it
    resumed = user_error(tiny_args(tmp_path / "resumed", "MODEL.BACKBONE.NAME", missing))
    assert "the CLIP weights file the run was trained with" in resumed


@pytest.mark.parametrize("option, value, expected", [
    ("--config-file", "configs/trainers/CLIP_AGIQA/vit_b16.yaml",
     ["(did you mean vit_b16_ep50.yaml or vit_b16_ep100.yaml", "rn50_ep100.yaml"]),
    ("--config-file", "configs/ablations/NCTX4.yaml", ["(did you mean nctx4.yaml?)", "(29 in all)"]),
    ("--dataset-config-file", "configs/datasets/AGIQA3k.yaml",
     ["(did you mean AGIQA1K.yaml or AGIQA.yaml", "AIGCIQA2023.yaml"]),
    ("OPTIM.NAME", "SGD ", ["'adam'", "'sgd'"]),
    ("OPTIM.LR_SCHEDULER", "cosin", ["'cosine'", "'single_step'"]),
    ("TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION", "ends", ["'end'", "'middle'", "'front'"]),
    ("optim.lr", "0.1", ["did you mean OPTIM.LR"]),
    ("OPTIM.MAX_EPOC", "3", ["did you mean OPTIM.MAX_EPOCH"]),
    ("--trainer", "clip_agiqa", ["did you mean CLIP_AGIQA", "available: ['CLIP_AGIQA'"]),
])
def test_every_error_rejecting_a_name_lists_the_valid_ones(option, value, expected, user_error,
                                                           tiny_args, tmp_path):
    argv = tiny_args(tmp_path / "out")
    if option.startswith("--"):
        given = str(REPO / value) if value.startswith("configs/") else value
        argv[argv.index(option) + 1] = given
    else:
        argv += [option, value]
    message = user_error(argv)
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("script", ["main.sh", "eval.sh"])
def test_the_scripts_cfg_error_lists_close_names_and_the_method_configs(script, tmp_path):
    done = _script(script, "AGIQA", "VIT_B16_EP100_", "end", "16", "1", "False", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("error: ") == 1, done.stderr
    assert "(did you mean vit_b16_ep100?)" in done.stderr
    methods = sorted(p.stem for p in (REPO / "configs/trainers/CLIP_AGIQA").glob("*.yaml"))
    assert "method configs: " + ", ".join(methods) + ";" in done.stderr
    ablations = len(list((REPO / "configs/ablations").glob("*.yaml")))
    assert f"{ablations} ablations in configs/ablations/" in done.stderr


# ---------------------------------------------------------------- 4. an evaluation needs only its part
@pytest.fixture(scope="module")
def trained_run(tiny_assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    argv = ["--root", tiny_assets["root"], "--seed", "0", "--trainer", "CLIP_AGIQA",
            "--dataset-config-file", str(REPO / "configs/datasets/AGIQA.yaml"),
            "--config-file", str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"),
            "--output-dir", str(out), "MODEL.BACKBONE.NAME", tiny_assets["weights"],
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "TRAINER.CLIP_AGIQA.N_CTX", "4",
            "TEST.FINAL_MODEL", "last_step"]
    return out, train.main(argv)


def test_an_evaluation_reads_only_the_test_images_and_prints_no_training_parameters(
        trained_run, tiny_args, tiny_data, tmp_path, capsys):
    run, results = trained_run
    test_names = [line.split(",")[0] for line in
                  (run / "splits" / "test.csv").read_text().splitlines()[1:]]
    for image in (tiny_data / "AGIQA-3K").glob("*.jpg"):
        if image.name not in test_names:  # every training image gone
            image.unlink()
    capsys.readouterr()
    evaluated = train.main(tiny_args(tmp_path / "eval", root=tiny_data,
                                     flags=["--eval-only", "--model-dir", str(run)]))
    out = capsys.readouterr().out
    assert evaluated["final"]["n_images"] == len(test_names)
    assert evaluated["final"]["metrics"] == pytest.approx(results["final"]["metrics"])
    assert f"Checked that {len(test_names)} images decode" in out
    for training_line in ("training paras", "trainable parameters", "transform_train",
                          "Turning off gradients", "OPTIM", "lr ", "epoch ["):
        assert training_line not in out, training_line
    # Training on the same data still needs (and checks) every image.
    message = pytest.raises(SystemExit, train.main, tiny_args(tmp_path / "train", root=tiny_data))
    assert message.value.code == 2
    assert "images listed in the label file are missing" in capsys.readouterr().err


@pytest.mark.parametrize("model_dir", ["", "typo"])
def test_an_evaluation_without_its_model_dir_says_so(model_dir, user_error, tiny_args,
                                                     trained_run, tmp_path):
    flags = ["--eval-only"] + (["--model-dir", str(trained_run[0]) + model_dir] if model_dir
                               else [])
    message = user_error(tiny_args(tmp_path / "eval", flags=flags))
    assert ("needs --model-dir" if not model_dir else
            f"model directory {trained_run[0]}{model_dir} not found") in message
    assert "no trainer given" not in message
