"""A local HTTP server for the fetch tests (127.0.0.1 only, started by the tests) and synthetic
archives in the databases' real layouts, with the manifest override that names them.

Paths are ``/<mode>/<file>``: ``ok`` serves the file (with HTTP ``Range``: 206 and
``Content-Range``), ``drop`` sends the headers of the whole file but only half of its bytes and
closes the connection (once per file; later requests are served like ``ok``), ``html`` answers
200 with an HTML page (a login or error page of a mirror), ``missing`` answers 404. Every request
is recorded as ``(path, Range header)``.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.io import savemat

from datasets.registry import PRODUCT_DATA
from synthetic_databases import write_placeholder_images

AGIQA3K_CSV = PRODUCT_DATA / "AGIQA-3K" / "data.csv"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        server: LocalServer = self.server  # type: ignore[assignment]
        server.requests.append((self.path, self.headers.get("Range")))
        _, mode, name = self.path.split("/", 2)
        body = server.files.get(name)
        if mode == "missing" or body is None:
            self.send_error(404, "Not Found")
            return
        if mode == "html":
            page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        start = 0
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[len("bytes="):-1])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if mode == "drop" and name not in server.dropped:
            server.dropped.add(name)
            self.wfile.write(body[start:start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


class LocalServer(ThreadingHTTPServer):
    """``files``: name -> bytes served; ``requests``: ``(path, Range)`` of every request."""

    daemon_threads = True

    def __init__(self, files: Mapping[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = dict(files)
        self.requests: list[tuple[str, str | None]] = []
        self.dropped: set[str] = set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def url(self, name: str, mode: str = "ok") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}/{name}"

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


def zip_bytes(members: Mapping[str, bytes], links: Sequence[str] = ()) -> bytes:
    """A zip archive of ``members`` (name -> bytes); names in ``links`` become symbolic links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as book:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (0o120777 << 16)
            book.writestr(info, data)
    return buffer.getvalue()


def folder_members(folder: Path, prefix: str) -> dict[str, bytes]:
    """Every file below ``folder`` as zip members under ``prefix``."""
    return {f"{prefix}{p.relative_to(folder).as_posix()}": p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def agiqa_files(work: Path, rows: int = 40) -> dict[str, bytes]:
    """AGIQA-3K as published, in small: ``AGIQA-3K.zip`` holding ``AGIQA-3K/<name>`` for the
    first ``rows`` names of the real ``data.csv``, and that ``data.csv`` cut to those rows."""
    table = pd.read_csv(AGIQA3K_CSV).iloc[:rows]
    images = work / "agiqa-images"
    write_placeholder_images(images, table["name"].tolist())
    labels = AGIQA3K_CSV.read_bytes().splitlines(keepends=True)
    return {"AGIQA-3K.zip": zip_bytes(folder_members(images, "AGIQA-3K/")),
            "data.csv": b"".join(labels[:rows + 1])}


def aigciqa2023_files(work: Path, rows: int = 24) -> dict[str, bytes]:
    """AIGCIQA2023 in small: ``AIGCIQA2023.zip`` holding ``AIGCIQA2023/Image/allimg/<i>.png``
    and ``AIGCIQA2023_DATA.zip`` holding ``DATA/MOS/mosz{1,2,3}.mat`` (variable ``MOSz``,
    ``rows`` x 1, values in the real range 27..74) and ``DATA/STD/``."""
    images = work / "aigc-images"
    write_placeholder_images(images, [f"{i}.png" for i in range(rows)])
    rng = np.random.default_rng(23)
    mats = {}
    for k in (1, 2, 3):
        for kind in ("MOS", "STD"):
            buffer = io.BytesIO()
            savemat(buffer, {f"{kind}z": rng.uniform(27, 74, (rows, 1))})
            mats[f"DATA/{kind}/{kind.lower()}z{k}.mat"] = buffer.getvalue()
    return {"AIGCIQA2023.zip": zip_bytes(folder_members(images, "AIGCIQA2023/Image/allimg/")),
            "AIGCIQA2023_DATA.zip": zip_bytes(mats)}


def manifest(server: LocalServer, modes: Mapping[str, str] | None = None,
             files: Mapping[str, bytes] | None = None) -> dict:
    """The manifest override for every file the server holds: URL (``/<mode>/``, default
    ``ok``), size and SHA-256 of ``files`` (default: the served bytes)."""
    modes = modes or {}
    files = files if files is not None else server.files
    return {name: {"url": server.url(name, modes.get(name, "ok")), "size": len(data),
                   "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()}


def write_manifest(path: Path, entries: Mapping) -> Path:
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def requests_for(server: LocalServer, name: str) -> Iterator[tuple[str, str | None]]:
    return (r for r in server.requests if r[0].endswith("/" + name))
