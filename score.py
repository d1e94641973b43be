"""Score your own images with a trained CLIP-AGIQA run.

Examples:
    python score.py output/run my_images/ extra.png --output scores.csv
    python score.py output/run imgs/ --labels my_mos.csv --device cuda --batch-size 64
    python score.py original_output_dir imgs/ --backbone ViT-B/16 --level-names bad good
    python score.py output/run --list DATA/AIGIQA-20K/info_test.xlsx --output test_scores.csv
    python score.py output/run --serve --port 7860     # the local scoring page (Gradio)

RUN_DIR is one of our output directories (the model comes from the spec in its checkpoints) or the
original code's output directory (`prompt_learner/` and `regression/` only: N_CTX, CSC, the
number of levels and the head input are read off the checkpoints, the rest comes from
--backbone, --level-names and --class-token-position). Inputs are image files or folders
(searched recursively for image files). The CSV has the columns `name,score` (score = predicted
MOS, higher is better); a name is the file name for files given directly and the path relative
to the folder for files found in a folder. With --labels (CSV with columns name,mos, or a
database's own label file; --mos-column picks the column) the SRCC/PLCC/KRCC/RMSE against those MOS (the file is read like the training label files: any
common encoding, delimiter, decimal comma, or .xlsx) are printed and saved next to the CSV as
`<csv name>.metrics.json`. A run trained with prompt-conditioned level prompts
(TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE) needs `--prompts`, a CSV with columns name,prompt giving
each scored image's generation prompt (names as in the output CSV, or file names). With
--list FILE (a label file, CSV or .xlsx, whose `name` column lists the images; a MOS column is
not needed, e.g. AIGIQA-20K's info_val/info_test) exactly those images are scored, in the file's
order and under its names; they are looked up in the given folders (default: the list file's
folder) and their direct sub-folders. The console shows one line on the run (model config,
precision, device), the progress bar and where the files went; `--verbose` adds the
model-building messages. Ctrl-C or SIGTERM keeps the rows scored so far in
`<csv name>.partial.csv` (an existing CSV at --output is left as it was); the same command run
again scores only the rest. An image that cannot be read or decoded stops the scoring with one
`error:` line naming it (the rows scored before it are kept the same way); with
`--skip-unreadable` it is skipped instead, named on stderr and in `<csv name>.skipped.csv`
(columns name,reason), and the rest are scored. Folders are searched by
`dassl.utils.image_files.find_images` (links followed once; every extension Pillow reads, any
letter case; what it leaves out is named). Writing into a run folder takes its lock (one writer
at a time).
Exit status: 0 done, 2 bad input (one `error:` line on stderr), 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import json
import math
import os
import sys
import types
from typing import Sequence

REPO_DIR = os.path.dirname(os.path.abspath(__file__))


def load_standalone(relative_path: str) -> types.ModuleType:
    """A module of this repository that imports only the standard library, loaded from its file
    (``relative_path``, from the repository root) without its package's ``__init__``, which
    imports torch: the way the shell scripts run ``datasets/registry.py``."""
    name = "_standalone_" + relative_path.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO_DIR, relative_path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# `--help` (any argv with -h or --help exits in argument parsing) reads the two facts its text
# needs from their standard-library-only files; everything else first imports torch (seconds).
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    DATABASES = load_standalone("datasets/registry.py").DATABASES
    UPSTREAM_LEVEL_NAMES = load_standalone("dassl/data/levels.py").UPSTREAM_LEVEL_NAMES
else:
    from dassl.data.levels import UPSTREAM_LEVEL_NAMES
    from datasets.registry import DATABASES
    from tqdm import tqdm
    from dassl.evaluation import iqa_metrics
    from dassl.evaluation.metric_names import RAW_METRICS
    from dassl.engine.interrupt import terminate_as_interrupt
    from dassl.utils import (EXIT_INTERRUPTED, ImageReadError, InputError, OutputWriteError,
                             atomic_write_text, count_noun, path_problem, report_user_error, shown)
    from dassl.names import look_alike
    from dassl.utils.image_files import SHOW_SKIPPED, find_images
    from dassl.utils.run_dir import is_run_folder
    from dassl.utils.run_lock import lock_run_dir
    from dassl.utils.label_file import LabelFileError, parse_number, read_label_file
    from trainers.inference.scorer import load_scorer, scores_csv_text
    from trainers.user_errors import USER_ERRORS, error_message

# Label-file columns understood without --mos-column, first match wins (letter case ignored):
# ours (name, mos), then each database's own label file, its name and default-task MOS column
# as the registry gives them (AGIQA-1K: Image, MOS; AGIQA-3K: name, mos_quality; ...).
NAME_COLUMNS = tuple(dict.fromkeys(["name", *(db.name_column.lower() for db in DATABASES.values())]))
MOS_COLUMNS = tuple(dict.fromkeys(["mos", *(next(iter(db.task_columns.values())).lower()
                                            for db in DATABASES.values())]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Score images with a trained CLIP-AGIQA run "
                                                 "(CSV name,score).")
    parser.add_argument("run_dir", help="trained run directory (ours or the original code's)")
    parser.add_argument("inputs", nargs="*", help="image files or folders (with --list: the "
                                                  "folders holding the listed images)")
    parser.add_argument("--list", dest="list_file", default=None, metavar="FILE",
                        help="label file (CSV or .xlsx, column name; MOS not needed) naming the "
                             "images to score, e.g. info_test.xlsx")
    parser.add_argument("--output", default="scores.csv", help="CSV to write (default %(default)s)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--cpu-prec", choices=("fp32", "bf16", "fp16"), default=None,
                        help="on a CPU, compute in this precision (TRAINER.CLIP_AGIQA.CPU_PREC) "
                             "instead of the one the run's checkpoint records (default)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call")
    parser.add_argument("--workers", type=int, default=4, help="image decoding threads")
    parser.add_argument("--epoch", type=int, default=None,
                        help="load model.pth.tar-<epoch> (default: the run's deployed model)")
    parser.add_argument("--backbone", default=None,
                        help="CLIP name or weights file (MODEL.BACKBONE.NAME); default: the "
                             "run's, ViT-B/16 for the original code's runs")
    parser.add_argument("--level-names", nargs="+", default=None,
                        help="level names, worst first, for the original code's runs "
                             f"(default: {' '.join(UPSTREAM_LEVEL_NAMES)})")
    parser.add_argument("--class-token-position", choices=("end", "middle", "front"),
                        default=None, help="for the original code's runs (default end)")
    parser.add_argument("--labels", default=None,
                        help="label file (CSV or .xlsx) with the images' names and MOS: report "
                             "metrics; a database's own file works as it is ("
                             + ", ".join(f"{db.title}: {db.name_column},"
                                         f"{next(iter(db.task_columns.values()))}"
                                         for db in DATABASES.values()) + ")")
    parser.add_argument("--mos-column", default=None, metavar="NAME",
                        help="the --labels column holding the MOS (default: the first of "
                             f"{', '.join(MOS_COLUMNS)}), e.g. mos_align for AGIQA-3K's "
                             "alignment MOS")
    parser.add_argument("--prompts", default=None,
                        help="CSV with columns name,prompt: each image's generation prompt (runs "
                             "with TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE)")
    parser.add_argument("--serve", action="store_true",
                        help="start the local scoring page (Gradio, requirements-app.txt) "
                             "instead of scoring INPUTS; see docs/scoring.md")
    parser.add_argument("--host", default="127.0.0.1",
                        help="--serve: address to listen on (default %(default)s)")
    parser.add_argument("--port", type=int, default=7860,
                        help="--serve: port (default %(default)s)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="skip images that cannot be read or decoded (and, with --list, "
                             "listed images that are missing) instead of stopping at the first: "
                             "they are named on stderr and in <csv name>.skipped.csv "
                             "(columns name,reason)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--verbose", action="store_true",
                        help="also print the model-building messages (prompt initialisation, "
                             "checkpoint loading) on stderr")
    return parser


def collect_images(inputs: Sequence[str], notes: list[str] | None = None,
                   name_all: bool = False) -> list[tuple[str, str]]:
    """`(name, path)` of every image: files as given, folders searched recursively by
    `dassl.utils.image_files.find_images` (links followed, every extension Pillow reads; what it
    skips is named in one line per folder, the first few unless `name_all` (--verbose), appended
    to `notes`, else printed on stderr).

    Raises `FileNotFoundError` for a missing input or an input without images and `InputError`
    for two images with the same name.
    """
    found: list[tuple[str, str]] = []
    for item in inputs:
        if os.path.isfile(item):
            found.append((os.path.basename(item), item))
        elif os.path.isdir(item):
            walk = find_images(item)
            line = walk.skipped_line(None if name_all else SHOW_SKIPPED,
                                     more_hint=" (--verbose names them all)")
            if line and notes is not None:
                notes.append(line)
            elif line:
                print(line, file=sys.stderr)
            if not walk.images:
                raise FileNotFoundError(f"no image files in folder {shown(item)} (extensions "
                                        "Pillow reads, e.g. .jpg .png .webp .tif)")
            found.extend(walk.images)
        elif os.path.lexists(item):
            raise FileNotFoundError(f"input {shown(item)} is a broken link")
        else:
            raise FileNotFoundError(f"input not found: {shown(item)}")
    seen: dict[str, str] = {}
    for name, path in found:
        if name in seen:
            raise InputError(f"two images are named {shown(name)} ({shown(seen[name])} and "
                             f"{shown(path)}); score them in separate calls")
        seen[name] = path
    return found


def list_images(list_file: str, folders: Sequence[str],
                missing_ok: bool = False) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """`(name, path)` of every image named in `list_file` (column `name`), in its order, and
    `(name, reason)` of the listed images that are not there (only with `missing_ok`).

    Each name is looked up in `folders` (default: the list file's folder) and their direct
    sub-folders (`find_images`: links followed, hidden and non-image files left out), the first
    hit winning. Raises `FileNotFoundError` naming the missing images and the folders searched
    (unless `missing_ok`); a name listed twice is a `DatasetError` from the reader.
    """
    from datasets.labels import read_label_table  # deferred: the datasets package is optional

    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"--list file {shown(list_file)} {path_problem(list_file, 'file')}")
    names = read_label_table(list_file, None)["name"].tolist()
    search = []
    for folder in folders or [os.path.dirname(os.path.abspath(list_file))]:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"folder {shown(folder)} {path_problem(folder, 'folder')}")
        search.append(folder)
        search += sorted(entry.path for entry in os.scandir(folder)
                         if entry.is_dir() and not entry.name.startswith("."))
    walks = [find_images(folder, recursive=False) for folder in search]
    present = [(walk.folder, dict(walk.images)) for walk in walks]
    found, missing = [], []
    for name in names:
        hit = next((files[name] for folder, files in present if name in files), None)
        if hit is None:
            missing.append(name)
        else:
            found.append((name, hit))
    why = {n: reason for walk in walks for n, reason in walk.skipped}
    if missing:
        everything = [n for _, files in present for n in files]
        for name in missing:
            alike = "" if name in why else look_alike(name, everything)
            if alike:
                why[name] = alike
    if missing and missing_ok:
        return found, [(n, why.get(n, "not found")) for n in missing]
    if missing:
        examples = ", ".join(shown(n) + (f" ({why[n]})" if n in why else "") for n in missing[:5])
        raise FileNotFoundError(f"{len(missing)} of the {len(names)} images listed in "
                                f"{shown(list_file)} are in none of "
                                f"[{', '.join(map(shown, search))}], e.g. {examples}"
                                " (--skip-unreadable scores the others)")
    return found, []


def label_columns(header: Sequence[str], mos_column: str | None) -> tuple[str, str]:
    """`(name column, MOS column)` of a labels file with these header cells (letter case
    ignored): the first of `NAME_COLUMNS` present; `mos_column`, else the first of `MOS_COLUMNS`
    (`mos`, then the databases' own). Raises `LabelFileError` naming what is there."""
    present = {str(cell).lower(): str(cell) for cell in header}
    name = next((present[c] for c in NAME_COLUMNS if c in present), None)
    wanted = (mos_column,) if mos_column else MOS_COLUMNS
    mos = next((present[c.lower()] for c in wanted if c.lower() in present), None)
    if name is None or mos is None:
        names = " or ".join(NAME_COLUMNS)
        wanted_text = (f"a name column ({names}) and column {mos_column!r} (--mos-column)"
                       if mos_column
                       else f"columns name,mos (or a database's own, letter case ignored: "
                            f"{' or '.join(NAME_COLUMNS[1:])} for the name, "
                            f"{' or '.join(MOS_COLUMNS[1:])} for the MOS; other MOS columns "
                            "with --mos-column NAME)")
        raise LabelFileError(f"labels file (--labels) needs {wanted_text}; its columns: "
                             f"{', '.join(map(str, header))}")
    return name, mos


def read_labels(path: str, mos_column: str | None = None) -> dict[str, float]:
    """`{name: mos}` of a label file (columns: see `label_columns`), read like the training
    label files (`dassl.utils.label_file`: any common encoding, delimiter, decimal comma,
    .xlsx). Rows with an empty MOS are left out; raises `LabelFileError` naming the file, line
    and cause."""
    what = "labels file (--labels)"
    name_column, mos = label_columns(list(read_label_file(path, (), what=what).columns),
                                     mos_column)
    table = read_label_file(path, (name_column, mos), what=what)
    labels = {}
    for name, cell, line in zip(table[name_column], table[mos], table.attrs["lines"]):
        try:
            value = parse_number(cell)
        except ValueError:
            raise LabelFileError(f"{shown(path)}, line {line}: {mos} {shown(cell)} of {shown(name)} "
                                 "is not a number (expected e.g. 3.25 or 3,25)") from None
        if math.isfinite(value):
            labels[name] = value
    return labels


def label_metrics(names: Sequence[str], scores: Sequence[float],
                  labels: dict[str, float]) -> dict:
    """Metrics of the scored images that have a label (matched by name, else by file name)."""
    pred, mos = [], []
    for name, score in zip(names, scores):
        key = name if name in labels else os.path.basename(name)
        if key in labels:
            pred.append(score)
            mos.append(labels[key])
    if not pred:
        raise InputError("no scored image has a label: the names in the labels file must be the "
                         "image names of the CSV (or their file names)")
    metrics = {k: (v if math.isfinite(v) else None) for k, v in iqa_metrics(pred, mos).items()}
    return {"n_scored": len(names), "n_labelled": len(pred), "metrics": metrics}


def image_prompts(images: Sequence[tuple[str, str]], path: str | None,
                  needed: bool) -> list[str] | None:
    """The generation prompt of every `(name, path)` image from the `name,prompt` CSV `path`
    (looked up by name, else by file name); None when the run does not need prompts.

    Raises `InputError` when the run needs prompts and none are given or an image has none.
    """
    if not needed:
        if path:
            print(f"note: --prompts {shown(path)} is ignored: this run's level prompts carry no "
                  "generation prompt", file=sys.stderr)
        return None
    if not path:
        raise InputError("this run conditions its level prompts on each image's generation "
                         "prompt (TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE): pass --prompts, a CSV with "
                         "columns name,prompt")
    from datasets.prompts import read_prompt_file

    table = read_prompt_file(path)
    lookup = dict(zip(table["name"], table["prompt"]))
    prompts, missing = [], []
    for name, _ in images:
        key = name if name in lookup else os.path.basename(name)
        if key not in lookup:
            missing.append(name)
        prompts.append(lookup.get(key, ""))
    if missing:
        raise InputError(f"--prompts {shown(path)} has no prompt for {len(missing)} of {len(images)} "
                         f"images, e.g. {shown(missing[0])}")
    return prompts


def check_output(path: str) -> None:
    """Raise `InputError` now, before any image is scored, when `path` cannot be written: a
    folder, a missing or non-writable parent folder, a non-writable existing file."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        problem = "it is a folder (give a file name, e.g. scores.csv)"
    elif not os.path.isdir(parent):
        problem = f"folder {shown(parent)} does not exist"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"folder {shown(parent)} is not writable"
    elif os.path.exists(path) and not os.access(path, os.W_OK):
        problem = "the file is not writable"
    else:
        return
    raise InputError(f"cannot write {shown(path)}: {problem}")


def write_output(path: str, text: str) -> None:
    """Write `text` to `path` atomically; raises `InputError` when it cannot be written (a
    missing folder, no permission, a full disk)."""
    try:
        atomic_write_text(path, text)
    except OutputWriteError:
        raise  # a full or read-only disk, named with the path already
    except OSError as exc:
        raise InputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from exc


def write_scores(path: str, names: Sequence[str], scores: Sequence[float]) -> None:
    """CSV `name,score` (`scores_csv_text`), written atomically."""
    write_output(path, scores_csv_text(names, scores))


class ScoringInterrupted(KeyboardInterrupt):
    """Scoring stopped by Ctrl-C or SIGTERM; ``str()`` says what was kept where."""


def partial_path(csv_path: str) -> str:
    """Where an interrupted run keeps the rows scored so far: ``<csv name>.partial.csv``."""
    stem = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
    return stem + ".partial.csv"


def partial_identity(args: argparse.Namespace) -> str:
    """What must match for a partial file's rows to be reused: the model's run folder and
    everything that changes its scores, as one comparable string."""
    return json.dumps({"run_dir": os.path.abspath(args.run_dir), "epoch": args.epoch,
                       "backbone": args.backbone, "level_names": args.level_names,
                       "class_token_position": args.class_token_position,
                       "cpu_prec": args.cpu_prec, "prompts": args.prompts}, sort_keys=True)


def write_partial(csv_path: str, identity: str, names: Sequence[str],
                  scores: dict[str, float]) -> None:
    """The rows scored so far (in image order) as ``partial_path``, with the scoring's identity
    in a ``<partial>.json`` beside it."""
    path = partial_path(csv_path)
    write_scores(path, [n for n in names if n in scores], [scores[n] for n in names if n in scores])
    write_output(path + ".json", identity + "\n")


def read_partial(csv_path: str, identity: str, names: Sequence[str]) -> dict[str, float]:
    """``{name: score}`` an interrupted run of the same scoring (``partial_identity``) left for
    these images; ``{}`` when there is none, or (said on stderr) it is of another scoring."""
    path = partial_path(csv_path)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path + ".json", encoding="utf-8") as handle:
            same = handle.read().strip() == identity
        with open(path, encoding="utf-8", newline="") as handle:
            rows = {row["name"]: float(row["score"]) for row in csv.DictReader(handle)}
    except (OSError, ValueError, KeyError, TypeError):
        same, rows = False, {}
    if not same:
        print(f"note: {path} is of another scoring (other run, options or an unreadable file): "
              "all images are scored again and it is replaced", file=sys.stderr)
        return {}
    wanted = set(names)
    return {name: score for name, score in rows.items() if name in wanted}


def remove_partial(csv_path: str) -> None:
    """Delete the partial file (and its identity) once the complete CSV is written."""
    for path in (partial_path(csv_path), partial_path(csv_path) + ".json"):
        if os.path.exists(path):
            os.remove(path)


def skipped_path(csv_path: str) -> str:
    """Where `--skip-unreadable` names the images it skipped: ``<csv name>.skipped.csv``."""
    stem = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
    return stem + ".skipped.csv"


def write_skipped(csv_path: str, skipped: Sequence[tuple[str, str]]) -> None:
    """``skipped_path`` with columns name,reason (written atomically); an earlier one is
    removed when nothing was skipped, so the file always belongs to the CSV beside it."""
    path = skipped_path(csv_path)
    if not skipped:
        if os.path.exists(path):
            os.remove(path)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "reason"])
    writer.writerows(skipped)
    write_output(path, buffer.getvalue())


def skipped_summary(skipped: Sequence[tuple[str, str]], path: str, limit: int = 5) -> str:
    """``"skipped 2 unreadable images (...): a.png (reason), ...; all in PATH"``."""
    listed = "; ".join(f"{shown(name)} ({reason})" for name, reason in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return (f"skipped {count_noun(len(skipped), 'unreadable image')} (--skip-unreadable): "
            f"{listed}{more}; all of them in {path}")


def unreadable_reason(exc: BaseException) -> str:
    """Why an image could not be scored, in one line (an `ImageReadError`'s reason)."""
    return getattr(exc, "reason", None) or error_message(exc)


def metrics_path(csv_path: str) -> str:
    stem = csv_path[:-4] if csv_path.lower().endswith(".csv") else csv_path
    return stem + ".metrics.json"


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def load_run_scorer(args: argparse.Namespace):
    """The run's `Scorer` from the command line's model options; the model-building messages
    go to stderr with --verbose, else nowhere."""
    internals = sys.stderr if args.verbose else io.StringIO()
    with contextlib.redirect_stdout(internals):
        return load_scorer(args.run_dir, device=args.device, epoch=args.epoch,
                           backbone=args.backbone, level_names=args.level_names,
                           class_token_position=args.class_token_position,
                           cpu_precision=args.cpu_prec)


def serve_page(args: argparse.Namespace) -> int:
    """`--serve`: the local scoring page (`trainers.inference.app`) until Ctrl-C."""
    from trainers.inference.app import import_gradio, serve

    if args.inputs or args.list_file or args.labels:
        raise InputError("--serve takes images on the page, not on the command line: drop "
                         "the image arguments, --list and --labels")
    if not 0 < args.port < 65536:
        raise InputError(f"--port must be between 1 and 65535, got {args.port}")
    import_gradio()  # before the model: a missing Gradio is one error line at once
    scorer = load_run_scorer(args)
    print(f"Scoring page of {args.run_dir} on http://{args.host}:{args.port} (Ctrl-C stops it)",
          file=sys.stderr)
    serve(scorer, args.run_dir, host=args.host, port=args.port)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.serve:
        return serve_page(args)
    skipped: list[tuple[str, str]] = []  # (name, reason) of images --skip-unreadable left out
    notes: list[str] = []  # what the folder search left out: said once scoring starts
    if args.list_file:
        images, skipped = list_images(args.list_file, args.inputs, args.skip_unreadable)
    elif args.inputs:
        images = collect_images(args.inputs, notes, name_all=args.verbose)
    else:
        raise InputError("give image files or folders, or --list FILE")
    labels = read_labels(args.labels, args.mos_column) if args.labels else None
    if args.mos_column and not args.labels:
        raise InputError("--mos-column names a column of the --labels file: pass --labels too")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}")
    check_output(args.output)
    if labels is not None:
        check_output(metrics_path(args.output))
    # Model-building messages are internals: on stderr with --verbose, else dropped (stdout
    # carries only the metrics line).
    internals = sys.stderr if args.verbose else io.StringIO()
    scorer = load_run_scorer(args)
    print(f"Scoring {count_noun(len(images), 'image')} with {args.run_dir} (model config from "
          f"{scorer.run.config_source}, {scorer.precision} on {scorer.device})", file=sys.stderr)
    if scorer.run.precision_note:
        print(scorer.run.precision_note, file=sys.stderr)
    for note in notes:
        print(note, file=sys.stderr)

    def progress(iterator, total):
        return tqdm(iterator, total=total, desc="scoring", unit="batch", file=sys.stderr,
                    disable=args.no_progress)

    prompts = image_prompts(images, args.prompts, scorer.needs_prompts)
    names = [n for n, _ in images]
    identity = partial_identity(args)
    done = read_partial(args.output, identity, names)
    todo = [i for i, name in enumerate(names) if name not in done]
    if done:
        print(f"continuing: {len(done)} of {len(names)} images were scored by an interrupted run "
              f"({partial_path(args.output)}); scoring the other {len(todo)}", file=sys.stderr)
    scored: list[float] = []

    def keep_scored() -> None:
        """The finite scores so far into `done` (an unreadable image scores NaN)."""
        done.update((names[i], score) for i, score in zip(todo, scored) if math.isfinite(score))

    def skip(index: int, exc: BaseException) -> None:
        skipped.append((names[todo[index]], unreadable_reason(exc)))

    try:
        with contextlib.redirect_stdout(internals):
            # (a truncated prompt also warns on stderr)
            for batch in scorer.score_batches(
                    [images[i][1] for i in todo], batch_size=args.batch_size,
                    workers=args.workers, progress=progress,
                    prompts=None if prompts is None else [prompts[i] for i in todo],
                    unreadable=skip if args.skip_unreadable else None):
                scored.extend(batch.tolist())
    except KeyboardInterrupt as exc:
        keep_scored()
        write_partial(args.output, identity, names, done)
        raise ScoringInterrupted(
            f"interrupted ({str(exc) or 'Ctrl-C'}): {len(done)} of {len(names)} images scored; "
            f"their rows are in {partial_path(args.output)}"
            + (f" ({args.output} is left as it was)" if os.path.exists(args.output) else "")
            + "; run the same command again to score the rest") from None
    except ImageReadError as exc:
        keep_scored()
        kept = ""
        if done:
            write_partial(args.output, identity, names, done)
            kept = (f"; the {count_noun(len(done), 'image')} scored so far are kept in "
                    f"{partial_path(args.output)}")
        raise InputError(f"{error_message(exc)}{kept}; add --skip-unreadable to score the other "
                         "images and name the unreadable ones") from None
    keep_scored()
    names = [name for name in names if name in done]
    scores = [done[name] for name in names]
    write_scores(args.output, names, scores)
    write_skipped(args.output, skipped)
    remove_partial(args.output)
    if skipped:
        print(skipped_summary(skipped, skipped_path(args.output)), file=sys.stderr)
    print(f"Scores written to {args.output}", file=sys.stderr)
    if labels is not None:
        report = label_metrics(names, scores, labels)
        report.update(run_dir=os.path.abspath(args.run_dir), labels=os.path.abspath(args.labels))
        if skipped:
            report["n_skipped"] = len(skipped)
        path = metrics_path(args.output)
        write_output(path, json.dumps(report, indent=2) + "\n")
        values = "  ".join(f"{k.upper()} {_fmt(report['metrics'][k])}" for k in RAW_METRICS)
        print(f"{values}  (n = {report['n_labelled']} of {report['n_scored']} images labelled)")
        print(f"Metrics written to {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Score the images; returns the exit status (0 done, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_intermixed_args(argv)
    try:
        folder = os.path.dirname(os.path.abspath(args.output))
        # Writing into a run folder: one writer at a time (its training, an evaluation, this).
        lock = lock_run_dir(folder, what="run folder") if is_run_folder(folder) else None
        try:
            with terminate_as_interrupt():
                return run(args)
        finally:
            if lock is not None:
                lock.release()
    except ScoringInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as exc:
        print(f"interrupted ({str(exc) or 'Ctrl-C'}) before any image was scored; nothing written",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        return report_user_error(exc, message=error_message(exc, weights_option="--backbone"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
