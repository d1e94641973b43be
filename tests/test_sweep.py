"""Sweep runner: spec planning, skip/resume, parallel slots, tables, and one real sweep."""

import hashlib
import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clip import weights as clip_weights
from clip.random_weights import save_random_weights
from datasets.synthetic import make_synthetic_agiqa
from synthetic_databases import make_synthetic_agiqa1k
from scripts.sweeps.runner import (RUN_FILE, Job, check_identity, device_slots, execute,
                                read_results, run_status, visible_gpus)
from scripts.sweeps.plan import PLAN_FILE
from scripts.sweeps.spec import SweepError, build_spec, load_spec_file
from dassl.names import shown

# Tolerances: the table values checked here are float64 sums, means, medians, std and ratios of
# a few decimal inputs, so they differ from the decimal expectation by a few FP64_EPS only.
# pytest.approx's default (rel 1e-6, METRIC_REL in tests/tolerances.py) and np.allclose's
# (rtol 1e-5) are far above that and far below a real error (another run's, column's or split's
# value: >= 0.01 here).

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "sweeps" / "example.yaml"


def load_cli():
    spec = importlib.util.spec_from_file_location("sweep_cli", REPO / "scripts" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sweep = load_cli()

# A stand-in for train.py: records how it was called and writes a results.json whose SRCC is
# 0.8 (N_CTX 4) or 0.7 (N_CTX 8) plus 0.01 * seed and a data block (one label file, the random
# split of the run's split seed, or split file <K> with DATASET.SPLIT_INDEX K); exits 3 when called with --fail. With
# --eval-only it writes an eval-only report whose SRCC is 0.3; MOS ranges are 27..74 for
# AIGCIQA2023 and 0..5 otherwise.
FAKE_TRAINER = textwrap.dedent("""
    import json, os, sys
    args = sys.argv[1:]
    if "--fail" in args:
        print("boom: deliberate failure")
        sys.exit(3)
    config = args[args.index("--dataset-config-file") + 1] if "--dataset-config-file" in args \\
        else ""
    mos_range = [27.0, 74.0] if "AIGCIQA2023" in config else [0.0, 5.0]
    if "--eval-only" in args:
        out = args[args.index("--output-dir") + 1]
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "invocations.jsonl"), "a") as f:
            f.write(json.dumps({"argv": args}) + "\\n")
        metrics = {"srcc": 0.3, "plcc": 0.35, "krcc": 0.2, "rmse": 2.0}
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"mode": "eval_only", "final": {"split": "test", "metrics": metrics,
                       "n_images": 7, "mos_range": mos_range}}, f)
        sys.exit(0)
    out = args[args.index("--output-dir") + 1]
    seed = int(args[args.index("--seed") + 1])
    opts = args[args.index("--output-dir") + 2:]
    kv = dict(zip(opts[0::2], opts[1::2]))
    os.makedirs(out, exist_ok=True)
    record = {"seed": seed, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "resumed": os.path.exists(os.path.join(out, "prompt_learner", "checkpoint")),
              "opts": kv}
    with open(os.path.join(out, "invocations.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\\n")
    srcc = (0.8 if kv.get("TRAINER.CLIP_AGIQA.N_CTX", "4") == "4" else 0.7) + 0.01 * seed
    metrics = {"srcc": srcc, "plcc": srcc, "krcc": srcc - 0.2, "rmse": 1 - srcc,
               "plcc_fitted": None, "rmse_fitted": None}
    block = {"epoch": 2, "split": "test", "metrics": metrics}
    with open(os.path.join(out, "results.json"), "w") as f:
        data = {"label_files": [{"path": "/data/labels.csv", "sha256": "a" * 64}],
                "split": {"mode": "random", "seed": int(kv.get("DATASET.SPLIT_SEED", 0))}}
        if "DATASET.SPLIT_INDEX" in kv:
            index = int(kv["DATASET.SPLIT_INDEX"])
            data["split"] = {"mode": "file", "index": index, "files": [
                {"path": f"/data/peer/{index}/train.csv", "sha256": str(index) * 64}]}
        json.dump({"mode": "train", "final_model": kv["TEST.FINAL_MODEL"], "last": block,
                   "selected": dict(block, selected_on="test"), "train_mos_range": mos_range,
                   "final": {"split": "test", "metrics": metrics, "mos_range": mos_range},
                   "data": data}, f)
""")


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAINER)
    monkeypatch.setattr(sweep, "TRAIN_SCRIPT", path)
    return path


def results_json(srcc, plcc=0.5, krcc=0.4, rmse=0.6, mode="train"):
    metrics = {"srcc": srcc, "plcc": plcc, "krcc": krcc, "rmse": rmse, "plcc_fitted": None,
               "rmse_fitted": None}
    return {"mode": mode, "final_model": "best_val",
            "last": {"epoch": 5, "split": "test", "metrics": dict(metrics, srcc=0.1)},
            "selected": {"epoch": 3, "split": "test", "metrics": metrics, "selected_on": "test",
                         "selection_metric": "srcc", "selection_value": srcc}}


def write_run(run_dir, results):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(results))


def two_by_two(output):
    """CLI args of a 2 variants x 2 seeds sweep on AGIQA (paper protocol)."""
    return ["--datasets", "AGIQA", "--variants", "nctx4=vit_b16_ep50", "nctx8=vit_b16_ep50",
            "--seeds", "1", "2", "--output", str(output), "--root", str(output / "data")]


def run_dir(output, variant, seed, protocol="paper"):
    return output / "AGIQA" / variant / protocol / "splitseed42" / f"seed{seed}"


# ----------------------------------------------------------------------------- planning
def test_example_spec_plans_the_documented_runs():
    spec = build_spec(load_spec_file(EXAMPLE), {})
    runs = spec.runs()
    assert len(runs) == 2 * 2 * 2 * 1 * 3
    first, last = runs[0], runs[-1]
    assert first.key == "AGIQA/vit_b16_ep100/paper/splitseed42/seed1"
    assert last.key == "AIGCIQA2023/vit_b16_ep100_nctx8/val/splitseed42/seed3"
    assert last.output_dir == spec.output / last.key
    argv = last.train_argv(spec.root, spec.extra_opts)
    assert argv[argv.index("--seed") + 1] == "3"
    assert argv[argv.index("--config-file") + 1].endswith("CLIP_AGIQA/vit_b16_ep100.yaml")
    opts = argv[argv.index("--output-dir") + 2:]
    # variant opts, then the protocol's, then the split seed
    assert opts == ["TRAINER.CLIP_AGIQA.N_CTX", "8", "DATASET.SPLIT_MODE", "random",
                    "DATASET.VAL_RATIO", "0.1", "TEST.FINAL_MODEL", "best_val",
                    "TEST.ALLOW_SELECTION_ON_TEST", "False", "DATASET.SPLIT_SEED", "42"]


def test_cli_entries_and_overrides(tmp_path):
    spec = build_spec(load_spec_file(EXAMPLE), {
        "datasets": ["AGIQA"], "variants": ["vit_b16_ep100_nctx8", "mine=vit_b16_ep50",
                                            "configs/trainers/CLIP_AGIQA/rn50_ep100.yaml"],
        "protocols": ["last", str(REPO / "configs" / "protocols" / "prompt_disjoint.yaml")],
        "seeds": [7], "split_seeds": [1, 2], "output": str(tmp_path),
        "extra_opts": ["DATALOADER.NUM_WORKERS", "0"]})
    assert [v.name for v in spec.variants] == ["vit_b16_ep100_nctx8", "mine", "rn50_ep100"]
    assert spec.variants[0].opts == ("TRAINER.CLIP_AGIQA.N_CTX", "8")  # taken from the spec
    assert [p.name for p in spec.protocols] == ["last", "prompt_disjoint"]
    runs = spec.runs()
    assert len(runs) == 3 * 2 * 2 and {r.split_seed for r in runs} == {1, 2}
    assert runs[0].opts(spec.extra_opts)[-4:] == ["DATASET.SPLIT_SEED", "1",
                                                  "DATALOADER.NUM_WORKERS", "0"]


@pytest.mark.parametrize("raw, overrides, message", [
    ({"seed": [1]}, {}, "unknown key"),
    ({}, {"variants": ["vit_b16_ep50"]}, "no datasets given"),
    ({"datasets": ["AGIQA"], "variants": [{"config": "vit_b16_ep50", "opts": ["SEED", 3]}]},
     {}, "set by the sweep"),
    ({"datasets": ["AGIQA"], "variants": ["vit_b16_ep50"]},
     {"extra_opts": ["DATASET.VAL_RATIO", "0.2"]}, "set by the sweep or its protocol"),
    ({"datasets": ["AGIQA"], "variants": ["vit_b16_ep50", "vit_b16_ep50"]}, {}, "unique"),
    ({"datasets": ["AGIQA"], "variants": ["nope"]}, {}, "unknown variant nope; valid"),
    ({"datasets": ["AGIQA"], "variants": ["nope.yaml"]}, {}, "no such yaml file"),
    ({"datasets": ["AGIQA"], "variants": [{"config": "vit_b16_ep50", "opts": ["A"]}]}, {},
     "odd count"),
    ({"datasets": ["AGIQA"], "variants": ["vit_b16_ep50"], "seeds": ["1"]}, {}, "integers"),
    ({"datasets": ["AGIQA"], "variants": ["bad/name=vit_b16_ep50"]}, {}, "one folder name"),
])
def test_spec_errors_are_clear(raw, overrides, message, tmp_path):
    if "seed" in raw:
        (tmp_path / "s.yaml").write_text("seed: [1]\n")
        with pytest.raises(SweepError, match=message):
            load_spec_file(tmp_path / "s.yaml")
        return
    with pytest.raises(SweepError, match=message):
        build_spec(raw, overrides)


@pytest.mark.parametrize("content, message", [
    (b"datasets: [AGIQA\n", "is not valid yaml at line 2, column 1: expected ',' or ']'"),
    (b"\x80\x02\x8a binary", "is not UTF-8 text"),
])
def test_an_unreadable_spec_or_protocol_is_one_error_line(content, message, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    assert sweep.main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sweep: error: sweep spec {path} {message}")
    assert len(err.splitlines()) == 1
    assert sweep.main(["--datasets", "AGIQA", "--variants", "vit_b16_ep50", "--protocol",
                       str(path), "--output", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sweep: error: protocol {path} {message}")
    assert len(err.splitlines()) == 1


def valid_names(message: str) -> list[str]:
    """The names after ``valid KINDs: `` in an error line, up to the parenthesis that follows."""
    listed = message.split("s: ", 1)[1].split(" (", 1)[0]
    return listed.split(", ")


@pytest.mark.parametrize("flag, name, folders, close", [
    ("--datasets", "AGIQA ", ["datasets"], "AGIQA"),  # a trailing space
    ("--variants", "vit_b16_ep10", ["trainers/CLIP_AGIQA", "ablations"], "vit_b16_ep100"),
    ("--protocol", "vall", ["protocols"], "val"),
    ("--variants", "x\u00a0y", ["trainers/CLIP_AGIQA", "ablations"], None),
])
def test_an_unknown_name_is_refused_listing_the_valid_ones(flag, name, folders, close, tmp_path,
                                                          capsys):
    """Every name the sweep resolves (datasets, variants, protocols) is refused in one line
    that shows the name as typed (a no-break space visible) and lists the valid names: the
    yaml files of the folders it looks in."""
    name = name.encode().decode("unicode_escape")
    args = {"--datasets": ["AGIQA"], "--variants": ["vit_b16_ep50"], "--protocol": ["paper"]}
    args[flag] = [name]
    argv = [x for key, values in args.items() for x in (key, *values)]
    assert sweep.main(argv + ["--output", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    kind = {"--datasets": "dataset", "--variants": "variant", "--protocol": "protocol"}[flag]
    assert err.startswith(f"sweep: error: unknown {kind} {shown(name)}")
    expected = sorted({p.stem for f in folders for p in (REPO / "configs" / f).glob("*.yaml")})
    assert valid_names(err.strip()) == expected and len(expected) > 2
    assert (f"(did you mean {shown(close)}?)" in err) == (close is not None)
    assert not (tmp_path / "out").exists()


def test_an_unknown_executor_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--datasets", "AGIQA", "--variants", "vit_b16_ep50", "--executor", "locl"])
    assert stop.value.code == 2
    assert "invalid choice: 'locl' (choose from 'local', 'slurm')" in capsys.readouterr().err


def test_dry_run_checks_configs_prints_commands_and_writes_nothing(tmp_path, capsys,
                                                                    tiny_assets):
    out = tmp_path / "sweep"
    args = two_by_two(out)
    args[args.index("--root") + 1] = tiny_assets["root"]
    args += ["--extra-opts", "MODEL.BACKBONE.NAME", tiny_assets["weights"]]
    assert sweep.main(args + ["--dry-run"]) == 0
    text = capsys.readouterr().out
    table, rest = dry_run_table(text.splitlines())
    assert [row[0] for row in table] == [f"AGIQA/{v}/paper/splitseed42/seed{k}"
                                         for v in ("nctx4", "nctx8") for k in (1, 2)]
    assert all(row[1:] == ["new", "ok"] for row in table)
    # One command as an example (the first run's), then the summary: counts, executor, folder.
    assert text.count("train.py --root") == 1 and "TEST.ALLOW_SELECTION_ON_TEST True" in text
    assert rest[-2:] == [f"dry run of sweep {out}: 4 run(s): 0 done, 0 to resume, 4 new",
                         "4 to run: local executor, 1 at a time on CPU; nothing was run or "
                         "written"]
    assert not any("missing" in line for line in rest)
    assert not out.exists()
    # A typo in a key is caught before anything runs.
    assert sweep.main(two_by_two(out) + ["--dry-run", "--extra-opts", "OPTIM.LRR", "1"]) == 2
    assert "OPTIM.LRR" in capsys.readouterr().err



def dry_run_lines(capsys, args):
    """(exit status, stdout lines, stderr) of ``sweep.py ARGS --dry-run``."""
    status = sweep.main(args + ["--dry-run"])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def dry_run_table(lines):
    """The dry run's table of runs as ``[[run, state, inputs], ...]``, and the lines after it."""
    start = next(i for i, line in enumerate(lines) if line.split() == ["run", "state", "inputs"])
    assert set(lines[start + 1]) == {"-", " "}
    end = next((i for i in range(start + 2, len(lines)) if "  " not in lines[i].rstrip()),
               len(lines))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start + 2:end]], lines[end:]


def missing_lines(lines):
    """``{problem: number of runs}`` from the dry run's ``N run(s) missing PROBLEM`` lines."""
    found = [re.fullmatch(r"(\d+) run\(s\) missing (.*)", line) for line in lines]
    return {m.group(2): int(m.group(1)) for m in found if m}


def test_a_dry_run_prints_each_line_once_and_ends_with_a_summary(tmp_path, capsys):
    """24 runs missing the same data and weights: one table line per run, each problem once
    with its count, one example command, then the summary (runs, done, to run, executor,
    folder); no line repeats."""
    out = tmp_path / "sweep"
    status, lines, err = dry_run_lines(capsys, [str(EXAMPLE), "--output", str(out), "--root",
                                                str(tmp_path / "data"), "--extra-opts",
                                                "MODEL.BACKBONE.NAME", str(tmp_path / "w.pt")])
    assert status == 2 and len(err.splitlines()) == 1
    table, rest = dry_run_table(lines)
    assert len(table) == 24 and len(set(map(tuple, table))) == 24
    assert {tuple(row[1:]) for row in table} == {("new", "missing data, weights")}
    assert len(lines) == len(set(lines)) and len(rest) <= 8
    missing = missing_lines(rest)
    assert sorted(missing.values()) == [12, 12, 24]
    assert [k for k in missing if k.startswith("weights: ")] == [
        f"weights: CLIP weights MODEL.BACKBONE.NAME {tmp_path / 'w.pt'}: not an existing file "
        f"and not a model name ({', '.join(clip_weights.MODELS)})"]
    data = sorted(k for k in missing if k.startswith("data: "))
    assert len(data) == 2 and all(
        line.startswith(f"data: dataset folder {tmp_path / 'data' / folder} not found")
        for line, folder in zip(data, ("AGIQA-3K", "AIGCIQA2023")))
    assert rest[-2:] == [f"dry run of sweep {out}: 24 run(s): 0 done, 0 to resume, 24 new",
                         "24 to run: local executor, 1 at a time on CPU; nothing was run or "
                         "written"]


def test_dry_run_reports_a_missing_data_root_per_run(tmp_path, capsys, tiny_assets):
    out = tmp_path / "sweep"
    args = two_by_two(out) + ["--extra-opts", "MODEL.BACKBONE.NAME", tiny_assets["weights"]]
    status, lines, err = dry_run_lines(capsys, args)
    folder = out / "data" / "AGIQA-3K"
    table, rest = dry_run_table(lines)
    assert status == 2 and [row[2] for row in table] == ["missing data"] * 4  # weights are there
    [(problem, count)] = missing_lines(rest).items()  # one line for the four runs
    assert problem.startswith(f"data: dataset folder {folder} not found") and count == 4
    assert err.startswith(f"sweep: error: none of the 4 run(s) to do can run: data: dataset "
                          f"folder {folder} not found") and len(err.splitlines()) == 1
    assert not out.exists()


def test_dry_run_reports_missing_weights_per_run(tmp_path, capsys, tiny_assets, no_network):
    absent = tmp_path / "ViT-B-16.pt"
    args = ["--datasets", "AGIQA", "--variants", "vit_b16_ep50", "--seeds", "1", "2",
            "--root", tiny_assets["root"], "--output", str(tmp_path / "sweep")]
    status, lines, err = dry_run_lines(capsys, args + ["--extra-opts", "MODEL.BACKBONE.NAME",
                                                       str(absent)])
    assert status == 2
    assert missing_lines(lines) == {
        f"weights: CLIP weights MODEL.BACKBONE.NAME {absent}: not an existing file "
        f"and not a model name ({', '.join(clip_weights.MODELS)})": 2}
    assert "none of the 2 run(s) to do can run: weights:" in err
    # A model name in neither cache, with both download hosts refusing connections.
    status, lines, err = dry_run_lines(capsys, args)  # the yaml's ViT-B/16
    missing = list(missing_lines(lines))
    assert status == 2 and list(missing_lines(lines).values()) == [2]
    assert missing[0].startswith(f"weights: CLIP weights ViT-B/16: ViT-B-16.pt is "
                                 f"not in {tmp_path / 'clip-cache'} nor in the Hugging Face "
                                 "cache, and no download host answers (127.0.0.1:")
    assert missing[0].count(f"127.0.0.1:{no_network.port}: ") == 2 and "refused" in missing[0]
    assert missing[0].endswith("; put it there, or pass --extra-opts MODEL.BACKBONE.NAME "
                               "path/to/ViT-B-16.pt")


def test_dry_run_with_data_and_a_weights_file_has_nothing_missing(tmp_path, capsys, monkeypatch,
                                                                  tiny_assets, no_network):
    args = ["--datasets", "AGIQA", "--variants", "vit_b16_ep50", "--root", tiny_assets["root"],
            "--output", str(tmp_path / "sweep")]
    status, lines, err = dry_run_lines(capsys, args + ["--extra-opts", "MODEL.BACKBONE.NAME",
                                                       tiny_assets["weights"]])
    assert status == 0 and err == ""
    assert not missing_lines(lines) and [row[2] for row in dry_run_table(lines)[0]] == ["ok"]
    # The same weights as a cached download of the model name (the hash must match).
    data = Path(tiny_assets["weights"]).read_bytes()
    monkeypatch.setitem(clip_weights.MODELS, "ViT-B/16", f"http://127.0.0.1:{no_network.port}/clip/"
                        f"models/{hashlib.sha256(data).hexdigest()}/ViT-B-16.pt")
    cache = tmp_path / "clip-cache"
    cache.mkdir()
    (cache / "ViT-B-16.pt").write_bytes(data)
    status, lines, err = dry_run_lines(capsys, args)
    assert status == 0 and err == ""
    assert not missing_lines(lines) and [row[2] for row in dry_run_table(lines)[0]] == ["ok"]


def test_dry_run_runs_what_has_its_inputs_and_names_the_rest(tmp_path, capsys, tiny_assets):
    # AGIQA's files are there, AGIQA-1K's are not: exit 1, the AGIQA-1K run listed as missing.
    args = ["--datasets", "AGIQA", "AGIQA1K", "--variants", "vit_b16_ep50",
            "--root", tiny_assets["root"], "--output", str(tmp_path / "sweep"),
            "--extra-opts", "MODEL.BACKBONE.NAME", tiny_assets["weights"]]
    status, lines, err = dry_run_lines(capsys, args)
    assert status == 1 and err == ""
    table, rest = dry_run_table(lines)
    assert table == [["AGIQA/vit_b16_ep50/paper/splitseed42/seed1", "new", "ok"],
                     ["AGIQA1K/vit_b16_ep50/paper/splitseed42/seed1", "new", "missing data"]]
    assert rest[-3] == ("1 of the 2 run(s) to do have their inputs; 1 miss some (listed "
                        "above) and would fail")


def test_dry_run_shows_a_database_notice_once(tmp_path, capsys, tiny_assets):
    """AGIQA-1K's duplicated-name notice is printed when its label file is read; the dry run
    reads it once per distinct data configuration (two of the three protocols differ) but
    shows the notice once."""
    labels = Path(__file__).resolve().parent / "data" / "agiqa1k" / "AIGC_MOS_Zscore.xlsx"
    make_synthetic_agiqa1k(tmp_path / "data", labels, n_images=12)  # keeps the duplicated row
    args = ["--datasets", "AGIQA1K", "--variants", "vit_b16_ep50", "--protocols", "paper",
            "val", "last", "--root", str(tmp_path / "data"), "--output", str(tmp_path / "sweep"),
            "--extra-opts", "MODEL.BACKBONE.NAME", tiny_assets["weights"]]
    status, lines, err = dry_run_lines(capsys, args)
    assert status == 0 and err == ""
    assert len([line for line in lines if "image name listed on several rows" in line]) == 1


# ----------------------------------------------------------------------------- status, tables
def test_run_status_done_resume_new(tmp_path):
    assert run_status(tmp_path / "absent") == "new"
    write_run(tmp_path / "done", results_json(0.5))
    assert run_status(tmp_path / "done") == "done"
    write_run(tmp_path / "eval", results_json(0.5, mode="eval_only"))
    broken = results_json(0.5)
    del broken["selected"]["metrics"]["krcc"]
    write_run(tmp_path / "broken", broken)
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "results.json").write_text("{not json")
    for name in ("eval", "broken", "garbled"):
        assert read_results(tmp_path / name) is None and run_status(tmp_path / name) == "new"
    (tmp_path / "cut" / "prompt_learner").mkdir(parents=True)
    (tmp_path / "cut" / "prompt_learner" / "checkpoint").write_text("model.pth.tar-3")
    assert run_status(tmp_path / "cut") == "resume"


def test_collect_only_builds_tables_from_results_json(tmp_path, capsys):
    out = tmp_path / "sweep"
    values = {("nctx4", 1): 0.80, ("nctx4", 2): 0.90, ("nctx8", 1): 0.60}  # nctx8 seed2 missing
    for (variant, seed), srcc in values.items():
        write_run(run_dir(out, variant, seed), results_json(srcc, plcc=srcc / 2))
    (run_dir(out, "nctx8", 2)).mkdir(parents=True)
    (run_dir(out, "nctx8", 2) / "log.txt").write_text("srcc 0.99 (a log is never read)\n")
    assert sweep.main(two_by_two(out) + ["--collect-only"]) == 1  # one run missing
    printed = capsys.readouterr().out
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4 and list(results["status"]) == ["done", "done", "done", "missing"]
    assert results["srcc"].tolist()[:3] == [0.8, 0.9, 0.6] and np.isnan(results["srcc"][3])
    assert results["last_srcc"].tolist()[:3] == [0.1] * 3
    assert (results["selected_epoch"][:3] == 3).all() and (results["last_epoch"][:3] == 5).all()
    assert results["output_dir"][0] == str(run_dir(out, "nctx4", 1))
    summary = pd.read_csv(out / "summary.csv").set_index("variant")
    assert summary.loc["nctx4", "n"] == 2 and summary.loc["nctx8", "n_missing"] == 1
    assert summary.loc["nctx4", "srcc_mean"] == pytest.approx(0.85)
    assert summary.loc["nctx4", "srcc_median"] == pytest.approx(0.85)
    assert summary.loc["nctx4", "srcc_std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert summary.loc["nctx4", "plcc_mean"] == pytest.approx(0.425)
    assert np.isnan(summary.loc["nctx8", "srcc_std"])  # one run: no spread
    assert "0.8500 (0.8500±0.0707)" in printed and "1 (+1 missing)" in printed
    assert (out / "boxplot.png").stat().st_size > 5000


def test_identity_conflict_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    target = run_dir(out, "nctx4", 1)
    target.mkdir(parents=True)
    (target / RUN_FILE).write_text(json.dumps({"seed": 1, "protocol": "val"}))
    assert sweep.main(two_by_two(out) + ["--collect-only"]) == 2
    assert "belongs to a different experiment" in capsys.readouterr().err
    with pytest.raises(SweepError, match="protocol: stored 'val', now 'paper'"):
        check_identity(target, {"seed": 1, "protocol": "paper"})


def test_identity_takes_two_spellings_of_one_weights_file_as_the_same(tmp_path, monkeypatch):
    """A sweep rerun with the weights file spelled another way (relative from another folder,
    absolute) is the same experiment; another file is not."""
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "tiny.pt").write_bytes(b"weights")
    (tmp_path / "w" / "other.pt").write_bytes(b"other")
    target = tmp_path / "run"
    target.mkdir()
    monkeypatch.chdir(tmp_path)
    stored = {"seed": 1, "opts": ["MODEL.BACKBONE.NAME", "w/tiny.pt", "OPTIM.LR", "0.1"]}
    (target / RUN_FILE).write_text(json.dumps(stored))
    check_identity(target, {"seed": 1, "opts": ["MODEL.BACKBONE.NAME",
                                                str(tmp_path / "w" / "tiny.pt"), "OPTIM.LR", "0.1"]})
    with pytest.raises(SweepError, match="different experiment"):
        check_identity(target, {"seed": 1, "opts": ["MODEL.BACKBONE.NAME", "w/other.pt",
                                                    "OPTIM.LR", "0.1"]})
    with pytest.raises(SweepError, match="different experiment"):
        check_identity(target, {"seed": 1, "opts": ["MODEL.BACKBONE.NAME", "w/tiny.pt",
                                                    "OPTIM.LR", "0.2"]})
    # New identities hold the absolute path, so the next rerun may come from any folder.
    spec = build_spec({}, {"datasets": ["AGIQA"], "variants": ["vit_b16_ep50"], "seeds": [1],
                           "output": str(tmp_path / "sweep"), "root": str(tmp_path),
                           "extra_opts": ["MODEL.BACKBONE.NAME", "w/tiny.pt"]})
    opts = spec.runs()[0].identity(spec.extra_opts)["opts"]
    assert opts[opts.index("MODEL.BACKBONE.NAME") + 1] == str(tmp_path / "w" / "tiny.pt")


# ----------------------------------------------------------------------------- execution
def test_sweep_skips_done_runs_and_resumes_interrupted_ones(tmp_path, fake_trainer, capsys):
    out = tmp_path / "sweep"
    write_run(run_dir(out, "nctx4", 1), results_json(0.123))  # finished earlier
    cut = run_dir(out, "nctx8", 2) / "prompt_learner"
    cut.mkdir(parents=True)
    (cut / "checkpoint").write_text("model.pth.tar-1")  # interrupted earlier
    args = two_by_two(out) + ["--extra-opts", "TRAINER.CLIP_AGIQA.PREC", "fp32"]
    assert sweep.main(args + ["--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert "4 run(s): 1 done, 1 to resume, 2 new" in text
    assert not (run_dir(out, "nctx4", 1) / "invocations.jsonl").exists()  # skipped
    record = json.loads((run_dir(out, "nctx8", 2) / "invocations.jsonl").read_text())
    assert record["resumed"] is True and record["seed"] == 2
    assert record["opts"]["TRAINER.CLIP_AGIQA.PREC"] == "fp32"
    assert record["opts"]["DATASET.SPLIT_SEED"] == "42"
    results = pd.read_csv(out / "results.csv")
    assert results["srcc"].tolist() == pytest.approx([0.123, 0.82, 0.81, 0.82])
    stored = json.loads((run_dir(out, "nctx8", 2) / RUN_FILE).read_text())
    assert stored["protocol"] == "paper" and stored["variant"] == "nctx8"
    # The finished run's data sources, as its results.json records them.
    assert stored["data"] == {"label_files": [{"path": "/data/labels.csv", "sha256": "a" * 64}],
                              "split_files": [], "split_mode": "random", "split_index": None}
    # Running again launches nothing, also with another number of data-loading workers...
    assert sweep.main(args + ["DATALOADER.NUM_WORKERS", "3"]) == 0
    assert "4 run(s): 4 done" in capsys.readouterr().out
    assert len((run_dir(out, "nctx4", 2) / "invocations.jsonl").read_text().splitlines()) == 1
    # ... but a setting that changes the experiment is refused instead of mixed in.
    assert sweep.main(args + ["OPTIM.LR", "0.1"]) == 2
    assert "OPTIM.LR" in capsys.readouterr().err


def test_status_and_collect_only_work_from_the_folder_alone(tmp_path, fake_trainer, capsys,
                                                             monkeypatch):
    """The sweep saves its plan when it starts; --status, --collect-only and a rerun then need
    only the folder (from any working directory, also after the folder was moved)."""
    out = tmp_path / "sweep"
    assert sweep.main(two_by_two(out) + ["--extra-opts", "TRAINER.CLIP_AGIQA.N_CTX", "8"]) == 0
    document = json.loads((out / PLAN_FILE).read_text())
    assert (document["format"], document["version"]) == ("clip-agiqa sweep plan", 1)
    assert [v["name"] for v in document["spec"]["variants"]] == ["nctx4", "nctx8"]
    assert document["spec"]["seeds"] == [1, 2] and "output" not in document["spec"]
    moved = tmp_path / "elsewhere" / "moved sweep"
    moved.parent.mkdir()
    (out / "results.csv").unlink()
    out.rename(moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    assert sweep.main(["--output", "moved sweep", "--status"]) == 0
    text = capsys.readouterr().out
    assert "4 run(s): 0 new, 0 queued, 0 running, 4 done, 0 failed" in text
    assert "AGIQA/nctx8/paper/splitseed42/seed2 | done" in text
    assert sweep.main(["--output", "moved sweep", "--collect-only"]) == 0
    results = pd.read_csv(moved / "results.csv")
    assert results["output_dir"].tolist() == [str(run_dir(moved, v, k)) for v in ("nctx4", "nctx8")
                                              for k in (1, 2)]
    assert sweep.main(["--output", "moved sweep"]) == 0  # a rerun: everything is done
    assert "4 run(s): 4 done" in capsys.readouterr().out
    # A folder without a plan: the command says what it needs.
    assert sweep.main(["--output", str(tmp_path / "empty"), "--status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sweep: error: {tmp_path / 'empty' / PLAN_FILE} not found")
    assert len(err.splitlines()) == 1


def test_a_sweep_that_leaves_out_or_changes_saved_runs_is_refused(tmp_path, fake_trainer,
                                                                  capsys):
    """Another sweep in a folder is refused naming the difference; adding runs extends the
    saved sweep; --replan makes the command's sweep the folder's."""
    out = tmp_path / "sweep"
    assert sweep.main(two_by_two(out)) == 0
    capsys.readouterr()
    fewer = two_by_two(out)
    fewer[fewer.index("--seeds") + 1:fewer.index("--seeds") + 3] = ["1"]
    for argv, difference in [
            (fewer, "seeds: saved [1, 2], now [1]"),
            (two_by_two(out) + ["--protocol", "val"], 'protocols: saved ["configs/protocols/'
                                                       'paper.yaml"], now ["configs/protocols/'
                                                       'val.yaml"]'),
            (two_by_two(out) + ["--extra-opts", "OPTIM.LR", "0.1"],
             'extra_opts: saved [], now ["OPTIM.LR", "0.1"]')]:
        for mode in ([], ["--status"], ["--collect-only"], ["--dry-run"]):
            assert sweep.main(argv + mode) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"sweep: error: {out} holds another sweep") and \
                difference in err and "--replan" in err and len(err.splitlines()) == 1, err
    # More seeds and another protocol: the saved sweep grows, its runs are kept.
    more = two_by_two(out) + ["--protocol", "paper", "val"]
    more[more.index("--seeds") + 1:more.index("--seeds") + 3] = ["1", "2", "3"]
    assert sweep.main(more) == 0
    assert "12 run(s): 4 done, 0 to resume, 8 new" in capsys.readouterr().out
    assert len(pd.read_csv(out / "results.csv")) == 12
    assert json.loads((out / PLAN_FILE).read_text())["spec"]["seeds"] == [1, 2, 3]
    # --replan: the folder's sweep is now the one of this command.
    assert sweep.main(fewer + ["--replan"]) == 0
    assert json.loads((out / PLAN_FILE).read_text())["spec"]["seeds"] == [1]
    assert len(pd.read_csv(out / "results.csv")) == 2


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot be read as a sweep plan"),
    ('{"format": "something else"}', "is not a sweep plan"),
    ('{"format": "clip-agiqa sweep plan", "version": 99, "spec": {}}',
     "is a sweep plan of version 99; this code reads version 1"),
])
def test_an_unreadable_plan_is_one_error_line(content, message, tmp_path, capsys):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / PLAN_FILE).write_text(content)
    assert sweep.main(["--output", str(tmp_path / "sweep"), "--status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sweep: error: {tmp_path / 'sweep' / PLAN_FILE} ") and message in err
    assert len(err.splitlines()) == 1


def test_execute_uses_one_slot_per_gpu_and_survives_failures(tmp_path):
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAINER)
    jobs = []
    for i in range(4):
        out = tmp_path / f"run{i}"
        argv = [sys.executable, str(fake), "--seed", str(i), "--output-dir", str(out),
                "TEST.FINAL_MODEL", "best_val"] + (["--fail"] if i == 1 else [])
        jobs.append(Job(f"run{i}", tuple(argv), out, {"i": i}))
    messages = []
    outcome = execute(jobs, device_slots(["3", "5"]), echo=messages.append, poll_s=0.05)
    assert outcome == {"run0": True, "run1": False, "run2": True, "run3": True}
    gpus = {json.loads((tmp_path / f"run{i}" / "invocations.jsonl").read_text())["cuda"]
            for i in (0, 2, 3)}
    assert gpus <= {"3", "5"} and len(gpus) == 2
    failed = [m for m in messages if m.startswith("FAILED run1")]
    assert failed and "exit code 3" in failed[0] and "boom: deliberate failure" in failed[0]
    assert json.loads((tmp_path / "run1" / RUN_FILE).read_text()) == {"i": 1}


@pytest.mark.parametrize("how", ["exit 130", "killed by SIGINT"])
def test_an_interrupted_run_stops_the_sweep(how, tmp_path, capsys):
    """Ctrl-C that reaches the run but not the sweep (SIGINT ignored there, as in a background
    job) ends the run with status 130 or kills it: no further run starts, and the sweep says how
    to resume."""
    script = tmp_path / "interrupted.py"
    script.write_text("import os, signal, sys\n"
                      + ("sys.exit(130)\n" if how == "exit 130"
                         else "os.kill(os.getpid(), signal.SIGINT)\n"
                         "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
                         "os.kill(os.getpid(), signal.SIGINT)\n"))
    fake = tmp_path / "fake_train.py"
    fake.write_text(FAKE_TRAINER)
    first = Job("seed1", (sys.executable, str(script)), tmp_path / "seed1", {"i": 1})
    (tmp_path / "seed1").mkdir()
    out = tmp_path / "seed2"
    second = Job("seed2", (sys.executable, str(fake), "--seed", "2", "--output-dir", str(out),
                           "TEST.FINAL_MODEL", "best_val"), out, {"i": 2})
    messages = []
    with pytest.raises(KeyboardInterrupt):
        execute([first, second], device_slots([]), echo=messages.append, poll_s=0.05)
    assert not (out / "invocations.jsonl").exists()  # seed2 never started
    assert [m for m in messages if m.startswith("interrupted seed1")], messages
    assert "run the same command again to resume" in capsys.readouterr().err


def test_sweep_exits_130_after_an_interrupted_run(tmp_path, fake_trainer, monkeypatch, capsys):
    """`sweep.py --seeds 1 2` (local executor), Ctrl-C during seed 1: seed 2 does not start,
    the sweep exits 130 and says how to resume."""
    wrapper = tmp_path / "interrupted_seed1.py"
    wrapper.write_text("import runpy, sys\n"
                       "if sys.argv[sys.argv.index('--seed') + 1] == '1':\n"
                       "    sys.exit(130)\n"
                       f"runpy.run_path({str(fake_trainer)!r}, run_name='__main__')\n")
    monkeypatch.setattr(sweep, "TRAIN_SCRIPT", wrapper)
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA", "--variants", "nctx4=vit_b16_ep50", "--seeds", "1", "2",
            "--output", str(out), "--root", str(out / "data"), "--jobs", "1"]
    assert sweep.main(args) == 130
    captured = capsys.readouterr()
    assert "interrupted AGIQA" in captured.out and "stopping the sweep" in captured.out
    assert "run the same command again to resume" in captured.err
    assert not (run_dir(out, "nctx4", 2) / "invocations.jsonl").exists()
    assert not (out / "results.csv").exists()


def test_visible_gpus_and_slots():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 5"}) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]
    assert visible_gpus({}, count=lambda: 3) == ["0", "1", "2"]
    assert device_slots([]) == [None]
    assert device_slots(["0", "1"]) == ["0", "1"]
    assert device_slots(["0", "1"], jobs=3) == ["0", "1", "0"]
    assert device_slots([], jobs=2) == [None, None]
    with pytest.raises(SweepError, match="at least 1"):
        device_slots([], jobs=0)


# ----------------------------------------------------------------------------- real train.py
@pytest.mark.slow
def test_real_sweep_end_to_end(tmp_path, capsys):
    """2 variants x 1 seed of the real train.py: tiny random CLIP, 20 synthetic images."""
    make_synthetic_agiqa(tmp_path / "data", n_images=20, sizes=((32, 32),))
    weights = save_random_weights(tmp_path / "tiny.pt", "tiny-vit")
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA", "--variants", "nctx2=vit_b16_ep50", "nctx4=vit_b16_ep50",
            "--seeds", "1", "--root", str(tmp_path / "data"), "--output", str(out),
            "--jobs", "2", "--extra-opts", "MODEL.BACKBONE.NAME", str(weights),
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATALOADER.TEST.BATCH_SIZE", "8",
            "TRAINER.CLIP_AGIQA.PREC", "fp32", "INPUT.TRANSFORMS", "('normalize',)"]
    assert sweep.main(args) == 0
    capsys.readouterr()
    results = pd.read_csv(out / "results.csv")
    assert list(results["variant"]) == ["nctx2", "nctx4"]
    assert (results["status"] == "done").all() and results["rmse"].notna().all()
    assert (results["selected_on"] == "test").all() and (results["last_epoch"] == 1).all()
    for variant in ("nctx2", "nctx4"):
        folder = run_dir(out, variant, 1)
        stored = json.loads((folder / "results.json").read_text())
        assert results.set_index("variant").loc[variant, "rmse"] == pytest.approx(
            stored["selected"]["metrics"]["rmse"])
        assert pd.read_csv(folder / "predictions.csv").shape == (4, 3)
    # Where the labels came from: the label file's path and SHA-256, per run.
    import hashlib
    label_file = tmp_path / "data" / "AGIQA-3K" / "data.csv"
    digest = hashlib.sha256(label_file.read_bytes()).hexdigest()
    assert (results["label_files"] == f"{label_file.resolve()}@{digest}").all()
    for variant in ("nctx2", "nctx4"):
        data = json.loads((run_dir(out, variant, 1) / RUN_FILE).read_text())["data"]
        assert data["label_files"] == [{"path": str(label_file.resolve()), "sha256": digest}]
        assert data["split_mode"] == "random" and data["split_index"] is None
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["n"]) == [1, 1] and (out / "boxplot.png").is_file()
    assert sweep.main(args) == 0  # everything done: skipped
    assert "2 run(s): 2 done" in capsys.readouterr().out


# ----------------------------------------------------------------------------- split files, cross
def test_split_indices_plan_one_run_per_split_folder(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA1K", "--variants", "vit_b16_ep50", "--split-indices", "1", "2",
            "--output", str(out), "--root", str(tmp_path), "--extra-opts",
            "DATASET.SPLIT_FILE", "peer_splits", "--dry-run"]
    assert sweep.main(args) == 2  # no AGIQA-1K under tmp_path: the plan is shown, nothing can run
    text = capsys.readouterr().out
    assert [row[0] for row in dry_run_table(text.splitlines())[0]] == [
        f"AGIQA1K/vit_b16_ep50/paper/split{k}/seed1" for k in (1, 2)]
    assert "DATASET.SPLIT_INDEX 1 DATASET.SPLIT_FILE peer_splits" in text  # the first command
    spec = build_spec({}, {"datasets": ["AGIQA1K"], "variants": ["vit_b16_ep50"],
                           "split_indices": [3]})
    run = spec.runs()[0]
    assert run.output_dir.parts[-2:] == ("split3", "seed1") and run.identity()["split_index"] == 3
    with pytest.raises(SweepError, match="split seeds or split indices, not both"):
        build_spec({}, {"datasets": ["AGIQA1K"], "variants": ["vit_b16_ep50"],
                        "split_indices": [1], "split_seeds": [1, 2]})
    with pytest.raises(SweepError, match="set by the sweep"):
        build_spec({}, {"datasets": ["AGIQA1K"], "variants": ["vit_b16_ep50"],
                        "extra_opts": ["DATASET.SPLIT_INDEX", "1"]})


def test_split_index_runs_record_their_split_files(tmp_path, fake_trainer, capsys):
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA1K", "--variants", "vit_b16_ep50", "--split-indices", "1", "2",
            "--output", str(out), "--root", str(tmp_path), "--extra-opts",
            "DATASET.SPLIT_FILE", "peer"]
    assert sweep.main(args) == 0
    for k in (1, 2):
        folder = out / "AGIQA1K" / "vit_b16_ep50" / "paper" / f"split{k}" / "seed1"
        stored = json.loads((folder / RUN_FILE).read_text())
        assert stored["split_index"] == k  # the identity
        assert stored["data"]["split_mode"] == "file" and stored["data"]["split_index"] == k
        assert stored["data"]["split_files"] == [
            {"path": f"/data/peer/{k}/train.csv", "sha256": str(k) * 64}]
    assert sweep.main(args) == 0  # the recorded data is no part of the identity
    assert "2 run(s): 2 done" in capsys.readouterr().out


def test_cross_sweep_builds_the_a_by_b_table(tmp_path, fake_trainer, capsys):
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA", "AGIQA1K", "AIGCIQA2023", "--variants", "nctx4=vit_b16_ep50",
            "--output", str(out), "--root", str(tmp_path / "data"), "--cross"]
    assert sweep.main(args) == 0
    printed = capsys.readouterr().out
    assert "3 run(s)" in printed and "+ 6 cross-database evaluation(s), 6 to run" in printed
    cross = pd.read_csv(out / "cross.csv")
    assert len(cross) == 9 and (cross["status"] == "done").all()
    cell = cross.set_index(["train_dataset", "test_dataset"])
    for a in ("AGIQA", "AGIQA1K", "AIGCIQA2023"):
        assert cell.loc[(a, a), "srcc"] == pytest.approx(0.81)  # the run's own test split
        for b in {"AGIQA", "AGIQA1K", "AIGCIQA2023"} - {a}:
            assert cell.loc[(a, b), "srcc"] == pytest.approx(0.3)
            run = out / a / "nctx4" / "paper" / "splitseed42" / "seed1"
            argv = json.loads((run / "eval" / b / "invocations.jsonl").read_text())["argv"]
            assert argv[:3] == ["--eval-only", "--model-dir", str(run)]
            assert argv[-2:] == ["DATASET.SPLIT_MODE", "all"] and "--config-file" not in argv
    # RMSE only where the MOS scales agree (0..5 vs 27..74 do not).
    assert cell.loc[("AGIQA", "AGIQA1K"), "rmse"] == pytest.approx(2.0)
    assert np.isnan(cell.loc[("AGIQA", "AIGCIQA2023"), "rmse"])
    assert np.isnan(cell.loc[("AIGCIQA2023", "AGIQA1K"), "rmse"])
    assert cell.loc[("AIGCIQA2023", "AIGCIQA2023"), "rmse"] == pytest.approx(0.19)
    assert "0.8100 / 0.8100 / 0.1900" in printed and "0.3000 / 0.3500 / 2.0000" in printed
    assert "RMSE only where the MOS scales agree" in printed
    summary = pd.read_csv(out / "cross_summary.csv")
    assert len(summary) == 9 and (summary["n"] == 1).all()
    assert sweep.main(args) == 0  # nothing left to run
    printed = capsys.readouterr().out
    assert "3 done, 0 to resume, 0 new" in printed and "0 to run" in printed


# ----------------------------------------------------------------------------- the ablation sweep
ABLATION_SPEC = REPO / "configs" / "sweeps" / "ablations.yaml"


def test_ablation_sweep_tabulates_median_srcc_plcc_per_variant(tmp_path, capsys):
    """`python scripts/sweep.py configs/sweeps/ablations.yaml`: every yaml of configs/ablations
    on each database it applies to, one summary row per dataset x variant with the median
    SRCC/PLCC over the seeds (the runs' results.json written here; the real train.py under the
    same rules: `test_real_ablation_sweep_with_a_tiny_clip`). Seeds 1, 2, 10 with SRCC = PLCC =
    0.8 + 0.01 x seed make the median (0.82) differ from the mean."""
    from scripts.sweeps.spec import applies_to

    out = tmp_path / "sweep"
    args = [str(ABLATION_SPEC), "--output", str(out), "--root", str(tmp_path / "data"),
            "--seeds", "1", "2", "10"]
    spec = build_spec(load_spec_file(ABLATION_SPEC), {"output": str(out), "seeds": [1, 2, 10]})
    for run in spec.runs():
        srcc = 0.8 + 0.01 * run.seed
        write_run(run.output_dir, results_json(srcc, plcc=srcc))
    assert sweep.main(args + ["--collect-only"]) == 0
    printed = capsys.readouterr().out
    pairs = [(d.name, v.name) for d in spec.datasets for v in spec.variants if applies_to(v, d)]
    ablations = {p.stem for p in (REPO / "configs" / "ablations").glob("*.yaml")}
    assert {v for _, v in pairs} == ablations and len(pairs) == 2 * len(ablations) - 5
    summary = pd.read_csv(out / "summary.csv")
    assert list(zip(summary["dataset"], summary["variant"])) == pairs
    assert (summary["n"] == 3).all()
    assert np.allclose(summary["srcc_median"], 0.82) and np.allclose(summary["plcc_median"], 0.82)
    assert np.allclose(summary["srcc_mean"], (0.81 + 0.82 + 0.90) / 3)
    assert ("AIGCIQA2023", "levels5_agiqa") not in pairs and "AIGCIQA2023/levels5_agiqa" in printed
    row = next(x for x in printed.splitlines() if "| levels5_aigciqa2023 " in x)
    assert row.split("|")[1].strip() == "AIGCIQA2023" and "0.8200 (0.8433±" in row


@pytest.mark.slow
def test_real_ablation_sweep_with_a_tiny_clip(tmp_path, capsys):
    """The real train.py under the ablation sweep's rules: three ablation yamls (one named for
    the other database, so left out) x three seeds on a synthetic AGIQA-3K with a tiny random
    CLIP; summary.csv holds the median SRCC/PLCC of each variant's runs."""
    import shutil

    folder = tmp_path / "ablations"
    folder.mkdir()
    for name in ("head_similarity", "levels5_agiqa", "levels5_aigciqa2023"):
        shutil.copy(REPO / "configs" / "ablations" / f"{name}.yaml", folder)
    base = tmp_path / "trainers" / "CLIP_AGIQA"  # their _BASE_, beside them as in configs/
    base.mkdir(parents=True)
    shutil.copy(REPO / "configs" / "trainers" / "CLIP_AGIQA" / "vit_b16_ep100.yaml", base)
    make_synthetic_agiqa(tmp_path / "data", n_images=20, sizes=((32, 32),))
    weights = save_random_weights(tmp_path / "tiny.pt", "tiny-vit")
    out = tmp_path / "sweep"
    args = ["--datasets", "AGIQA", "--variants", str(folder), "--seeds", "1", "2", "3",
            "--root", str(tmp_path / "data"), "--output", str(out), "--jobs", "2",
            "--extra-opts", "MODEL.BACKBONE.NAME", str(weights), "OPTIM.MAX_EPOCH", "2",
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "DATALOADER.TEST.BATCH_SIZE", "8", "TRAINER.CLIP_AGIQA.PREC", "fp32",
            "INPUT.TRANSFORMS", "('normalize',)"]
    assert sweep.main(args) == 0
    printed = capsys.readouterr().out
    assert "AGIQA/levels5_aigciqa2023" in printed  # left out: thresholds on another MOS scale
    results = pd.read_csv(out / "results.csv")
    assert (results["status"] == "done").all() and len(results) == 6
    assert results.groupby("variant")["srcc"].nunique().max() > 1  # seeds differ
    summary = pd.read_csv(out / "summary.csv").set_index("variant")
    assert list(summary.index) == ["head_similarity", "levels5_agiqa"]
    medians = results.groupby("variant")[["srcc", "plcc"]].median()
    for variant in summary.index:
        assert summary.loc[variant, "n"] == 3
        for metric in ("srcc", "plcc"):
            assert summary.loc[variant, f"{metric}_median"] == pytest.approx(
                medians.loc[variant, metric])


def test_variants_name_ablations_and_a_sweep_left_without_runs_is_an_error(tmp_path, capsys):
    # --variants takes an ablation's name as main.sh's CFG does (configs/ablations/).
    spec = build_spec({}, {"datasets": ["AIGCIQA2023"], "variants": ["levels2_aigciqa2023"],
                           "output": str(tmp_path / "out")})
    assert spec.variants[0].config == REPO / "configs/ablations/levels2_aigciqa2023.yaml"
    assert len(spec.runs()) == 1
    # The method folder comes first, as with main.sh.
    spec = build_spec({}, {"datasets": ["AGIQA"], "variants": ["vit_b16_ep100"]})
    assert spec.variants[0].config == REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"
    # Every pair left out: nothing would run, which is an error, not success.
    status = sweep.main(["--datasets", "AGIQA", "--variants", "levels2_aigciqa2023",
                         "--output", str(tmp_path / "out"), "--dry-run"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("sweep: error: nothing to run: every dataset x variant pair is left "
                          "out because the variant is named for another database "
                          "(AGIQA/levels2_aigciqa2023)")
    assert not (tmp_path / "out").exists()
