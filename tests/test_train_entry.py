"""train.py end to end (tiny random CLIP, tiny synthetic AGIQA-3K), config merging, scripts."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dassl.config import load_config_file

import train
from clip.random_weights import save_random_weights
from datasets.synthetic import make_synthetic_agiqa
from tolerances import assert_same_metrics

REPO = Path(__file__).resolve().parents[1]
DATASET_YAML = str(REPO / "configs/datasets/AGIQA.yaml")
METHOD_YAML = str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("entry")
    make_synthetic_agiqa(root / "data", n_images=40, sizes=((48, 48),))
    weights = save_random_weights(root / "tiny.pt", "tiny-vit")
    return {"root": str(root / "data"), "weights": str(weights)}


def base_args(assets, out_dir):
    return ["--root", assets["root"], "--seed", "0", "--trainer", "CLIP_AGIQA",
            "--dataset-config-file", DATASET_YAML, "--config-file", METHOD_YAML,
            "--output-dir", str(out_dir)]


def tiny_opts(assets):
    return ["MODEL.BACKBONE.NAME", assets["weights"], "OPTIM.MAX_EPOCH", "2",
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
            "DATALOADER.TEST.BATCH_SIZE", "16", "TRAINER.CLIP_AGIQA.N_CTX", "4"]


@pytest.fixture(scope="module")
def trained(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    results = train.main(base_args(assets, out) + tiny_opts(assets) + [
        "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True"])
    return out, results


@pytest.mark.slow
def test_training_run_writes_everything(trained, assets):
    out, results = trained
    for path in ("log.txt", "results.json", "predictions.csv", "splits/train.csv",
                 "splits/test.csv", "prompt_learner/model-best.pth.tar",
                 "prompt_learner/model.pth.tar-2", "regression/model-best.pth.tar",
                 "regression/model.pth.tar-2", "regression/checkpoint"):
        assert (out / path).is_file(), path
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["mode"] == "train" and on_disk["seed"] == 0
    assert on_disk["last"]["epoch"] == 2 and on_disk["last"]["split"] == "test"
    assert on_disk["selected"]["selected_on"] == "test"
    assert on_disk["selected"]["epoch"] in (1, 2)
    assert on_disk["final"]["metrics"] == on_disk["selected"]["metrics"]
    assert on_disk["final"]["n_images"] == 8
    rows = read_csv(out / "predictions.csv")
    assert rows[0] == ["name", "mos", "pred"] and len(rows) == 9
    test_split = read_csv(out / "splits/test.csv")
    assert [r[0] for r in rows[1:]] == [r[0] for r in test_split[1:]]
    # The same float64 MOS written to two CSVs (METRIC_REL, approx's default, absorbs formatting).
    assert [float(r[1]) for r in rows[1:]] == pytest.approx([float(r[1]) for r in test_split[1:]])
    log = (out / "log.txt").read_text()
    assert log.startswith("Setting fixed seed: 0")
    assert "Deploy the model with the best test performance" in log
    assert "selected on test)" in log and "Finish training" in log


@pytest.mark.slow
def test_eval_only_reproduces_the_reported_model(trained, assets, tmp_path):
    out, results = trained
    evaluated = train.main(base_args(assets, tmp_path / "eval") + [
        "--eval-only", "--model-dir", str(out)] + tiny_opts(assets))
    assert evaluated["mode"] == "eval_only"
    assert_same_metrics(evaluated["final"]["metrics"], results["final"]["metrics"])
    assert read_csv(tmp_path / "eval/predictions.csv") == read_csv(out / "predictions.csv")
    checkpoint = evaluated["evaluated_checkpoint"]
    assert checkpoint["file"] == "model-best.pth.tar"
    assert checkpoint["modules"]["prompt_learner"]["epoch"] == results["selected"]["epoch"]

    last = train.main(base_args(assets, tmp_path / "eval_last") + [
        "--eval-only", "--model-dir", str(out), "--load-epoch", "2"] + tiny_opts(assets))
    assert_same_metrics(last["final"]["metrics"], results["last"]["metrics"])
    assert last["evaluated_checkpoint"]["modules"]["regression"]["epoch"] == 2


def test_setup_cfg_merge_order(assets, tmp_path):
    parser = train.build_parser()
    args = parser.parse_args(base_args(assets, tmp_path) + [
        "--backbone", "RN50", "OPTIM.MAX_EPOCH", "3", "TRAINER.CLIP_AGIQA.CSC", "True"])
    cfg = train.setup_cfg(args)
    assert cfg.is_frozen()
    assert cfg.SEED == 0  # --seed 0 is honoured
    assert cfg.MODEL.BACKBONE.NAME == "RN50"  # CLI flag beats the method yaml's ViT-B/16
    assert cfg.OPTIM.MAX_EPOCH == 3  # opts beat the yaml's 100
    assert cfg.OPTIM.LR == 0.002 and cfg.DATASET.NAME == "AGIQA"
    assert cfg.TRAINER.CLIP_AGIQA.CSC is True and cfg.TRAINER.CLIP_AGIQA.N_CTX == 16
    args = parser.parse_args(base_args(assets, tmp_path) + [
        "--backbone", "RN50", "MODEL.BACKBONE.NAME", "RN101"])
    assert train.setup_cfg(args).MODEL.BACKBONE.NAME == "RN101"  # opts beat CLI flags
    with pytest.raises(KeyError):
        train.setup_cfg(parser.parse_args(["TRAINER.CLIP_AGIQA.NOT_A_KEY", "1"]))


@pytest.mark.parametrize("yaml_path", sorted((REPO / "configs/trainers").rglob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_trainer_yaml_loads(yaml_path):
    args = train.build_parser().parse_args(["--dataset-config-file", DATASET_YAML,
                                            "--config-file", str(yaml_path)])
    cfg = train.setup_cfg(args)
    assert cfg.MODEL.BACKBONE.NAME in ("ViT-B/16", "ViT-B/32", "RN50", "RN101")
    assert cfg.TEST.EVALUATOR == "IQA" and cfg.OPTIM.NAME == "sgd"
    assert tuple(cfg.INPUT.SIZE) == (224, 224) and cfg.OPTIM.WARMUP_CONS_LR == 1e-5
    if "ctxv1" in yaml_path.name:
        assert cfg.TRAINER.CLIP_AGIQA.CTX_INIT == "a photo of a"


def _fake_python(tmp_path):
    """A PYTHON stand-in that records its arguments (one per line) instead of training; main.sh's
    argument check (scripts/method_args.py) and its name quoting (dassl/names.py) run for
    real."""
    record = tmp_path / "calls.txt"
    fake = tmp_path / "fakepython"
    fake.write_text(f'#!/usr/bin/env bash\ncase "$1" in *method_args.py|*/names.py) exec "{sys.executable}" "$@" ;; esac\n'
                    f'printf "%s\\n" "$@" >> "{record}"\necho "--" >> "{record}"\n')
    fake.chmod(0o755)
    return fake, record


def test_main_sh_builds_the_paper_protocol_command(tmp_path):
    fake, record = _fake_python(tmp_path)
    env = dict(os.environ, PYTHON=str(fake), DATA="/datasets")
    subprocess.run(["bash", str(REPO / "scripts/main.sh"), "AGIQA", "vit_b16_ep100", "end", "16",
                    "1", "False", "1", "2"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    calls = record.read_text().split("--\n")[:-1]
    # Two seeds: two trainings, then the cross-seed summary (scripts/seeds_summary.py).
    assert [c.splitlines()[0] for c in calls] == [str(REPO / "train.py")] * 2 + [
        str(REPO / "scripts" / "seeds_summary.py")]
    first = calls[0].splitlines()
    assert first[0] == str(REPO / "train.py")
    opts = dict(zip(first[1::2], first[2::2]))
    assert opts["--root"] == "/datasets" and opts["--seed"] == "1"
    assert opts["--output-dir"] == "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend/seed1"
    assert opts["TEST.FINAL_MODEL"] == "best_val"
    assert opts["TEST.ALLOW_SELECTION_ON_TEST"] == "True"
    assert opts["TRAINER.CLIP_AGIQA.N_CTX"] == "16" and opts["DATASET.NUM_SHOTS"] == "1"
    assert "seed2" in calls[1]
    # main.sh's protocol is the one configs/protocols/paper.yaml names, key for key.
    cfg = train.setup_cfg(train.build_parser().parse_args(first[1:]))
    paper = load_config_file(str(REPO / "configs/protocols/paper.yaml"))
    for section, values in paper.items():
        for key, value in values.items():
            assert cfg[section][key] == value, f"{section}.{key}"


def test_eval_sh_reads_the_main_sh_layout(tmp_path):
    fake, record = _fake_python(tmp_path)
    run = tmp_path / "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend/seed3"
    run.mkdir(parents=True)
    env = dict(os.environ, PYTHON=str(fake))
    subprocess.run(["bash", str(REPO / "scripts/eval.sh"), "AGIQA", "vit_b16_ep100", "end", "16",
                    "1", "False", "3", "100"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    args = record.read_text().splitlines()
    assert "--eval-only" in args
    assert args[args.index("--model-dir") + 1] == str(run.relative_to(tmp_path))
    assert args[args.index("--output-dir") + 1] == (
        "output/evaluation/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend/seed3/epoch100")
    assert args[args.index("--load-epoch") + 1] == "100"
    assert "--force" not in args
    # --force (which eval.sh's own "already finished" advice names) reaches train.py, before the
    # KEY VALUE options, and train.py is told which script it runs under (to word its advice).
    record.unlink()
    fake.write_text(fake.read_text() + f'echo "launcher=$CLIP_AGIQA_LAUNCHER" >> "{record}"\n')
    subprocess.run(["bash", str(REPO / "scripts/eval.sh"), "--force", "AGIQA", "vit_b16_ep100", "end", "16",
                    "1", "False", "3"], cwd=tmp_path, env=env, check=True, capture_output=True)
    args = record.read_text().splitlines()
    assert args[-1] == "launcher=eval.sh"
    parsed = train.build_parser().parse_args(args[1:-2])
    assert parsed.force is True and parsed.eval_only is True and "--force" not in parsed.opts
    missing = subprocess.run(["bash", str(REPO / "scripts/eval.sh"), "AGIQA", "vit_b16_ep100",
                              "end", "16", "1", "False"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    # A user error in the house style: one `error:` line, exit status 2.
    assert missing.returncode == 2
    assert missing.stderr == "error: no trained run at output/AGIQA/CLIP_AGIQA/vit_b16_ep100_" \
        "1shots/nctx16_cscFalse_ctpend/seed1; train it with scripts/main.sh first\n"



def test_full_config_goes_to_the_log_and_config_yaml_not_the_console(assets, tmp_path, capsys):
    out = tmp_path / "out"
    assert train.main(base_args(assets, out) + ["--no-train"] + tiny_opts(assets)) is None
    console = capsys.readouterr()
    log = (out / "log.txt").read_text()
    for record in ("** Arguments **", "** Config **", "Collecting env info", "PIXEL_MEAN"):
        assert record in log and record not in console.out + console.err, record
    assert f"Config: {out / 'config.yaml'}" in console.out and (out / "config.yaml").is_file()
    assert len(console.out.splitlines()) < 60  # the config and environment alone are over 120


@pytest.mark.slow
def test_the_method_config_is_validated_once_per_run(assets, tmp_path, monkeypatch, capsys):
    """train.py builds the model spec and pipeline options once; the trainer reuses them, and an
    evaluation builds the checkpoint's model in the precision the checkpoint records."""
    from trainers.method.model_spec import ModelSpec, PipelineOptions

    calls = {"ModelSpec": 0, "PipelineOptions": 0}
    for cls in (ModelSpec, PipelineOptions):
        def counting(klass, *args, _original=cls.from_config.__func__, **kwargs):
            calls[klass.__name__] += 1
            return _original(klass, *args, **kwargs)
        monkeypatch.setattr(cls, "from_config", classmethod(counting))

    out = tmp_path / "run"
    train.main(base_args(assets, out) + tiny_opts(assets) + [
        "OPTIM.MAX_EPOCH", "1", "TEST.FINAL_MODEL", "last_step", "TRAINER.CLIP_AGIQA.PREC", "fp32"])
    assert calls == {"ModelSpec": 1, "PipelineOptions": 1}

    calls.update(ModelSpec=0, PipelineOptions=0)
    capsys.readouterr()
    train.main(base_args(assets, tmp_path / "eval") + [
        "--eval-only", "--model-dir", str(out), "--load-epoch", "1"] + tiny_opts(assets) + [
        "TRAINER.CLIP_AGIQA.PREC", "bf16"])
    # The model is built once, from the checkpoint's spec, in the precision it records (fp32),
    # on one validation of the command line (PREC bf16 there does not rebuild it).
    assert "Precision: fp32 on CPU" in capsys.readouterr().out
    assert calls == {"ModelSpec": 1, "PipelineOptions": 1}


def _main_sh(tmp_path, *args):
    """scripts/main.sh ARGS with the recording PYTHON; (completed process, recorded calls)."""
    fake, record = _fake_python(tmp_path)
    env = dict(os.environ, PYTHON=str(fake), DATA="/datasets")
    done = subprocess.run(["bash", str(REPO / "scripts/main.sh"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    calls = record.read_text().split("--\n")[:-1] if record.exists() else []
    return done, [c.splitlines() for c in calls]


@pytest.mark.parametrize("cfg, positional, message", [
    ("nctx4", ["end", "16", "1", "False"],
     "configs/ablations/nctx4.yaml sets TRAINER.CLIP_AGIQA.N_CTX 4: pass NCTX 4"),
    ("nctx32", ["end", "16", "1", "False"],
     "configs/ablations/nctx32.yaml sets TRAINER.CLIP_AGIQA.N_CTX 32: pass NCTX 32"),
    ("csc", ["end", "16", "1", "False"],
     "configs/ablations/csc.yaml sets TRAINER.CLIP_AGIQA.CSC True: pass CSC True"),
    ("ctp_middle", ["end", "16", "1", "False"],
     "configs/ablations/ctp_middle.yaml sets TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION middle: "
     "pass CTP middle"),
    ("ctx_init_quality", ["end", "16", "1", "False"],
     "configs/ablations/ctx_init_quality.yaml sets TRAINER.CLIP_AGIQA.CTX_INIT 'the quality of "
     "this image is', 6 tokens, which set TRAINER.CLIP_AGIQA.N_CTX 6: pass NCTX 6"),
    ("vit_b16_ep100", ["end", "16", "1", "False", "1", "--", "TRAINER.CLIP_AGIQA.N_CTX", "8"],
     "the options after -- set TRAINER.CLIP_AGIQA.N_CTX: pass it as the positional NCTX instead "
     "(it also names the run folder)"),
])
def test_main_sh_refuses_positional_values_its_yaml_overrides(tmp_path, cfg, positional, message):
    done, calls = _main_sh(tmp_path, "AGIQA", cfg, *positional)
    assert (done.returncode, done.stderr) == (2, f"error: {message}\n")
    assert calls == [] and not (tmp_path / "output").exists()


@pytest.mark.parametrize("cfg, positional, folder", [
    ("nctx4", ["end", "4", "1", "False"], "nctx4_cscFalse_ctpend"),
    ("csc", ["end", "16", "1", "true"], "nctx16_cscTrue_ctpend"),
    ("ctp_middle", ["middle", "16", "1", "False"], "nctx16_cscFalse_ctpmiddle"),
    ("ctx_init_quality", ["end", "6", "1", "False"], "nctx6_cscFalse_ctpend"),
])
def test_main_sh_runs_with_the_yamls_own_values(tmp_path, cfg, positional, folder):
    done, calls = _main_sh(tmp_path, "AGIQA", cfg, *positional)
    assert done.returncode == 0, done.stderr
    [call] = calls
    assert call[call.index("--output-dir") + 1] == f"output/AGIQA/CLIP_AGIQA/{cfg}_1shots/{folder}/seed1"
    cfg_args = train.build_parser().parse_args(call[1:])
    built = train.setup_cfg(cfg_args).TRAINER.CLIP_AGIQA
    assert (built.CSC, built.CLASS_TOKEN_POSITION) == (folder.split("_")[1] == "cscTrue",
                                                       folder.split("_ctp")[1])
    if not built.CTX_INIT:
        assert f"nctx{built.N_CTX}_" in folder


def test_main_sh_passes_force_before_the_options(tmp_path):
    for args in (["--force", "AGIQA", "vit_b16_ep100", "end", "16", "1", "False", "1", "--",
                  "OPTIM.MAX_EPOCH", "1"],
                 ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False", "1", "--", "--force",
                  "OPTIM.MAX_EPOCH", "1"]):
        done, calls = _main_sh(tmp_path, *args)
        assert done.returncode == 0, done.stderr
        call = calls[-1]
        # train.py takes its flags before the KEY VALUE options.
        parsed = train.build_parser().parse_args(call[1:])
        assert parsed.force is True and "--force" not in parsed.opts
        assert parsed.opts[-2:] == ["OPTIM.MAX_EPOCH", "1"]


@pytest.mark.parametrize("args, message", [
    (["end", "16", "1", "False", "1", "x"], "SEED must be a non-negative whole number, got x"),
    (["end", "16", "1", "False", "-3"], "SEED must be a non-negative whole number, got -3"),
    (["end", "16", "1", "yes"], "CSC must be True or False, got yes"),
    (["end", "sixteen", "1", "False"], "NCTX must be a positive whole number, got sixteen"),
    (["last", "16", "1", "False"], "CTP must be end, middle or front, got last"),
])
def test_main_sh_rejects_bad_positional_values(tmp_path, args, message):
    done, calls = _main_sh(tmp_path, "AGIQA", "vit_b16_ep100", *args)
    assert (done.returncode, done.stderr) == (2, f"error: {message}\n")
    assert calls == [] and not (tmp_path / "output").exists()


def test_documented_main_sh_commands_pass_their_yamls_values():
    import re

    from scripts.method_args import conflict

    command = re.compile(r"bash scripts/main\.sh (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)")
    found = []
    for doc in (REPO / "README.md", REPO / "configs/ablations/README.md",
                *(REPO / "docs").glob("*.md")):
        for _dataset, cfg, ctp, nctx, _shots, csc in command.findall(doc.read_text()):
            if cfg == "CFG":  # the usage line
                continue
            yaml_file = REPO / "configs/ablations" / f"{cfg}.yaml"
            if not yaml_file.is_file():
                yaml_file = REPO / "configs/trainers/CLIP_AGIQA" / f"{cfg}.yaml"
            found.append(cfg)
            assert conflict(yaml_file, {"NCTX": nctx, "CSC": csc, "CTP": ctp}, []) is None, cfg
    assert {"nctx4", "csc", "ctp_middle", "ctx_init_quality", "ctx_init_photo"} <= set(found)


def test_main_sh_and_eval_sh_keep_paths_with_spaces_whole(tmp_path):
    import shutil

    repo = tmp_path / "my repo"  # the scripts, configs and their yaml reader in a folder whose
    for part in ("scripts", "configs", "dassl"):  # path has a space
        shutil.copytree(REPO / part, repo / part)
    fake, record = _fake_python(tmp_path)
    work = tmp_path / "my runs"
    work.mkdir()
    env = dict(os.environ, PYTHON=str(fake), DATA=str(tmp_path / "my data"))
    args = ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False", "1"]
    subprocess.run(["bash", str(repo / "scripts/main.sh"), *args, "--", "MODEL.BACKBONE.NAME",
                    str(tmp_path / "my weights.pt")], cwd=work, env=env, check=True,
                   capture_output=True)
    (work / "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend/seed1").mkdir(
        parents=True)
    subprocess.run(["bash", str(repo / "scripts/eval.sh"), *args], cwd=work, env=env, check=True,
                   capture_output=True)
    calls = [c.splitlines() for c in record.read_text().split("--\n")[:-1]]
    assert len(calls) == 2
    for call in calls:
        assert call[0] == str(repo / "train.py")
        assert call[call.index("--root") + 1] == str(tmp_path / "my data")
        assert call[call.index("--config-file") + 1] == str(
            repo / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")
    assert calls[0][-1] == str(tmp_path / "my weights.pt")


def test_a_yaml_named_for_one_database_trains_only_with_it(assets, tmp_path, capsys):
    out = tmp_path / "out"
    ablation = str(REPO / "configs/ablations/levels2_aigciqa2023.yaml")
    args = base_args(assets, out)
    args[args.index("--config-file") + 1] = ablation
    with pytest.raises(SystemExit) as stopped:
        train.main(args + tiny_opts(assets))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err == (f"error: {ablation} is made for one database (its name ends in _aigciqa2023: "
                   "MOS cut points or prompts of that database) and applies only to "
                   f"configs/datasets/AIGCIQA2023.yaml, not to {DATASET_YAML}\n")
    assert not out.exists()
    # The same rule as the sweep's plan: the AGIQA-3K variants pass with AGIQA.yaml, and a yaml
    # named for no database passes with any.
    for name in ("levels2_agiqa", "levels5_agiqa", "head_similarity"):
        train.check_database_scope(str(REPO / f"configs/ablations/{name}.yaml"), DATASET_YAML)
    train.check_database_scope(ablation, str(REPO / "configs/datasets/AIGCIQA2023.yaml"))
    with pytest.raises(train.ConfigError):
        train.check_database_scope(str(REPO / "configs/ablations/levels5_agiqa.yaml"),
                                   str(REPO / "configs/datasets/AIGIQA20K.yaml"))
