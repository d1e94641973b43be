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


@pytest.fixture
def closed_port():
    """A 127.0.0.1 port nobody listens on: a connection there is refused at once."""
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def blackhole_port():
    """A 127.0.0.1 port whose listen queue is full: the kernel drops further SYNs, so a
    connection attempt gets no answer, as from a firewalled host."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # fills the queue; never accepted
    yield port
    filler.close()
    listener.close()


@pytest.fixture
def attempts(monkeypatch):
    """Every TCP connection attempt (address, timeout), passed on to the real socket call, and
    every download started: what a machine without network must not repeat."""
    import socket

    record = {"connect": [], "download": [], "mirror": []}
    real_connect = socket.create_connection

    def connect(address, timeout=None, *args, **kwargs):
        record["connect"].append((address, timeout))
        return real_connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    for name, key in (("download", "download"), ("download_from_hf_mirror", "mirror")):
        real = getattr(weights, name)
        monkeypatch.setattr(weights, name, lambda *a, _real=real, _key=key, **k:
                            record[_key].append(a) or _real(*a, **k))
    return record


def _point_at(monkeypatch, port, sha="5" * 64):
    url = f"http://127.0.0.1:{port}/clip/models/{sha}/ViT-B-16.pt"
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", url)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    return url


def test_refused_hosts_fail_after_one_attempt_each(env, closed_port, attempts, monkeypatch):
    _point_at(monkeypatch, closed_port)
    with pytest.raises(weights.WeightsUnavailableError) as info:
        weights.resolve_weights("ViT-B/16")
    # One connection attempt to the OpenAI host and one to the mirror, with the short timeout;
    # no download and no huggingface_hub call (its five retries took about 25 s).
    assert attempts["connect"] == [(("127.0.0.1", closed_port), weights.PROBE_TIMEOUT_S)] * 2
    assert attempts["download"] == [] and attempts["mirror"] == []
    error = info.value
    assert (error.name, error.filename) == ("ViT-B/16", "ViT-B-16.pt")
    assert error.folder == str(env / "clip-cache")
    assert error.reason.count(f"cannot connect to 127.0.0.1:{closed_port}") == 2
    assert "refused" in error.reason
    line = error.one_line("pass MODEL.BACKBONE.NAME path/to/ViT-B-16.pt")
    assert "\n" not in line and "pass MODEL.BACKBONE.NAME path/to/ViT-B-16.pt" in line
    assert f"put ViT-B-16.pt into {env / 'clip-cache'}, where a download would go" in line


def test_a_host_that_drops_connections_costs_one_short_timeout(env, blackhole_port, attempts,
                                                               monkeypatch):
    monkeypatch.setattr(weights, "PROBE_TIMEOUT_S", 0.2)  # the test's own bound, not a timing
    _point_at(monkeypatch, blackhole_port)
    assert weights.unreachable(f"http://127.0.0.1:{blackhole_port}/x") == \
        f"127.0.0.1:{blackhole_port}: no answer within 0.2 s"
    attempts["connect"].clear()
    with pytest.raises(weights.WeightsUnavailableError, match="no answer within 0.2 s"):
        weights.resolve_weights("ViT-B/16")
    assert attempts["connect"] == [(("127.0.0.1", blackhole_port), 0.2)] * 2
    assert attempts["download"] == [] and attempts["mirror"] == []


def test_a_reachable_host_is_still_downloaded_from(server, env, payload, attempts, monkeypatch):
    base, routes, _ = server
    data, sha = payload
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", _openai_route(routes, base, data, sha))
    path = weights.resolve_weights("ViT-B/16")
    assert Path(path).read_bytes() == data and len(attempts["download"]) == 1


def test_probe_goes_to_the_proxy_when_one_is_set(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert weights._probe_address("https://huggingface.co/x") == ("proxy.example", 3128)
    monkeypatch.setenv("no_proxy", "huggingface.co")
    assert weights._probe_address("https://huggingface.co/x") == ("huggingface.co", 443)


def test_offline_mode_makes_no_connection_attempt(env, attempts, monkeypatch, closed_port):
    _point_at(monkeypatch, closed_port)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(weights.WeightsUnavailableError) as info:
        weights.resolve_weights("ViT-B/16")
    assert attempts["connect"] == [] and "HF_HUB_OFFLINE" in info.value.reason
