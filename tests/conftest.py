"""Shared fixtures: a tiny synthetic AGIQA-3K, tiny random CLIP weights and train.py arguments.

`tiny_assets` (session): 40 synthetic 48x48 AGIQA-3K images under `data/` and a "tiny-vit" CLIP
state dict, made once per session. `tiny_args(out, *opts, epochs=1)` builds a train.py argument
list for a CPU run that finishes in seconds (batch 4, N_CTX 4, no loader workers).
"""
from __future__ import annotations

import json
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.constants
import pytest

from clip import weights as clip_weights
from clip.random_weights import save_random_weights
from datasets import fetch
from datasets.registry import DATABASES
from datasets.synthetic import make_synthetic_agiqa
from label_files import write_aigciqa2023_mos

REPO = Path(__file__).resolve().parents[1]
AGIQA_YAML = str(REPO / "configs/datasets/AGIQA.yaml")
METHOD_YAML = str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")
TINY_IMAGES = 40


def refused_port() -> int:
    """A 127.0.0.1 port that refuses connections (bound once, then closed)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture(scope="session", autouse=True)
def no_database_downloads(tmp_path_factory):
    """No test downloads a database from the internet: a dataset built under a root without its
    folder would fetch it (``DATASET.FETCH``), so every source points at a refusing 127.0.0.1
    port (a manifest override, inherited by subprocesses; the fetch tests replace it)."""
    port = refused_port()
    path = tmp_path_factory.mktemp("fetch") / "manifest.json"
    path.write_text(json.dumps({s.name: {"url": f"http://127.0.0.1:{port}/{s.name}"}
                                for db in DATABASES.values() for s in db.sources
                                if not s.bundled}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fetch.MANIFEST_ENV, str(path))
        yield path


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict:
    """``{"root": DATASET.ROOT, "weights": tiny CLIP file}``; treat both as read-only."""
    base = tmp_path_factory.mktemp("tiny_assets")
    make_synthetic_agiqa(base / "data", n_images=TINY_IMAGES, sizes=((48, 48),))
    weights = save_random_weights(base / "tiny-vit.pt", "tiny-vit")
    return {"root": str(base / "data"), "weights": str(weights)}


@pytest.fixture(scope="session")
def aigciqa2023_mos(tmp_path_factory) -> Path:
    """A read-only folder with AIGCIQA2023's ``mosz1.mat`` and ``mosz2.mat``: the real files
    when ``tests/data/aigciqa2023/`` has them, same-shape stand-ins otherwise."""
    return write_aigciqa2023_mos(tmp_path_factory.mktemp("aigciqa2023_mos"))


@pytest.fixture
def tiny_data(tiny_assets, tmp_path) -> Path:
    """A private, writable copy of the tiny dataset root (for tests that damage it)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_assets["root"], root)
    return root


@pytest.fixture(scope="session")
def tiny_args(tiny_assets):
    """Factory: ``tiny_args(out, *opts, flags=(), root=None, epochs=1, weights=None,
    dataset_yaml=AGIQA_YAML) -> list[str]``; ``flags`` (e.g. ``["--eval-only"]``) go before
    the ``KEY VALUE`` opts, which end the command line."""

    def build(out, *opts: str, flags=(), root=None, epochs: int = 1, weights=None,
              dataset_yaml: str = AGIQA_YAML) -> list[str]:
        return ["--root", str(root or tiny_assets["root"]), "--seed", "0",
                "--trainer", "CLIP_AGIQA", "--dataset-config-file", dataset_yaml,
                "--config-file", METHOD_YAML, "--output-dir", str(out), *flags,
                "MODEL.BACKBONE.NAME", str(weights or tiny_assets["weights"]),
                "OPTIM.MAX_EPOCH", str(epochs), "DATALOADER.NUM_WORKERS", "0",
                "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATALOADER.TEST.BATCH_SIZE", "16",
                "TRAINER.CLIP_AGIQA.N_CTX", "4", *opts]

    return build


@pytest.fixture(scope="session")
def trained_run(tiny_args, tmp_path_factory) -> Path:
    """A finished 1-epoch tiny run (`tiny_args` defaults), made once per session; read-only:
    score from it, copy it to change it."""
    import train

    out = tmp_path_factory.mktemp("trained_run") / "run"
    train.main(tiny_args(out, epochs=1))
    return out


@pytest.fixture
def user_error(capsys):
    """``user_error(argv) -> str``: run ``train.main(argv)``, require the clean bad-input exit
    (``SystemExit(2)``, one ``error:`` message, no traceback) and return the message."""
    import train

    def run(argv: list[str]) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            train.main(argv)
        err = capsys.readouterr().err
        assert info.value.code == 2, err
        assert "Traceback" not in err
        assert sum(line.startswith("error: ") for line in err.splitlines()) == 1, err
        return err[err.index("\nerror: " if not err.startswith("error: ") else "error: "):] \
            .strip()[len("error: "):]

    return run


def file_state(paths) -> dict:
    """``{path: (bytes, mtime_ns)}``: equal before and after means "not written over"."""
    return {str(p): (Path(p).read_bytes(), Path(p).stat().st_mtime_ns) for p in paths}


@pytest.fixture
def sentinel():
    """``sentinel(out) -> check()``: put a previous run's results and checkpoint into ``out``;
    ``check()`` asserts that neither was modified."""

    def make(out) -> callable:
        out = Path(out)
        (out / "prompt_learner").mkdir(parents=True, exist_ok=True)
        files = [out / "predictions.csv", out / "prompt_learner" / "model.pth.tar-1"]
        files[0].write_text("name,mos,pred\nold.jpg,1.0,2.0\n")
        files[1].write_bytes(bytes(range(256)))
        before = file_state(files)
        return lambda: file_state(files) == before

    return make


def pytest_collection_modifyitems(config, items) -> None:
    """Skip tests marked `cuda` (selected with `pytest -m cuda`) where no GPU is visible."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@dataclass(frozen=True)
class Offline:
    """What the ``no_network`` fixture set up: the refusing port and the empty CLIP cache."""
    port: int
    cache: Path


@pytest.fixture
def no_network(tmp_path, monkeypatch) -> Offline:
    """Empty CLIP and Hugging Face caches; ViT-B/16's OpenAI URL and the Hugging Face mirror point
    at a 127.0.0.1 port that refuses connections (bound once, then closed)."""
    port = refused_port()
    cache = tmp_path / "clip-cache"
    monkeypatch.setenv(clip_weights.CACHE_ENV, str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setitem(clip_weights.MODELS, "ViT-B/16",
                        f"http://127.0.0.1:{port}/clip/models/{'5' * 64}/ViT-B-16.pt")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    return Offline(port=port, cache=cache)
