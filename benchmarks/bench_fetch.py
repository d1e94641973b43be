"""How fast ``python -m datasets.fetch`` fetches a ~100 MB archive, against the server's raw rate.

Builds AGIQA-3K in its published layout at about the real size (``AGIQA-3K.zip``, stored, one
file of ``--image-kb`` random bytes per name of the shipped ``data.csv``: 2,982 x 33 KB = 100 MB),
serves it from a threaded ``http.server`` on 127.0.0.1, and reports:

- raw: the best of ``--repeats`` plain GETs read in 1 MiB blocks and thrown away (what the
  server and the loopback deliver);
- download: ``datasets.fetch.download`` (GET to a ``.part`` file, size and SHA-256 check);
- fetch: ``datasets.fetch.fetch_database`` from nothing (download, verify, unpack through the
  staging folder, the loader's check of every labelled image, the move into place).

    python benchmarks/bench_fetch.py [--work DIR] [--image-kb 33] [--repeats 3]

Prints one line per figure and a JSON summary. The files go to a temporary folder (or ``--work``)
and are removed afterwards.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from datasets import fetch  # noqa: E402
from datasets.registry import DATABASES, PRODUCT_DATA  # noqa: E402

MB = 1e6


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def build_archive(path: Path, image_bytes: int) -> int:
    """``AGIQA-3K.zip`` with ``AGIQA-3K/<name>`` for every name of the shipped data.csv."""
    names = [line.split(",", 1)[0] for line in
             (PRODUCT_DATA / "AGIQA-3K" / "data.csv").read_text(encoding="utf-8").splitlines()[1:]]
    noise = os.urandom(image_bytes + len(names))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as book:
        for i, name in enumerate(names):
            book.writestr(f"AGIQA-3K/{name}", noise[i:i + image_bytes])
    return len(names)


def raw_seconds(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        while response.read(1 << 20):
            pass
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--image-kb", type=int, default=33, help="bytes per image / 1000")
    parser.add_argument("--repeats", type=int, default=3, help="raw GETs (the best counts)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.work))
    try:
        served = work / "served"
        served.mkdir()
        archive = served / "AGIQA-3K.zip"
        images = build_archive(archive, args.image_kb * 1000)
        size = archive.stat().st_size
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        handler = functools.partial(_Quiet, directory=str(served))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/AGIQA-3K.zip"
        manifest = work / "manifest.json"
        manifest.write_text(json.dumps({"AGIQA-3K.zip": {"url": url, "size": size,
                                                         "sha256": digest}}))
        os.environ[fetch.MANIFEST_ENV] = str(manifest)
        raw = min(raw_seconds(url) for _ in range(args.repeats))
        db = DATABASES["AGIQA"]
        planned = next(p for p in fetch.plan(db) if p.source.name == "AGIQA-3K.zip")
        folder = work / "download"
        folder.mkdir()
        start = time.perf_counter()
        fetch.download(db, planned, folder, progress=False)
        download = time.perf_counter() - start
        root = work / "root"
        root.mkdir()
        start = time.perf_counter()
        checked = fetch.fetch_database(db, root, progress=False, say=lambda line: None)
        whole = time.perf_counter() - start
        server.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"archive_bytes": size, "images": images, "checked_images": checked,
              "raw_s": round(raw, 3), "raw_MB_per_s": round(size / MB / raw, 1),
              "download_verify_s": round(download, 3),
              "download_verify_MB_per_s": round(size / MB / download, 1),
              "fetch_s": round(whole, 3), "fetch_MB_per_s": round(size / MB / whole, 1),
              "download_vs_raw": round(download / raw, 2), "fetch_vs_raw": round(whole / raw, 2)}
    print(f"archive: {size / MB:.1f} MB, {images} images")
    print(f"raw GET (best of {args.repeats}): {raw:.2f} s = {size / MB / raw:.0f} MB/s")
    print(f"download + size/SHA-256 check: {download:.2f} s = {size / MB / download:.0f} MB/s "
          f"({download / raw:.2f} x raw)")
    print(f"whole fetch (download, verify, unpack, loader check, move): {whole:.2f} s "
          f"({whole / raw:.2f} x raw)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
