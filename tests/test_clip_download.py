"""clip.weights: verified downloads, cache folder, Hugging Face mirror and offline errors.

A local HTTP server on 127.0.0.1 plays both OpenAI's file host and a Hugging Face endpoint
(``/<repo>/resolve/main/<file>`` with the headers huggingface_hub needs). The URL table is
monkeypatched to point at it.
"""
import hashlib
import http.server
import os
import threading
import warnings
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from clip import clip, weights
from clip.random_weights import random_state_dict, save_random_weights

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    log: list = []

    def _serve(self, with_body: bool) -> None:
        self.log.append((self.command, self.path))
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, claimed_length = route["body"], route.get("length", len(route["body"]))
        self.send_response(route.get("status", 200))
        self.send_header("Content-Length", str(claimed_length))
        for key, value in route.get("headers", {}).items():
            self.send_header(key, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)  # shorter than claimed_length for a truncated response

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._serve(True)

    def do_HEAD(self):  # noqa: N802
        self._serve(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """(base URL, routes dict path -> {"body", optional "length", "headers"}, request log)."""
    handler = type("Handler", (_Handler,), {"routes": {}, "log": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.routes, handler.log
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Isolated CLIP cache and HF cache, online, HF endpoint unset."""
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "clip-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return tmp_path


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    """Bytes of a tiny-vit state-dict file and their SHA-256."""
    path = save_random_weights(tmp_path_factory.mktemp("w") / "w.pt", "tiny-vit", seed=11)
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _openai_route(routes, base, data, sha, name="ViT-B-16.pt", **extra):
    path = f"/clip/models/{sha}/{name}"
    routes[path] = {"body": data, **extra}
    return base + path


def _hf_route(routes, repo, filename, data):
    routes[f"/{repo}/resolve/main/{filename}"] = {"body": data, "headers": {
        "X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}}


def test_download_good_file_then_cache_hit(server, env, payload):
    base, routes, log = server
    data, sha = payload
    url = _openai_route(routes, base, data, sha)
    path = clip._download(url)
    assert path == str(env / "clip-cache" / "ViT-B-16.pt") and Path(path).read_bytes() == data
    assert os.listdir(env / "clip-cache") == ["ViT-B-16.pt"]  # no temporary file left
    requests = len(log)
    assert weights.download(url, progress=False) == path and len(log) == requests  # verified cache, no network
    Path(path).write_bytes(b"stale")
    with pytest.warns(UserWarning, match="does not match"):
        assert Path(weights.download(url, progress=False)).read_bytes() == data


def test_download_streams_in_chunks(server, env, payload, monkeypatch):
    base, routes, _ = server
    data, sha = payload
    url = _openai_route(routes, base, data, sha)
    monkeypatch.setattr(weights, "_CHUNK", 4096)
    assert len(data) > 10 * 4096
    reads = []
    original = weights.hashlib.sha256

    class Counting:
        def __init__(self):
            self._h = original()

        def update(self, chunk):
            reads.append(len(chunk))
            self._h.update(chunk)

        def hexdigest(self):
            return self._h.hexdigest()

    monkeypatch.setattr(weights.hashlib, "sha256", Counting)
    weights.download(url, progress=False)
    assert max(reads) <= 4096 and sum(reads) == len(data)


def test_download_checksum_mismatch(server, env, payload):
    base, routes, _ = server
    data, _ = payload
    url = _openai_route(routes, base, data, "f" * 64)
    with pytest.raises(weights.ChecksumError, match="SHA-256 mismatch"):
        weights.download(url, progress=False)
    assert os.listdir(env / "clip-cache") == []  # nothing half-written, nothing renamed


def test_download_truncated_body(server, env, payload):
    base, routes, _ = server
    data, sha = payload
    url = _openai_route(routes, base, data[: len(data) // 2], sha, length=len(data))
    with pytest.raises(weights.DownloadError, match="truncated"):
        weights.download(url, progress=False)
    assert os.listdir(env / "clip-cache") == []


def test_download_root_argument_and_env(server, tmp_path, env, payload):
    base, routes, _ = server
    data, sha = payload
    url = _openai_route(routes, base, data, sha, name="RN50.pt")
    assert weights.cache_dir() == str(env / "clip-cache")
    assert weights.download(url, root=str(tmp_path / "explicit"), progress=False) == str(
        tmp_path / "explicit" / "RN50.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        weights.download(base + "/no-hash/RN50.pt")


def test_load_by_name_downloads_from_openai(server, env, payload, monkeypatch):
    base, routes, _ = server
    data, sha = payload
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", _openai_route(routes, base, data, sha))
    model, _ = clip.load("ViT-B/16")
    expected = clip.build_model(random_state_dict("tiny-vit", seed=11)).float()
    assert torch.equal(model.visual.proj, expected.visual.proj)
    assert (env / "clip-cache" / "ViT-B-16.pt").is_file()


def test_404_falls_back_to_hf_mirror(server, env, payload, monkeypatch):
    base, routes, log = server
    _, sha = payload
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", f"{base}/clip/models/{sha}/ViT-B-16.pt")  # not served: 404
    monkeypatch.setenv("HF_ENDPOINT", base)
    state_dict = random_state_dict("tiny-vit", seed=12)
    mirror = env / "mirror.safetensors"
    save_file(state_dict, str(mirror))
    _hf_route(routes, weights.HF_MIRRORS["ViT-B/16"], "open_clip_model.safetensors", mirror.read_bytes())
    with pytest.warns(UserWarning, match="Hugging Face mirror"):
        model, _ = clip.load("ViT-B/16")
    assert torch.equal(model.text_projection, state_dict["text_projection"].half().float())
    assert any(path.endswith("ViT-B-16.pt") for _, path in log)  # OpenAI was tried first
    assert str(env / "hf-cache") in weights.download_from_hf_mirror("ViT-B/16")
    assert not (env / "clip-cache" / "ViT-B-16.pt").exists()
    requests = len(log)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # served from the HF cache: no failed OpenAI attempt, no warning
        again, _ = clip.load("ViT-B/16")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip.load("ViT-B/16")
    assert len(log) == requests and torch.equal(again.text_projection, model.text_projection)


def test_mirror_falls_back_to_pytorch_bin(server, env, monkeypatch):
    base, routes, _ = server
    monkeypatch.setitem(clip._MODELS, "RN50", f"{base}/clip/models/{'a' * 64}/RN50.pt")
    monkeypatch.setenv("HF_ENDPOINT", base)
    path = save_random_weights(env / "rn.bin", "tiny-rn", seed=13)
    _hf_route(routes, weights.HF_MIRRORS["RN50"], "open_clip_pytorch_model.bin", Path(path).read_bytes())
    with pytest.warns(UserWarning):
        model, _ = clip.load("RN50")
    assert torch.equal(model.visual.attnpool.positional_embedding,
                       random_state_dict("tiny-rn", seed=13)["visual.attnpool.positional_embedding"])


def test_no_network_nothing_cached(server, env, payload, monkeypatch):
    base, _, log = server
    _, sha = payload
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # skip huggingface_hub's retry back-off
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", f"http://127.0.0.1:9/clip/models/{sha}/ViT-B-16.pt")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(weights.WeightsNotFoundError) as info:
        clip.load("ViT-B/16")
    message = str(info.value)
    for fragment in ("ViT-B-16.pt", str(env / "clip-cache"), clip._MODELS["ViT-B/16"],
                     "timm/vit_base_patch16_clip_224.openai", "open_clip_model.safetensors", "CLIP_CACHE_DIR"):
        assert fragment in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, RuntimeError)


def test_unreachable_mirror_is_not_retried_per_file(server, env, monkeypatch):
    base, routes, log = server
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    monkeypatch.setitem(clip._MODELS, "RN50", f"{base}/clip/models/{'a' * 64}/RN50.pt")
    monkeypatch.setenv("HF_ENDPOINT", base)
    repo = weights.HF_MIRRORS["RN50"]
    routes[f"/{repo}/resolve/main/open_clip_model.safetensors"] = {"body": b"", "status": 503}
    with pytest.raises(weights.WeightsNotFoundError, match="503"):
        clip.load("RN50")
    assert any("safetensors" in path for _, path in log)
    assert not any(path.endswith(".bin") for _, path in log)


def test_offline_mode_uses_caches_only(server, env, payload, monkeypatch):
    base, routes, log = server
    data, sha = payload
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", _openai_route(routes, base, data, sha))
    monkeypatch.setenv("HF_ENDPOINT", base)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(weights.WeightsNotFoundError, match="(?s)offline.*ViT-B-16.pt"):
        clip.load("ViT-B/16")
    assert log == []  # offline: not a single request
    monkeypatch.delenv("HF_HUB_OFFLINE")
    clip.load("ViT-B/16")  # online: downloads into the cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    requests = len(log)
    model, _ = clip.load("ViT-B/16")  # offline again: served from the verified cache
    assert len(log) == requests and model.visual.input_resolution == 224
