"""Where CLIP weights come from: model-name table, cache folder, verified download, HF mirror.

Resolution order for a model name (``resolve_weights``):
1. ``<cache>/<file>.pt`` when its SHA-256 matches the one embedded in OpenAI's URL;
2. the mirror file (below) when it is already in the Hugging Face cache;
3. a download from OpenAI's URL (streamed, hashed while streaming, atomic rename);
4. the same weights from their Hugging Face mirror (``timm/*_clip*.openai``, open_clip format
   with OpenAI's key names) via ``huggingface_hub``, which honours ``HF_HOME``,
   ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT``. OpenAI's URLs have answered 404 for many users
   since 2025 (openai/CLIP issue 516).
With ``HF_HUB_OFFLINE`` set nothing is fetched; only the two caches are consulted. Before
steps 3 and 4 one TCP connection to each host (or its proxy) is tried with a short timeout
(``PROBE_TIMEOUT_S``): an unreachable host is skipped at once instead of paying urllib's timeout
and huggingface_hub's five retries (about 25 s) on a machine without network.
The cache folder is ``download_root``, else ``$CLIP_CACHE_DIR``, else ``~/.cache/clip``.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings

from tqdm import tqdm

__all__ = ["MODELS", "HF_MIRRORS", "HF_FILENAMES", "CACHE_ENV", "DownloadError", "ChecksumError",
           "WeightsNotFoundError", "WeightsUnavailableError", "PROBE_TIMEOUT_S", "cache_dir",
           "sha256_file", "url_sha256", "download",
           "hf_mirror_cached", "download_from_hf_mirror", "offline_mode", "unreachable",
           "weights_filename", "mirror_url", "cached_weights", "resolve_weights"]

_OPENAI = "https://openaipublic.azureedge.net/clip/models"
# Model name -> OpenAI URL; the second-to-last path segment is the file's SHA-256.
MODELS: dict[str, str] = {
    "RN50": f"{_OPENAI}/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "RN101": f"{_OPENAI}/8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
    "RN50x4": f"{_OPENAI}/7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt",
    "RN50x16": f"{_OPENAI}/52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt",
    "RN50x64": f"{_OPENAI}/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt",
    "ViT-B/32": f"{_OPENAI}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    "ViT-B/16": f"{_OPENAI}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
    "ViT-L/14": f"{_OPENAI}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    "ViT-L/14@336px": f"{_OPENAI}/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
}
# Model name -> Hugging Face repository holding the same weights in open_clip format.
HF_MIRRORS: dict[str, str] = {
    "RN50": "timm/resnet50_clip.openai",
    "RN101": "timm/resnet101_clip.openai",
    "RN50x4": "timm/resnet50x4_clip.openai",
    "RN50x16": "timm/resnet50x16_clip.openai",
    "RN50x64": "timm/resnet50x64_clip.openai",
    "ViT-B/32": "timm/vit_base_patch32_clip_224.openai",
    "ViT-B/16": "timm/vit_base_patch16_clip_224.openai",
    "ViT-L/14": "timm/vit_large_patch14_clip_224.openai",
    "ViT-L/14@336px": "timm/vit_large_patch14_clip_336.openai",
}
# Files tried in each mirror repository, safest format first.
HF_FILENAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
CACHE_ENV = "CLIP_CACHE_DIR"
# Seconds one TCP connection attempt may take before a host counts as unreachable: a reachable
# host answers a SYN within a round trip (well under a second worldwide); a dropped one never does.
PROBE_TIMEOUT_S = 3.0
_CHUNK = 1 << 20  # bytes per read/hash step: constant memory whatever the file size
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(RuntimeError):
    """A download failed (network, HTTP status, truncated body)."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not have the expected SHA-256."""


class WeightsNotFoundError(FileNotFoundError, RuntimeError):
    """Weights are neither on disk nor obtainable (also a RuntimeError, as upstream raised).
    ``requested``: the name or path asked for, when it is neither a model name nor a file."""

    requested: str | None = None


class WeightsUnavailableError(WeightsNotFoundError):
    """A model name's weights are in neither cache and could not be fetched.

    ``str()`` is the full report (sources, every failure); the attributes let a command line
    say it in one line with its own flag (``one_line``): ``name`` (e.g. "ViT-B/16"),
    ``filename`` ("ViT-B-16.pt"), ``folder`` (the cache folder a download would go to) and
    ``reason`` (short: offline, unreachable hosts, or the download failures).
    """

    name: str = ""
    filename: str = ""
    folder: str = ""
    reason: str = ""

    def one_line(self, how: str) -> str:
        """One line: what is missing, why, ``how`` to pass a file instead, where a download goes.

        ``how`` names the caller's option, e.g. "pass MODEL.BACKBONE.NAME path/to/ViT-B-16.pt".
        """
        return (f"CLIP weights for {self.name!r} are not available ({self.reason}): {how} (a "
                f"local weights file), or put {self.filename} into {self.folder}, where a "
                f"download would go (${CACHE_ENV} sets that folder)")


def cache_dir(download_root: str | None = None) -> str:
    """Folder for downloaded OpenAI files: argument > ``$CLIP_CACHE_DIR`` > ``~/.cache/clip``."""
    root = download_root or os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "clip")
    return os.path.abspath(os.path.expanduser(root))


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def url_sha256(url: str) -> str | None:
    """The SHA-256 embedded as second-to-last path segment of an OpenAI-style URL, else None."""
    parts = urllib.parse.urlparse(url).path.rstrip("/").split("/")
    return parts[-2].lower() if len(parts) >= 2 and _SHA256.match(parts[-2].lower()) else None


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or huggingface_hub's own flag) forbids network access."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _probe_address(url: str) -> tuple[str, int] | None:
    """``(host, port)`` a request for ``url`` first connects to: its proxy, if one is set for
    the scheme and the host is not bypassed, else the URL's host; None without a host."""
    parsed = urllib.parse.urlparse(url)
    if not parsed.hostname:
        return None
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(parsed.hostname):
        proxied = urllib.parse.urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if proxied.hostname:
            return proxied.hostname, proxied.port or 80
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def unreachable(url: str, timeout: float | None = None) -> str | None:
    """None when a TCP connection to ``url``'s host (or proxy) opens within ``timeout`` seconds
    (default ``PROBE_TIMEOUT_S``), else why not, e.g. "huggingface.co:443: [Errno -2] Name or
    service not known" or "...: no answer within 3 s".

    One attempt, no retry. Name resolution runs in a daemon thread, so a DNS server that does
    not answer is bounded by the same timeout.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    address = _probe_address(url)
    if address is None:
        return None
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(err)

    thread = threading.Thread(target=connect, name="clip-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    where = f"{address[0]}:{address[1]}"
    if not outcome:
        return f"{where}: no answer within {timeout:g} s"
    error = outcome[0]
    if error is None:
        return None
    if isinstance(error, socket.timeout):
        return f"{where}: no answer within {timeout:g} s"
    return f"{where}: {error}"


def download(url: str, root: str | None = None, sha256: str | None = None, progress: bool = True,
             timeout: float = 30.0) -> str:
    """Download ``url`` into ``root`` (see ``cache_dir``) and return the local path.

    The file is named after the URL's last segment. An existing file with the right hash is
    reused without network access; a wrong one is replaced (with a warning). Bytes are hashed
    while streaming into a temporary file in ``root`` that is renamed into place only once
    size and hash are verified, so an interrupted download never leaves a corrupt cache entry.
    ``sha256`` defaults to the hash embedded in the URL; one of the two is required.
    Raises ``ChecksumError`` on a hash mismatch and ``DownloadError`` on any other failure.
    """
    expected = (sha256 or url_sha256(url) or "").lower()
    if not _SHA256.match(expected):
        raise ValueError(f"no SHA-256 to verify {url} against: pass sha256= or use an OpenAI-style URL")
    root = cache_dir(root)
    os.makedirs(root, exist_ok=True)
    target = os.path.join(root, os.path.basename(urllib.parse.urlparse(url).path))
    if os.path.exists(target):
        if not os.path.isfile(target):
            raise DownloadError(f"{target} exists and is not a regular file")
        if sha256_file(target) == expected:
            return target
        warnings.warn(f"{target} exists but its SHA-256 does not match {expected}; downloading it again")

    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part", dir=root)
    try:
        with os.fdopen(fd, "wb") as out:
            received = _stream(url, out, timeout, progress)
        if received != expected:
            raise ChecksumError(f"SHA-256 mismatch for {url}: expected {expected}, got {received}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _stream(url: str, out, timeout: float, progress: bool) -> str:
    """Copy the body of ``url`` into ``out`` chunk by chunk; return the hex SHA-256 of the bytes."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            got = 0
            with tqdm(total=total, unit="iB", unit_scale=True, unit_divisor=1024, disable=not progress,
                      desc=os.path.basename(url)) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url} answered HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        raise DownloadError(f"could not download {url}: {err}") from err
    # http.client returns a short body silently when the server closes early.
    if total is not None and got != total:
        raise DownloadError(f"download of {url} truncated: got {got} of {total} bytes")
    return digest.hexdigest()


def _hf_api():
    """``hf_hub_download`` and the error class meaning "no such file in the repository"."""
    try:
        from huggingface_hub import hf_hub_download
        try:
            from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
        except ImportError:  # huggingface_hub < 0.23
            from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError as err:
        raise DownloadError("huggingface_hub is not installed (pip install huggingface_hub)") from err
    return hf_hub_download, EntryNotFoundError, LocalEntryNotFoundError


def hf_mirror_cached(name: str) -> str | None:
    """Path of ``name``'s mirror file in the Hugging Face cache (``HF_HOME``), without any request."""
    if name not in HF_MIRRORS:
        return None
    try:
        hf_hub_download = _hf_api()[0]
    except DownloadError:  # huggingface_hub missing: nothing can be cached either
        return None
    for filename in HF_FILENAMES:
        try:
            return hf_hub_download(HF_MIRRORS[name], filename, local_files_only=True)
        except Exception:  # not cached (the exception type varies across huggingface_hub versions)
            continue
    return None


def download_from_hf_mirror(name: str, local_files_only: bool = False) -> str:
    """Fetch ``name``'s weights from its Hugging Face mirror (or its cache); return the local path.

    The next file name is tried only when the previous one is missing from the repository: after
    a network failure it would just repeat huggingface_hub's retries (about 25 s per file).
    ``HF_ENDPOINT`` is read at call time, so it may be set after import.
    """
    if name not in HF_MIRRORS:
        raise DownloadError(f"no Hugging Face mirror known for {name!r}")
    cached = hf_mirror_cached(name)
    if cached is not None:
        return cached
    repo = HF_MIRRORS[name]
    if local_files_only:
        raise DownloadError(f"{' / '.join(HF_FILENAMES)} of {repo} not in the Hugging Face cache (offline)")
    hf_hub_download, entry_not_found, local_entry_not_found = _hf_api()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    failures = []
    for filename in HF_FILENAMES:
        try:
            return hf_hub_download(repo, filename, endpoint=endpoint)
        except Exception as err:  # huggingface_hub raises many unrelated types; report them all
            cause = f" (cause: {err.__cause__})" if err.__cause__ is not None else ""
            failures.append(f"{filename}: {type(err).__name__}: {err}{cause}")
            # Only a file missing on the server (not "unreachable, and not cached") means: try the next.
            if not isinstance(err, entry_not_found) or isinstance(err, local_entry_not_found):
                break
    raise DownloadError(f"Hugging Face mirror {repo} failed: " + " | ".join(failures))


def resolve_weights(name_or_path: str, download_root: str | None = None) -> str:
    """Local file holding the weights of a model name or an existing file path.

    Raises ``WeightsNotFoundError`` naming the file, the folder to put it in and both sources.
    """
    if name_or_path in MODELS:
        return _resolve_name(name_or_path, download_root)
    if os.path.isfile(name_or_path):
        return name_or_path
    reason = "is a directory, not a file" if os.path.isdir(name_or_path) else "is not an existing file"
    error = WeightsNotFoundError(f"{name_or_path!r} {reason} and not a known model name; "
                                 f"available models: {list(MODELS)}")
    error.requested = name_or_path
    raise error


def weights_filename(name: str) -> str:
    """File name of a model name's OpenAI weights, e.g. "ViT-B-16.pt" for "ViT-B/16"."""
    return os.path.basename(urllib.parse.urlparse(MODELS[name]).path)


def mirror_url(name: str) -> str:
    """Page of a model name's Hugging Face mirror at ``HF_ENDPOINT`` (read at call time)."""
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    return f"{endpoint}/{HF_MIRRORS[name]}"


def cached_weights(name: str, download_root: str | None = None) -> str | None:
    """Local file of a model name's weights without any request: ``<cache>/<file>.pt`` when its
    SHA-256 matches, else the mirror file in the Hugging Face cache, else None."""
    url = MODELS[name]
    target = os.path.join(cache_dir(download_root), weights_filename(name))
    if os.path.isfile(target) and sha256_file(target) == url_sha256(url):
        return target
    return hf_mirror_cached(name)


def _resolve_name(name: str, download_root: str | None) -> str:
    url = MODELS[name]
    root = cache_dir(download_root)
    filename = weights_filename(name)
    target = os.path.join(root, filename)
    # Both caches first, so that a model once fetched from the mirror needs no request again.
    cached = cached_weights(name, download_root)
    if cached is not None:
        return cached
    failures = []
    endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    cached = f"{target}: SHA-256 mismatch" if os.path.exists(target) else "not cached"
    if offline_mode():
        failures.append(f"{target}: " + ("SHA-256 mismatch" if os.path.exists(target) else "not present")
                        + f"; {HF_MIRRORS[name]} not in the Hugging Face cache (offline mode: HF_HUB_OFFLINE "
                          "is set, nothing is downloaded)")
        reason = f"{cached}, and HF_HUB_OFFLINE forbids downloads"
    else:
        path = _fetch(name, url, root, mirror_url(name), failures)
        if path is not None:
            return path
        reason = f"{cached}, and the download failed: " + "; ".join(failures)
    error = WeightsUnavailableError(
        f"CLIP weights for {name!r} are not available: {filename} is not in {root} and could not be "
        f"obtained.\nPut {filename} in {root} (or point download_root / ${CACHE_ENV} at the folder that "
        f"holds it), or pass the path of a weights file to clip.load(). Download sources:\n"
        f"  - OpenAI: {url} (SHA-256 {url_sha256(url)})\n"
        f"  - Hugging Face mirror: {endpoint}/{HF_MIRRORS[name]} (file {' or '.join(HF_FILENAMES)}; "
        f"pass its path to clip.load())\nErrors:\n  - " + "\n  - ".join(failures))
    error.name, error.filename, error.folder, error.reason = name, filename, root, reason
    raise error


def _fetch(name: str, url: str, root: str, mirror_url: str, failures: list[str]) -> str | None:
    """Download ``name`` from OpenAI, else from its mirror; None (reasons added to
    ``failures``) when neither works. A host that does not take a connection (``unreachable``)
    is not asked at all, so a machine without network fails within ``2 * PROBE_TIMEOUT_S``."""
    down = unreachable(url)
    if down is None:
        try:
            return download(url, root)
        except DownloadError as err:
            failures.append(f"OpenAI: {err}")
    else:
        failures.append(f"OpenAI: cannot connect to {down}")
    mirror_down = unreachable(mirror_url)
    if mirror_down is not None:
        failures.append(f"mirror: cannot connect to {mirror_down}")
        return None
    try:
        path = download_from_hf_mirror(name)
    except DownloadError as err:
        failures.append(f"mirror: {err}")
        return None
    warnings.warn(f"OpenAI download of {name} failed ({failures[0]}); using the Hugging Face "
                  f"mirror {HF_MIRRORS[name]}")
    return path
