"""Fetch a database, verified: ``python -m datasets.fetch NAME... [--root DATA]``.

NAME is a dataset config (``AGIQA``, ``AGIQA_alignment``, ``AIGCIQA2023_authenticity`` ...; the
variants of one database fetch the same files). The files, with
their exact sizes, SHA-256 and licences, are the ``sources`` of ``datasets/registry.py``. For each
database, in order:

1. one line: what, how big, from where, under which licence;
2. free space is checked for the downloads plus their unpacked size (estimated as the download
   size until the archive's own listing is known, then checked again exactly);
3. each file is downloaded with a progress bar into ``ROOT/.fetch/NAME.part``; an interrupted
   download is resumed by the next run (HTTP ``Range``), and it is kept only then. Nothing is
   retried: without network the error comes at once and names the URL and the manual route,
   ``--from``;
4. size and SHA-256 are checked before anything is unpacked; a mismatch removes the download
   and names both hashes;
5. archives unpack into ``ROOT/.fetch/`` first (members with absolute paths, ``..`` or links are
   refused), a single top folder named as the database folder is taken as that folder (the
   archive's inner layout is not assumed: the loaders find images up to three folders deep);
6. the loader's own check (every labelled image present, for every config of the database)
   runs on the result, which only then moves to ``ROOT/<folder>``: a failure leaves nothing
   half-unpacked.

``--from PATH`` takes what the user got elsewhere: an archive must match one of the database's
SHA-256 (a different archive, e.g. a repack from another mirror, is refused with both hashes
named); a folder is accepted when the loader's check finds every labelled image in it (with the
files this repository ships added). A file given with ``--from`` is never deleted.

URLs: a Hugging Face file is ``{HF_ENDPOINT}/datasets/{repo}/resolve/{revision}/{file}``
(``HF_ENDPOINT`` defaults to https://huggingface.co; set it to a mirror). Every source can be
overridden, for mirrors and tests, by a JSON manifest named in ``CLIP_AGIQA_FETCH_MANIFEST``:
``{"AGIQA-3K.zip": {"url": ..., "size": ..., "sha256": ...}, ...}`` (any of the three keys).

Why plain ``urllib`` and not ``huggingface_hub``: the hub client checks no hash of its own
(issue 23), retries a missing network for about 25 s a file, and cannot fetch a plain URL of a
mirror; what is needed here (one GET with ``Range``, redirects, a hash) is a few lines of the
standard library, and a local test server exercises all of it.

Every bad input is one ``error:`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import stat
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from dassl.names import shown

from .registry import DATABASES, PRODUCT_DATA, Database, Source, by_config, config_names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m datasets.fetch",
        description="Download a database, verify it (size, SHA-256) and unpack it where the "
                    "loaders look (ROOT/<folder>).")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"a dataset config: {', '.join(config_names())}")
    parser.add_argument("--root", default=os.environ.get("DATA", "./data"),
                        help="dataset root (DATASET.ROOT; default: $DATA, else ./data as in "
                             "scripts/main.sh)")
    parser.add_argument("--list", action="store_true",
                        help="show every file with its size, source and licence (offline)")
    parser.add_argument("--from", dest="given", action="append", default=[], metavar="PATH",
                        help="use this archive (must match a known SHA-256) or folder instead "
                             "of downloading; may be repeated")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


# --help answers before torch (imported by dassl.utils) loads.
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args(sys.argv[1:])

from dassl.utils.errors import report_user_error, write_failure  # noqa: E402

from .errors import DatasetError, MissingDataError, describe_dir  # noqa: E402
from .labels import sha256_file  # noqa: E402

__all__ = ["FetchError", "Planned", "plan", "fetch_database", "fetch_if_absent", "check_database",
           "describe", "main", "MANIFEST_ENV", "STAGING", "TIMEOUT_S"]

MANIFEST_ENV = "CLIP_AGIQA_FETCH_MANIFEST"
STAGING = ".fetch"  # under ROOT: partial downloads and the folder being unpacked
TIMEOUT_S = 30.0    # seconds without a byte before a connection counts as lost (no retry)
CHUNK = 1 << 20
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "datasets"


class FetchError(DatasetError):
    """A database cannot be fetched; the message says why and what to do."""


@dataclass(frozen=True)
class Planned:
    """A source after the manifest override: where it comes from and what it must be."""

    source: Source
    url: str
    size: int
    sha256: str

    @property
    def local(self) -> Path | None:
        """The shipped file, when it is one and no override gave it a URL."""
        return PRODUCT_DATA / self.source.bundled if self.source.bundled and not self.url else None


def _manifest() -> dict:
    path = os.environ.get(MANIFEST_ENV, "")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot read the manifest {shown(path)} ({MANIFEST_ENV}): {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise FetchError(f"manifest {shown(path)} ({MANIFEST_ENV}) must map file names to objects "
                         'with "url", "size", "sha256"')
    return data


def plan(db: Database) -> list[Planned]:
    """The database's sources with the manifest override applied (``MANIFEST_ENV``)."""
    override = _manifest()
    planned = []
    for source in db.sources:
        entry = override.get(source.name, {})
        url = entry.get("url", "" if source.bundled else source.location())
        planned.append(Planned(source, str(url), int(entry.get("size", source.size)),
                               str(entry.get("sha256", source.sha256)).lower()))
    return planned


def describe(db: Database, planned: Sequence[Planned], given: dict[str, Path]) -> str:
    """The one line said before a fetch: what, how big, from where, licence. ``given``: the
    files taken from ``--from`` (by source name)."""
    def origin(p: Planned) -> str:
        if p.source.name in given:
            return f"from {given[p.source.name]} (--from)"
        return "shipped with this repository" if p.local else f"from {p.url}"
    parts = [f"{p.source.name} ({p.size:,} bytes, {origin(p)})" for p in planned]
    licence = ("no licence is stated for it" if db.licence == "none stated"
               else f"licence {db.licence}")
    download = sum(p.size for p in planned if not p.local and p.source.name not in given)
    return (f"Fetching {db.title} ({download:,} bytes to download): {'; '.join(parts)}; "
            f"{licence}")


def _manual_route(db: Database, p: Planned, part: Path) -> str:
    """How to fetch by hand; ``part`` (ROOT/.fetch/NAME.part) names the root to pass."""
    return (f"download {p.url} by other means (a browser, another machine) and run "
            f"python -m datasets.fetch {db.name} --from FILE --root {part.parent.parent}")


def free_bytes(path: Path) -> int:
    """Free bytes on the file system of ``path`` (a function, so tests can replace it)."""
    return shutil.disk_usage(path).free


def _check_space(folder: Path, needed: int, what: str) -> None:
    free = free_bytes(folder)
    if needed > free:
        raise FetchError(f"not enough free space in {shown(folder)}: {what} needs {needed:,} bytes, "
                         f"{free:,} are free; free some space or choose another --root")


def _verify(path: Path, p: Planned, remove: bool) -> None:
    """Size, then SHA-256; on a mismatch ``path`` is removed when ``remove``."""
    size = path.stat().st_size
    problem = (f"has {size:,} bytes, expected {p.size:,}" if size != p.size else None)
    if problem is None:
        found = sha256_file(path)
        problem = (None if found == p.sha256 else
                   f"has SHA-256 {found}, expected {p.sha256}")
    if problem is None:
        return
    if remove:
        path.unlink()
    removed = "; the download was removed" if remove else ""
    raise FetchError(f"{p.source.name} ({shown(path)}) {problem}{removed}")


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:15].lower()
    return start.startswith((b"<!doctype html", b"<html"))


def download(db: Database, p: Planned, folder: Path, progress: bool) -> Path:
    """Download ``p`` into ``folder`` (resuming ``NAME.part``), verify it and return the file."""
    dest = folder / p.source.name
    if dest.is_file():
        _verify(dest, p, remove=True)
        return dest
    part = folder / f"{p.source.name}.part"
    have = part.stat().st_size if part.is_file() else 0
    if have > p.size:
        part.unlink()
        have = 0
    if have < p.size:
        _check_space(folder, p.size - have, f"the download of {p.source.name}")
        have = _transfer(db, p, part, have, progress)
    if have < p.size:
        raise FetchError(f"the download of {p.source.name} stopped after {have:,} of {p.size:,} "
                         f"bytes ({p.url}); {part} is kept: run the same command again to resume")
    _verify(part, p, remove=True)
    os.replace(part, dest)
    return dest


def _open(db: Database, p: Planned, part: Path, have: int):
    headers = {"User-Agent": "clip-agiqa-fetch"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(p.url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the server's file is not the one begun: start over
            part.unlink()
            raise FetchError(f"{p.url} cannot continue {p.source.name} from byte {have:,} "
                             "(HTTP 416); the partial download was removed: run the same "
                             "command again to start over") from None
        raise FetchError(f"{p.url} answered HTTP {exc.code} {exc.reason} instead of "
                         f"{p.source.name}; {_manual_route(db, p, part)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach {p.url} ({reason}); without network, "
                         f"{_manual_route(db, p, part)}") from None


def _transfer(db: Database, p: Planned, part: Path, have: int, progress: bool) -> int:
    """One GET (with ``Range`` from ``have``) appended to ``part``; returns its size after."""
    from tqdm import tqdm  # deferred: --list and --help need no progress bar

    with _open(db, p, part, have) as response:
        kind = response.headers.get("Content-Type", "")
        first = response.read(min(CHUNK, p.size - have) or 1)
        if "text/html" in kind.lower() or _looks_like_html(first):
            raise FetchError(f"{p.url} answered with an HTML page, not {p.source.name} (a login, "
                             f"error or mirror page); {_manual_route(db, p, part)}")
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        mode = "ab" if have else "wb"
        with open(part, mode) as out, tqdm(total=p.size, initial=have, unit="B",
                                           unit_scale=True, unit_divisor=1024,
                                           desc=p.source.name, disable=not progress,
                                           file=sys.stderr) as bar:
            chunk = first
            try:
                while chunk:
                    if have + len(chunk) > p.size:
                        raise FetchError(f"{p.url} sent more than the {p.size:,} bytes of "
                                         f"{p.source.name}; nothing was kept")
                    out.write(chunk)
                    have += len(chunk)
                    bar.update(len(chunk))
                    chunk = response.read(CHUNK)
            except FetchError:
                out.close()
                part.unlink()
                raise
            except OSError as exc:
                if write_failure(exc):
                    raise FetchError(f"cannot write {part}: {write_failure(exc)} while "
                                     f"downloading {p.source.name}; what was downloaded is "
                                     "kept: free some space (or choose another --root) and run "
                                     "the same command again to resume") from None
                return have  # a dropped connection: reported by the caller, resumable
            except http.client.HTTPException:
                return have
    return have


# ------------------------------------------------------------------------------ unpacking
def _member_path(name: str, archive: Path) -> PurePosixPath:
    """The relative path of a zip member, refused when it would land outside the folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise FetchError(f"archive {shown(archive)} holds a member outside its folder ({shown(name)}); "
                         "refused, nothing was unpacked")
    return path


def unpack(archive: Path, target: Path) -> None:
    """Unpack the zip ``archive`` into ``target`` (created) after checking every member (no
    path outside ``target``, no links) and the free space for its unpacked size."""
    try:
        with zipfile.ZipFile(archive) as book:
            members = book.infolist()
            for member in members:
                _member_path(member.filename, archive)
                if stat.S_ISLNK(member.external_attr >> 16):
                    raise FetchError(f"archive {shown(archive)} holds a link ({member.filename!r}); "
                                     "refused, nothing was unpacked")
            target.mkdir(parents=True, exist_ok=True)
            _check_space(target, sum(m.file_size for m in members),
                         f"unpacking {archive.name}")
            for member in members:
                path = target.joinpath(*_member_path(member.filename, archive).parts)
                if member.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with book.open(member) as source, open(path, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"archive {shown(archive)} is truncated or corrupt ({exc}); nothing of it "
                         "was kept") from None
    except OSError as exc:
        if write_failure(exc):
            raise FetchError(f"cannot unpack {shown(archive)}: {write_failure(exc)}; nothing of it was "
                             "kept") from None
        raise


def _content_root(unpacked: Path, folder_name: str) -> Path:
    """``unpacked``, or its single top folder when that is named as the database folder."""
    entries = [e for e in unpacked.iterdir() if e.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and \
            entries[0].name.lower() == folder_name.lower():
        return entries[0]
    return unpacked


def merge_into(source: Path, target: Path) -> None:
    """Move the tree ``source`` into ``target`` (same file system), replacing files."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return
    for entry in source.iterdir():
        dest = target / entry.name
        if entry.is_dir() and dest.is_dir():
            merge_into(entry, dest)
        else:
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(entry, dest)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a user's folder (hard links where the file system allows: no second copy). Links
    are followed, as the loaders' image search follows them (``find_images``), except a link
    to a folder that holds it (a loop) and a broken link, which are left out."""
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    def loops_and_broken(folder: str, names: list[str]) -> set[str]:
        here = os.path.realpath(folder)
        left_out = set()
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            real = os.path.realpath(path)
            if not os.path.exists(path) or (os.path.isdir(real) and (
                    here == real or here.startswith(real.rstrip(os.sep) + os.sep))):
                left_out.add(name)
        return left_out
    shutil.copytree(source, target, copy_function=link_or_copy, dirs_exist_ok=True,
                    ignore=loops_and_broken)


# ------------------------------------------------------------------------------ checking
def check_database(db: Database, root: Path) -> int:
    """Run the loader of every config of ``db`` on ``root`` with its file check (every labelled
    image present); returns the number of labelled images. Raises the loader's
    ``MissingDataError``/``DatasetError``."""
    from dassl.config import get_cfg_default, merge_config
    from dassl.data.datasets import DATASET_REGISTRY

    from . import register
    from .config import add_dataset_config
    from .core import read_options

    register()  # `python -m datasets.fetch` imports the package without registering
    images = 0
    for config in db.configs:
        cfg = add_dataset_config(get_cfg_default())
        merge_config(cfg, [str(CONFIG_DIR / f"{config}.yaml")],
                     ["DATASET.ROOT", str(root), "DATASET.CHECK_FILES", "True"])
        data = DATASET_REGISTRY.get(db.name).load(read_options(cfg))
        images = max(images, sum(len(part) for part in data.parts.values()))
    return images


# ------------------------------------------------------------------------------ fetching
def _match_given(db: Database, planned: Sequence[Planned], given: Path) -> Planned:
    """The source a ``--from`` file is, by SHA-256; else a ``FetchError`` naming both hashes."""
    found = sha256_file(given)
    for p in planned:
        if p.sha256 == found:
            return p
    for other in DATABASES.values():
        for p in plan(other):
            if p.sha256 == found and other is not db:
                raise FetchError(f"--from {given} is {p.source.name} of {other.title}, not a "
                                 f"file of {db.title}: fetch {other.name} with it")
    expected = "; ".join(f"{p.source.name} {p.sha256}" for p in planned if not p.local)
    raise FetchError(f"--from {given} has SHA-256 {found}, which is no file of {db.title} "
                     f"(expected {expected}); a repacked archive from another mirror differs, "
                     "use the original file")


def fetch_database(db: Database, root: Path, given: Sequence[Path] = (), progress: bool = True,
                   say: Callable[[str], None] = print) -> int:
    """Fetch ``db`` into ``root/<folder>`` (see the module docstring); returns the number of
    labelled images the loader found. ``given``: ``--from`` files or folders."""
    if not db.sources:
        raise FetchError(f"{db.title} has no verified download source; get it by hand: "
                         f"{db.manual}")
    planned = plan(db)
    staging = root / STAGING
    build = staging / db.folder
    target = root / db.folder
    if target.is_dir() and not given:
        try:
            images = check_database(db, root)
        except MissingDataError:
            images = 0  # incomplete: fetched again, and merged into it
        if images:
            say(f"{db.title} in {target} is complete already: {images:,} labelled images")
            return images
    files = {p.source.name: p.local for p in planned if p.local}
    folders = [g for g in given if g.is_dir()]
    for g in given:
        if not g.exists():
            raise FetchError(f"--from {g} does not exist")
    mine = {_match_given(db, planned, g).source.name: g for g in given if g.is_file()}
    files.update(mine)
    if folders:
        say(f"Fetching {db.title} from {', '.join(map(str, folders))} (--from), with the files "
            f"this repository ships: {', '.join(n for n, f in files.items() if f)}")
    else:
        say(describe(db, planned, mine))
    staging.mkdir(parents=True, exist_ok=True)
    if build.exists():
        shutil.rmtree(build)  # an earlier run's half-unpacked folder
    try:
        if folders:
            for folder in folders:
                _copy_tree(folder, build)
        else:
            missing = [p for p in planned if p.source.name not in files]
            _check_space(root, sum(p.size for p in missing) +
                         sum(p.size for p in planned if p.source.unpack),
                         f"{db.title} (downloads and their unpacked size)")
            for p in missing:
                files[p.source.name] = download(db, p, staging, progress)
        _assemble(planned, files, build, staging, db, with_archives=not folders)
        images = _checked(db, build, staging, target, root)
    except BaseException:
        # Only an interrupted download (NAME.part) stays, for the next run to resume.
        shutil.rmtree(build, ignore_errors=True)
        for path in files.values():
            if path is not None and path.parent == staging:
                path.unlink(missing_ok=True)
        _remove_if_empty(staging)
        raise
    for p in planned:  # verified downloads are in place now; --from files are the user's
        if files.get(p.source.name) == staging / p.source.name:
            (staging / p.source.name).unlink()
    _remove_if_empty(staging)
    say(f"{db.title} is ready in {target}: {images:,} labelled images, all present")
    return images


def _assemble(planned: Sequence[Planned], files: dict, build: Path, staging: Path,
              db: Database, with_archives: bool) -> None:
    """Unpack the archives and place the single files into ``build`` (created by the first)."""
    for p in planned:
        path = files.get(p.source.name)
        if path is None:
            continue
        if p.local is not None and path == p.local:
            _verify(path, p, remove=False)
        if p.source.unpack:
            if not with_archives:
                continue
            unpacked = staging / f"{db.folder}.unpack"
            shutil.rmtree(unpacked, ignore_errors=True)
            try:
                unpack(path, unpacked)
                merge_into(_content_root(unpacked, db.folder), build)
            finally:
                shutil.rmtree(unpacked, ignore_errors=True)
        elif not (build / p.source.name).exists():  # a --from folder's own copy stays
            build.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, build / p.source.name)


def _checked(db: Database, build: Path, staging: Path, target: Path, root: Path) -> int:
    """The loader's check on the built folder, then the move into place."""
    if not target.exists():
        try:
            images = check_database(db, staging)
        except MissingDataError as exc:
            raise FetchError(f"{db.title} is incomplete after fetching, nothing was kept: "
                             f"{_one_line(exc, build, target)}") from None
        os.replace(build, target)
        return images
    merge_into(build, target)
    shutil.rmtree(build, ignore_errors=True)
    try:
        return check_database(db, root)
    except MissingDataError as exc:
        raise FetchError(f"{db.title} in {target} is still incomplete: "
                         f"{_one_line(exc, build, target)}") from None


def _one_line(exc: Exception, build: Path, target: Path) -> str:
    """The loader's message as one line, naming the target folder instead of the staging one
    (the folder listing and the CHECK_FILES hint left out: they are about training)."""
    lines = [line.strip() for line in str(exc).splitlines()
             if line.strip() and not line.startswith("(set DATASET.") and " contains: " not in line
             and "is empty" not in line]
    if not lines:  # an empty folder: the loader's one line is all there is to say
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:1]
    return " ".join(lines).replace(str(build), str(target))


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def fetch_if_absent(name: str, root: str, say: Callable[[str], None] = print) -> None:
    """Fetch the database of the dataset ``name`` when ``root`` exists and its folder does not
    (train.py, main.sh; ``DATASET.FETCH``). A root that does not exist is left to the loader's
    error: a mistyped ``--root`` must not start a download."""
    db = DATABASES.get(name)
    base = Path(os.path.expanduser(str(root))) if str(root).strip() else None
    if db is None or not db.sources or base is None or not base.is_dir() or \
            (base / db.folder).exists():
        return
    try:
        fetch_database(db, base, progress=sys.stderr.isatty(), say=say)
    except FetchError as exc:
        raise FetchError(f"dataset folder {base / db.folder} not found ({describe_dir(base)}); "
                         f"fetching it failed: {exc} (DATASET.FETCH False skips the "
                         "download)") from None


def repair_hint(name: str, root: str) -> str:
    """The fetch command that repairs an incomplete folder of dataset ``name`` ("" if none)."""
    db = DATABASES.get(name)
    if db is None or not db.sources:
        return ""
    return (f"\nto fetch the missing files (verified): python -m datasets.fetch {db.name} "
            f"--root {shown(root)}")


# ------------------------------------------------------------------------------ command line
def list_sources() -> str:
    """``--list``: every database's files, sizes in bytes, sources and licences (offline)."""
    lines = []
    for db in DATABASES.values():
        lines.append(f"{db.title} ({', '.join(db.configs)}), folder {db.folder}/, "
                     f"licence {db.licence}")
        if not db.sources:
            lines.append(f"  no verified source is known; get it by hand: {db.manual}")
        for p in plan(db):
            where = f"shipped: {p.local}" if p.local else p.url
            lines.append(f"  {p.source.name}  {p.size:,} bytes  sha256 {p.sha256}\n"
                         f"    {where}\n    licence: {p.source.licence}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (a job's time limit, kill) stops a download as Ctrl-C does, keeping its part.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.list:
            print(list_sources())
            return 0
        if not args.names:
            raise FetchError("name a database to fetch, e.g. python -m datasets.fetch AGIQA "
                             "(--list shows them all)")
        try:
            databases = list({by_config(n).name: by_config(n) for n in args.names}.values())
        except KeyError as exc:
            raise FetchError(exc.args[0]) from None
        given = [Path(os.path.expanduser(g)) for g in args.given]
        if given and len(databases) > 1:
            raise FetchError("--from goes with one database at a time")
        root = Path(os.path.expanduser(args.root))
        for folder, what in ((root, "--root"), (root.parent, "its parent folder")):
            if folder.exists() and not folder.is_dir():
                raise FetchError(f"--root {shown(root)}: {what} {shown(folder)} is a file, not a folder")
        if not root.parent.is_dir():
            raise FetchError(f"--root {shown(root)}: its parent folder {root.parent} does not exist")
        created = not root.exists()
        root.mkdir(exist_ok=True)
        try:
            for db in databases:
                fetch_database(db, root, given, progress=not args.no_progress)
        finally:
            if created:  # a failed fetch leaves no empty root for main.sh to download into
                _remove_if_empty(root / STAGING)
                _remove_if_empty(root)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be written: full, read-only, no permission
        return report_user_error(exc)
    except KeyboardInterrupt:
        print(f"error: interrupted; a partial download is kept in "
              f"{Path(os.path.expanduser(args.root)) / STAGING} and resumed by the same command",
              file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
