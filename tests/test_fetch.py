"""python -m datasets.fetch and the fetch of an absent database by train.py / main.sh, against a
local HTTP server (tests/fetch_server.py) serving small archives in the real layouts, named by
a manifest override. No test reaches the internet: the offline test counts the connection
attempts of the real URLs instead."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dassl.config import get_cfg_default, merge_config
from dassl.data.datasets import DATASET_REGISTRY
from datasets import add_dataset_config, fetch
from datasets.aigciqa2023 import load_aigciqa2023
from datasets.errors import MissingDataError
from datasets.labels import sha256_file
from datasets.registry import DATABASES, PRODUCT_DATA, hub_url
from fetch_server import (AGIQA3K_CSV, LocalServer, agiqa_files, aigciqa2023_files, folder_members,
                          manifest, requests_for, write_manifest, zip_bytes)
from label_files import dataset_options
from synthetic_databases import write_placeholder_images

REPO = Path(__file__).resolve().parents[1]
HEX64 = re.compile(r"^[0-9a-f]{64}$")
REVISION = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The server with small AGIQA-3K and AIGCIQA2023 archives."""
    work = tmp_path_factory.mktemp("served")
    with LocalServer({**agiqa_files(work), **aigciqa2023_files(work)}) as server:
        yield server


@pytest.fixture
def use(served, tmp_path, monkeypatch):
    """``use(modes=None, replace=None, names=None)``: point the manifest at the server (with
    ``/<mode>/`` per file, ``replace[name]`` updating an entry, only the files ``names`` when
    given); returns the (empty) root."""
    served.requests.clear()
    served.dropped.clear()
    root = tmp_path / "data"
    root.mkdir()

    def apply(modes=None, replace=None, names=None):
        entries = manifest(served, modes)
        for name, values in (replace or {}).items():
            entries.setdefault(name, {}).update(values)
        if names is not None:
            entries = {name: entries[name] for name in names}
        path = write_manifest(tmp_path / "manifest.json", entries)
        monkeypatch.setenv(fetch.MANIFEST_ENV, str(path))
        return root
    return apply


def run(capsys, *argv) -> tuple[int, str, str]:
    code = fetch.main([*argv, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def one_error(err: str) -> str:
    """The single ``error:`` line of stderr."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def left_behind(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------------------- real sources
def test_real_sources_have_the_published_form(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv(fetch.MANIFEST_ENV, raising=False)
    sources = {s.name: s for db in DATABASES.values() for s in db.sources}
    # Issue 23's facts, as published.
    assert {n: s.size for n, s in sources.items()} == {
        "AGIQA-3K.zip": 97_950_738, "data.csv": 445_544, "AIGCIQA2023.zip": 889_119_660,
        "AIGCIQA2023_DATA.zip": 4_941_678}
    for name, source in sources.items():
        assert HEX64.match(source.sha256), name
        if source.bundled:
            assert (PRODUCT_DATA / source.bundled).stat().st_size == source.size
            assert sha256_file(PRODUCT_DATA / source.bundled) == source.sha256
            continue
        repo, revision, path = source.hub
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", repo) and REVISION.match(revision)
        assert source.location() == (f"https://huggingface.co/datasets/{repo}/resolve/"
                                     f"{revision}/{path}")
        assert path == name and source.unpack and path.endswith(".zip")
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com/")
    assert hub_url("a/b", "0" * 40, "f.zip") == \
        f"https://hf-mirror.com/datasets/a/b/resolve/{'0' * 40}/f.zip"
    assert {db.name for db in DATABASES.values() if not db.sources} == {"AGIQA1K", "AIGIQA20K"}


def test_list_is_offline_and_names_sizes_sources_licences(capsys, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("--list opened a connection")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.delenv(fetch.MANIFEST_ENV, raising=False)
    code, out, _ = run(capsys, "--list")
    assert code == 0
    for db in DATABASES.values():
        assert db.title in out and f"licence {db.licence}" in out
        for source in db.sources:
            assert f"{source.size:,} bytes" in out and source.sha256 in out
    assert out.count("no verified source is known") == 2


def test_the_documented_command_runs_without_a_runpy_warning():
    """`python -m datasets.fetch` as a user types it: nothing on stderr (no "found in sys.modules"
    warning from a copy of the module the package imported before runpy runs it)."""
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "datasets.fetch",
                           "--list"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# ---------------------------------------------------------------------------- fetching
def test_fetch_resumes_a_dropped_download_and_checks_the_result(use, served, capsys):
    root = use({"AGIQA-3K.zip": "drop"})
    code, _, err = run(capsys, "AGIQA_alignment", "--root", str(root))
    assert code == 2 and "run the same command again to resume" in one_error(err)
    part = root / fetch.STAGING / "AGIQA-3K.zip.part"
    size = len(served.files["AGIQA-3K.zip"])
    assert part.stat().st_size == size // 2 and not (root / "AGIQA-3K").exists()
    code, out, _ = run(capsys, "AGIQA", "--root", str(root))
    assert code == 0 and "40 labelled images" in out
    assert [r[1] for r in requests_for(served, "AGIQA-3K.zip")] == [None, f"bytes={size // 2}-"]
    assert left_behind(root)[:2] == ["AGIQA-3K", "AGIQA-3K/AttnGAN_normal_000.jpg"]
    assert not (root / fetch.STAGING).exists()
    assert (root / "AGIQA-3K" / "data.csv").read_bytes() == served.files["data.csv"]


def test_a_partial_download_the_server_cannot_continue_is_removed(use, served, capsys):
    data = served.files["AGIQA-3K.zip"]
    root = use(replace={"AGIQA-3K.zip": {"size": len(data) + 10}})
    part = root / fetch.STAGING / "AGIQA-3K.zip.part"
    part.parent.mkdir()
    part.write_bytes(data)  # a whole other file where a part of this one was expected
    code, _, err = run(capsys, "AGIQA", "--root", str(root))
    assert code == 2 and "(HTTP 416); the partial download was removed" in one_error(err)
    assert left_behind(root) == []


def test_fetch_of_aigciqa2023_gives_all_three_tasks(use, capsys):
    root = use()
    code, out, _ = run(capsys, "AIGCIQA2023", "--root", str(root))
    assert code == 0 and "no licence is stated" in out
    for task in ("quality", "authenticity", "correspondence"):
        data = load_aigciqa2023(dataset_options(root, TASK=task))
        assert sum(len(part) for part in data.parts.values()) == 24
    assert (root / "AIGCIQA2023" / "DATA" / "MOS" / "mosz3.mat").is_file()


def test_the_shipped_agiqa_labels_are_copied_not_downloaded(use, served, capsys, tmp_path):
    """With the real data.csv (no override), the archive must hold all 2,982 images."""
    images = tmp_path / "all"
    write_placeholder_images(images, pd.read_csv(AGIQA3K_CSV)["name"].tolist())
    served.files["AGIQA-3K-full.zip"] = zip_bytes(folder_members(images, "AGIQA-3K/"))
    try:
        full = manifest(served)["AGIQA-3K-full.zip"]
        root = use(replace={"AGIQA-3K.zip": full}, names=["AGIQA-3K.zip"])
        code, out, _ = run(capsys, "AGIQA", "--root", str(root))
    finally:
        del served.files["AGIQA-3K-full.zip"]
    assert code == 0 and "shipped with this repository" in out and "2,982 labelled" in out
    assert not list(requests_for(served, "data.csv"))
    assert (root / "AGIQA-3K" / "data.csv").read_bytes() == AGIQA3K_CSV.read_bytes()


# ---------------------------------------------------------------------------- bad input
def _corrupt(data: bytes) -> bytes:
    return data[:len(data) - 30]  # the central directory's end is cut off


BAD = {  # case -> (use() arguments, the error)
    "sha256": (dict(replace={"AGIQA-3K.zip": {"sha256": "0" * 64}}),
               "has SHA-256 [0-9a-f]{64}, expected 0{64}; the download was removed"),
    "size": (dict(replace={"AGIQA-3K.zip": {"size": 1000}}), "sent more than the 1,000 bytes"),
    "html": (dict(modes={"AGIQA-3K.zip": "html"}), "answered with an HTML page"),
    "404": (dict(modes={"AGIQA-3K.zip": "missing"}), "answered HTTP 404 .* --from FILE"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_download_is_one_error_and_leaves_nothing(case, use, capsys):
    options, message = BAD[case]
    root = use(**options)
    code, _, err = run(capsys, "AGIQA", "--root", str(root))
    assert code == 2 and re.search(message, one_error(err))
    assert left_behind(root) == []


@pytest.mark.parametrize("case", ["corrupt", "outside", "absolute", "link"])
def test_a_bad_archive_is_refused_before_anything_lands(case, use, served, capsys, tmp_path):
    good = served.files["AGIQA-3K.zip"]
    data = {"corrupt": lambda: _corrupt(good),
            "outside": lambda: zip_bytes({"AGIQA-3K/a.jpg": b"x", "../evil.jpg": b"x"}),
            "absolute": lambda: zip_bytes({"/tmp/evil.jpg": b"x"}),
            "link": lambda: zip_bytes({"AGIQA-3K/a.jpg": b"/etc/passwd"},
                                      links=["AGIQA-3K/a.jpg"])}[case]()
    served.files["bad.zip"] = data
    try:
        root = use(replace={"AGIQA-3K.zip": {"url": served.url("bad.zip"), "size": len(data),
                                             "sha256": hashlib.sha256(data).hexdigest()}})
        code, _, err = run(capsys, "AGIQA", "--root", str(root))
    finally:
        del served.files["bad.zip"]
    expected = {"corrupt": "truncated or corrupt", "outside": "outside its folder",
                "absolute": "outside its folder", "link": "holds a link"}[case]
    assert code == 2 and expected in one_error(err)
    assert not (root / "AGIQA-3K").exists() and not (tmp_path / "evil.jpg").exists()
    assert left_behind(root) == []


def test_a_full_disk_is_found_before_downloading(use, served, capsys, monkeypatch):
    root = use()
    monkeypatch.setattr(fetch, "free_bytes", lambda path: 10_000)
    code, _, err = run(capsys, "AGIQA", "--root", str(root))
    assert code == 2 and "not enough free space" in one_error(err)
    assert served.requests == []


@pytest.mark.parametrize("argv, message", [
    (["NOPE"], "unknown database NOPE"),
    ([], "name a database"),
    (["AGIQA1K"], "no verified download source; get it by hand"),
    (["AGIQA", "AIGCIQA2023", "--from", "x.zip"], "--from goes with one database"),
    (["AGIQA", "--from", "/nonexistent/x.zip"], "does not exist"),
])
def test_bad_arguments_are_one_error(argv, message, use, capsys, tmp_path):
    root = use()
    code, _, err = run(capsys, *argv, "--root", str(root))
    assert code == 2 and message in one_error(err)
    code, _, err = run(capsys, "AGIQA", "--root", str(tmp_path / "no" / "such" / "root"))
    assert code == 2 and "does not exist" in one_error(err)


# ---------------------------------------------------------------------------- --from
def test_from_a_good_archive_keeps_the_users_file(use, served, capsys, tmp_path):
    root = use()
    given = tmp_path / "downloaded.zip"
    given.write_bytes(served.files["AGIQA-3K.zip"])
    code, out, _ = run(capsys, "AGIQA", "--root", str(root), "--from", str(given))
    assert code == 0 and "(--from)" in out and given.is_file()
    assert not list(requests_for(served, "AGIQA-3K.zip"))  # data.csv still comes from its URL
    assert len(list((root / "AGIQA-3K").glob("*.jpg"))) == 40


def test_from_a_wrong_archive_names_both_hashes(use, served, capsys, tmp_path):
    root = use()
    repack = tmp_path / "repack.zip"
    repack.write_bytes(served.files["AGIQA-3K.zip"] + b"\0")
    found = hashlib.sha256(repack.read_bytes()).hexdigest()
    expected = hashlib.sha256(served.files["AGIQA-3K.zip"]).hexdigest()
    code, _, err = run(capsys, "AGIQA", "--root", str(root), "--from", str(repack))
    assert code == 2 and found in one_error(err) and expected in err and repack.is_file()
    other = tmp_path / "AIGCIQA2023_DATA.zip"
    other.write_bytes(served.files["AIGCIQA2023_DATA.zip"])
    code, _, err = run(capsys, "AGIQA", "--root", str(root), "--from", str(other))
    assert code == 2 and "is AIGCIQA2023_DATA.zip of AIGCIQA2023, not a file of AGIQA-3K" in \
        one_error(err)
    assert not (root / "AGIQA-3K").exists()


def test_from_a_folder_is_accepted_when_every_labelled_image_is_there(use, served, capsys,
                                                                       tmp_path):
    root = use()
    folder = tmp_path / "mine"
    names = [line.split(",")[0] for line in served.files["data.csv"].decode().splitlines()[1:]]
    write_placeholder_images(folder, names[:-1])
    (folder / "data.csv").write_bytes(served.files["data.csv"])
    code, _, err = run(capsys, "AGIQA", "--root", str(root), "--from", str(folder))
    assert code == 2 and "1 of 40 images" in one_error(err) and not (root / "AGIQA-3K").exists()
    write_placeholder_images(folder, names[-1:])
    code, out, _ = run(capsys, "AGIQA", "--root", str(root), "--from", str(folder))
    assert code == 0 and "40 labelled images" in out and (folder / names[0]).is_file()
    assert served.requests == []


# ---------------------------------------------------------------------------- offline
def test_offline_the_error_comes_at_once_with_the_url_and_the_manual_route(tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.delenv(fetch.MANIFEST_ENV, raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    attempts = []

    def unreachable(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(errno.ENETUNREACH, "Network is unreachable")
    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(fetch, "free_bytes", lambda path: 1 << 40)  # not this test's concern
    root = tmp_path / "data"
    code, _, err = run(capsys, "AGIQA", "--root", str(root))
    line = one_error(err)
    assert code == 2 and len(attempts) == 1  # one try, no retry loop
    assert DATABASES["AGIQA"].sources[0].location() in line
    assert f"python -m datasets.fetch AGIQA --from FILE --root {root}" in line
    assert not root.exists()  # the root the failed fetch made is gone: main.sh won't download into it


def test_a_root_that_is_a_file_and_an_empty_from_folder_are_one_error_line(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for root in (a_file, a_file / "sub"):
        code, _, err = run(capsys, "AGIQA", "--root", str(root))
        assert code == 2 and f"{a_file} is a file, not a folder" in one_error(err)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "AGIQA", "--root", str(tmp_path / "data"), "--from", str(empty))
    reason = one_error(err).partition("nothing was kept:")[2]
    assert code == 2 and reason.strip(), err  # the loader's reason, not an empty tail
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------- train.py, main.sh
def _build(root: Path, *opts: str):
    cfg = add_dataset_config(get_cfg_default())
    merge_config(cfg, [str(REPO / "configs" / "datasets" / "AGIQA.yaml")],
                 ["DATASET.ROOT", str(root), *opts])
    return DATASET_REGISTRY.get("AGIQA")(cfg)


def test_the_dataset_fetches_an_absent_folder_unless_told_not_to(use, served, tmp_path, capsys):
    root = use()
    with pytest.raises(MissingDataError, match="dataset folder .* not found"):
        _build(root, "DATASET.FETCH", "False")
    with pytest.raises(MissingDataError, match="not found"):
        _build(tmp_path / "typo")  # a root that does not exist starts no download
    assert served.requests == []
    dataset = _build(root)
    assert len(dataset.train_x) + len(dataset.test) == 40
    assert "Fetching AGIQA-3K" in capsys.readouterr().out
    (root / "AGIQA-3K" / "AttnGAN_normal_000.jpg").unlink()
    with pytest.raises(MissingDataError, match=f"1 of 40 images(.|\n)*python -m datasets.fetch "
                                               f"AGIQA --root {re.escape(str(root))}"):
        _build(root)
    code, out, _ = run(capsys, "AGIQA", "--root", str(root))  # the command named repairs it
    assert code == 0 and (root / "AGIQA-3K" / "AttnGAN_normal_000.jpg").is_file()
    code, out, _ = run(capsys, "AGIQA", "--root", str(root))
    assert code == 0 and "complete already" in out
    assert len(list(requests_for(served, "AGIQA-3K.zip"))) == 2


@pytest.mark.slow
def test_main_sh_on_an_empty_root_fetches_and_trains(use, tiny_assets, tmp_path):
    root = use()
    env = dict(os.environ, PYTHON=sys.executable, DATA=str(root), OMP_NUM_THREADS="1")
    done = subprocess.run(
        ["bash", str(REPO / "scripts/main.sh"), "AGIQA", "vit_b16_ep100", "end", "4", "1",
         "False", "1", "--", "MODEL.BACKBONE.NAME", tiny_assets["weights"], "OPTIM.MAX_EPOCH",
         "1", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
         "TRAINER.CLIP_AGIQA.PREC", "fp32"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Fetching AGIQA-3K" in done.stdout and "40 labelled images" in done.stdout
    run_dir = tmp_path / "output" / "AGIQA" / "CLIP_AGIQA" / "vit_b16_ep100_1shots" / \
        "nctx4_cscFalse_ctpend" / "seed1"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["last"]["epoch"] == 1 and results["final"]["n_images"] == 8
