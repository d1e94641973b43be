"""The output-directory contract (the names of the files a run writes at the top of
``OUTPUT_DIR``), what is already in an output directory, and moving a previous run aside.

A run directory holds ``config.yaml`` (see ``run_record``), checkpoints under
``<module>/checkpoint`` pointers and, once finished, ``results.json``. These helpers let the
command line decide between "already finished", "resume" and "refuse" without writing anything
(`check_output_dir` is that decision).
"""
from __future__ import annotations

import datetime
import os
import shutil
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence

import yaml

from .errors import ConfigError, UserError
from .run_lock import LOCK_FILE
from .run_record import CONFIG_FILE, DATA_PATH_KEYS, PATH_KEYS, RUN_INFO_FILE
from .errors import shown
from .tools import describe_dir, path_problem, read_json
from .torchtools import BEST_MODEL_NAME, BEST_POINTER, LATEST_POINTER, checkpoint_file_name

__all__ = ["RESULTS_FILE", "PREDICTIONS_FILE", "SCATTER_FILE", "REPORT_FILE", "CMAT_FILE",
           "SPLITS_DIR", "TENSORBOARD_DIR",
           "SWEEP_RUN_FILE", "SWEEP_LOG_FILE", "SWEEP_JOB_FILE",
           "IGNORED_KEYS", "flatten_config", "read_config_file",
           "config_differences", "same_path", "read_results", "checkpoint_dirs", "is_run_folder",
           "missing_folders", "remove_made_folders", "foreign_entries", "check_new_run_folder",
           "RunDirError", "check_run_dir",
           "move_previous_run",
           "check_output_dir"]

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.csv"
SCATTER_FILE = "scatter.png"
REPORT_FILE = "report.html"  # the run's page (trainers.run_report); a sweep's page has the name too
CMAT_FILE = "cmat.pt"  # the confusion matrix (TEST.COMPUTE_CMAT, classification only)
SPLITS_DIR = "splits"
TENSORBOARD_DIR = "tensorboard"
# What a sweep writes into each of its run folders (scripts/sweeps): the run's identity, written
# when the run is planned or submitted, the log of its launches and its cluster job's record.
SWEEP_RUN_FILE = "sweep_run.json"
SWEEP_LOG_FILE = "sweep.log"
SWEEP_JOB_FILE = "sweep_job.json"
# Keys that may differ between the runs of one experiment: where things are (and whether a
# missing database is downloaded, which parts' images are checked), how fast they load, how much
# is printed, and the device (resuming a GPU run on a CPU is allowed).
IGNORED_KEYS = frozenset({"OUTPUT_DIR", "RESUME", "DATASET.ROOT", "DATASET.FETCH",
                          "DATASET.CHECK_PARTS",
                          "DATALOADER.NUM_WORKERS", "TRAIN.PRINT_FREQ", "VERBOSE", "USE_CUDA"})
# Files and folders a run writes at the top of OUTPUT_DIR (module folders are found by content).
_RUN_FILES = (RESULTS_FILE, PREDICTIONS_FILE, SCATTER_FILE, REPORT_FILE, CMAT_FILE, CONFIG_FILE,
              RUN_INFO_FILE, SPLITS_DIR, TENSORBOARD_DIR)
_PREVIOUS_PREFIX = "previous-"
_SHOW_DIFFS = 8  # config differences an error message lists


def flatten_config(cfg: Any) -> dict[str, Any]:
    """``{"A.B.C": value}`` of a yacs ``CfgNode`` or nested dict, values as plain YAML data
    (tuples become lists), so a dumped-and-reloaded config compares equal to the original."""
    if hasattr(cfg, "dump"):
        cfg = yaml.safe_load(cfg.dump())
    flat: dict[str, Any] = {}

    def walk(node: Mapping, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value
    walk(cfg or {}, "")
    return flat


def read_config_file(path: str) -> Optional[dict[str, Any]]:
    """Flattened content of a stored ``config.yaml``; None when the file does not exist."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the stored config {shown(path)}: {exc}; delete it (or pass "
                          "--force) to reuse the directory") from exc
    if not isinstance(data, Mapping):
        raise ConfigError(f"the stored config {shown(path)} is not a YAML mapping")
    return flatten_config(data)


def same_path(old: Any, new: Any, bases: Sequence[str] = ()) -> bool:
    """Whether two values of a path-valued key (``PATH_KEYS``) name the same thing: equal
    after normalising, or one existing file or folder. A relative ``old`` is looked up under
    each of ``bases`` (the stored run's working directory first), a relative ``new`` under the
    current working directory."""
    if not (isinstance(old, str) and isinstance(new, str)) or not old or not new:
        return old == new
    if os.path.normpath(old) == os.path.normpath(new):
        return True
    new_path = os.path.expanduser(new)
    if not os.path.exists(new_path):
        return False
    old = os.path.expanduser(old)
    candidates = [old] if os.path.isabs(old) else [os.path.join(b, old) for b in bases]
    for candidate in candidates:
        try:
            if os.path.exists(candidate) and os.path.samefile(candidate, new_path):
                return True
        except OSError:
            continue
    return False


def config_differences(stored: Mapping[str, Any], current: Mapping[str, Any],
                       defaults: Optional[Mapping[str, Any]] = None,
                       ignore: Iterable[str] = IGNORED_KEYS,
                       bases: Sequence[str] = (), data_bases: Sequence[str] = ()) -> list[str]:
    """``"KEY: stored -> current"`` for every key whose value differs, sorted.

    A key missing from ``stored`` (a config written before the key existed) counts as its value
    in ``defaults``; keys in ``ignore`` are skipped. Path-valued keys (``PATH_KEYS``) differ
    only when they name different things (``same_path``; ``bases``: where a relative path is
    resolved, the working directory; ``data_bases``: the folders a
    relative ``DATA_PATH_KEYS`` value may be relative to, the database folders).
    """
    defaults = defaults or {}
    ignored = set(ignore)
    missing = object()
    lines = []
    for key in sorted(set(stored) | set(current)):
        if key in ignored:
            continue
        old = stored.get(key, defaults.get(key, missing))
        new = current.get(key, missing)
        if key in PATH_KEYS and same_path(old, new,
                                          data_bases if key in DATA_PATH_KEYS else bases):
            continue
        if old != new:
            shown_old = "(absent)" if old is missing else repr(old)
            shown_new = "(absent)" if new is missing else repr(new)
            lines.append(f"{key}: {shown_old} -> {shown_new}")
    return lines


def read_results(output_dir: str) -> Optional[dict]:
    """``results.json`` of ``output_dir`` when it is a readable JSON object with a ``mode``."""
    try:
        results = read_json(os.path.join(output_dir, RESULTS_FILE))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) and "mode" in results else None


def checkpoint_dirs(output_dir: str) -> list[str]:
    """Subfolders of ``output_dir`` holding checkpoints (a pointer or a model file), sorted."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for entry in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, entry)
        if entry.startswith(_PREVIOUS_PREFIX) or not os.path.isdir(path):
            continue
        names = os.listdir(path)
        if any(n in (LATEST_POINTER, BEST_POINTER, BEST_MODEL_NAME)
               or n.startswith("model.pth.tar-") for n in names):
            found.append(path)
    return found


def is_run_folder(path: str) -> bool:
    """Whether folder ``path`` holds a run (a run record, results, a checkpoint folder or a run
    folder lock): a folder whose writers take ``dassl.utils.run_lock``'s lock."""
    if not os.path.isdir(path):
        return False
    marks = (CONFIG_FILE, RUN_INFO_FILE, RESULTS_FILE, LOCK_FILE)
    return any(os.path.exists(os.path.join(path, m)) for m in marks) or bool(checkpoint_dirs(path))


def missing_folders(path: str) -> list[str]:
    """``path`` and those of its parent folders that do not exist yet, deepest first: what
    making ``path`` would create ([] when it exists)."""
    missing, path = [], os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def remove_made_folders(made: Sequence[str]) -> None:
    """Undo making the folders ``made`` (``missing_folders``' list, deepest first) after a
    failed command: the first (the run folder) with its content, each parent only while it is
    empty, so nothing another process put there meanwhile is lost."""
    if not made:
        return
    shutil.rmtree(made[0], ignore_errors=True)
    for folder in made[1:]:
        try:
            os.rmdir(folder)
        except OSError:  # not empty (or gone): the folders above it stay too
            return


# Files an operating system's file browser leaves in any folder: they do not make it someone's.
_SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_SHOW_FOREIGN = 5  # entries of a foreign folder an error message names


def foreign_entries(path: str) -> list[str]:
    """The entries of folder ``path`` when it holds something but no run (``is_run_folder``,
    the files a run or a sweep writes at its top, ``log*.txt`` and ``previous-*`` folders count
    as a run's): a folder of the user's that a run must not write into. [] for a missing or empty
    folder or a run folder; sorted, a folder shown with a trailing ``/``."""
    if not os.path.isdir(path) or is_run_folder(path):
        return []
    entries = sorted(set(os.listdir(path)) - _SYSTEM_FILES)
    marks = set(_RUN_FILES) | {SWEEP_RUN_FILE, SWEEP_LOG_FILE, SWEEP_JOB_FILE}
    if any(e in marks or e.startswith(_PREVIOUS_PREFIX)
           or (e.startswith("log") and e.endswith(".txt")) for e in entries):
        return []
    return [e + ("/" if os.path.isdir(os.path.join(path, e)) else "") for e in entries]


def check_new_run_folder(path: str, what: str = "OUTPUT_DIR",
                         advice: "RerunAdvice | None" = None) -> None:
    """Refuse to start a run in a folder that holds other files than a run's
    (``foreign_entries``): a run would mix its files with them, and ``--force`` would move only
    its own. Raises ``UserError`` naming the folder, a few of its entries and the way out
    (moving the files away, or ``advice.other_folder`` when the command has one); nothing is
    moved or deleted. A missing, empty or run folder passes."""
    entries = foreign_entries(path)
    if not entries:
        return
    shown = ", ".join(entries[:_SHOW_FOREIGN]) + (f", ... ({len(entries)} entries in all)"
                                                   if len(entries) > _SHOW_FOREIGN else "")
    other = (advice or RerunAdvice()).other_folder
    raise UserError(f"{what} {path} holds other files, not a run ({shown}): a run does not write "
                    f"into a folder of yours; move them elsewhere{', or ' + other if other else ''}"
                    " (an empty or new folder, or one holding a run, is fine)")


class RunDirError(UserError, FileNotFoundError):
    """A model directory named on the command line does not exist or holds no checkpoints."""


def check_run_dir(model_dir: str, kind: str = "trained run") -> list[str]:
    """The checkpoint folders of the trained run ``model_dir`` (see ``checkpoint_dirs``).

    Raises ``RunDirError`` saying what ``model_dir`` holds instead when it does not exist or
    has no checkpoint folder; ``kind`` names what was expected there (e.g. "trained run").
    """
    problem = path_problem(model_dir, "folder")
    if problem == "not found":
        raise RunDirError(f"model directory {shown(model_dir)} not found; {describe_dir(model_dir)}")
    if problem:
        raise RunDirError(f"model directory {shown(model_dir)} {problem}: give the folder of a "
                          "trained run")
    found = checkpoint_dirs(model_dir)
    if not found:
        raise RunDirError(f"{shown(model_dir)} is not a {kind} directory: no folder in it holds a "
                          f"checkpoint; {describe_dir(model_dir)}")
    return found


def move_previous_run(output_dir: str, include_checkpoints: bool = True) -> Optional[str]:
    """Move the files of an earlier run into ``output_dir/previous-YYYYmmdd-HHMMSS/``.

    Moved: results, predictions, scatter plot, report page, config and run record, split files,
    TensorBoard logs,
    ``log*.txt`` and (``include_checkpoints``) every checkpoint folder. Nothing is deleted and
    unrelated files stay. Returns the new folder, or None when there was nothing to move.
    """
    if not os.path.isdir(output_dir):
        return None
    entries = [e for e in _RUN_FILES if os.path.exists(os.path.join(output_dir, e))]
    entries += [e for e in sorted(os.listdir(output_dir))
                if e.startswith("log") and e.endswith(".txt")]
    if include_checkpoints:
        entries += [os.path.basename(p) for p in checkpoint_dirs(output_dir)]
    if not entries:
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target, n = os.path.join(output_dir, _PREVIOUS_PREFIX + stamp), 1
    while os.path.exists(target):
        target, n = os.path.join(output_dir, f"{_PREVIOUS_PREFIX}{stamp}-{n}"), n + 1
    os.makedirs(target)
    for entry in entries:
        shutil.move(os.path.join(output_dir, entry), os.path.join(target, entry))
    return target


def _database_folders(cfg: Any) -> list[str]:
    """``DATASET.ROOT`` and the folders directly in it: where a database's relative
    ``LABEL_FILE`` / ``SPLIT_FILE`` may lie ([] without a readable root)."""
    root = str(getattr(getattr(cfg, "DATASET", None), "ROOT", "") or "")
    try:
        children = sorted(e.path for e in os.scandir(root) if e.is_dir())
    except OSError:
        return []
    return [root] + children


class RerunAdvice(NamedTuple):
    """How the command that started a run spells the two ways past an occupied run folder.

    ``other_folder``: how to write into another folder ("" when that command cannot);
    ``force``: how to start the folder over. Advice names only what that command accepts.
    """
    other_folder: str = "use another --output-dir"
    force: str = "pass --force"


def check_output_dir(cfg: Any, defaults: Mapping[str, Any], eval_only: bool = False,
                     force: bool = False, model_dir: str = "",
                     load_epoch: Optional[int] = None,
                     advice: RerunAdvice = RerunAdvice()) -> Optional[dict]:
    """Decide about an existing ``cfg.OUTPUT_DIR`` without writing anything.

    ``defaults`` is the flattened default config (see ``config_differences``); ``eval_only``,
    ``model_dir`` and ``load_epoch`` describe an evaluation run. Returns the stored results when
    this exact run already finished there; raises ``UserError`` when the directory holds results
    of another run, or an unfinished run of another config; returns None when the run should go
    ahead (fresh, resuming, or ``force``). ``advice`` words the remedies for the command used.
    """
    out = cfg.OUTPUT_DIR
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"OUTPUT_DIR {shown(out)} is a file, not a folder: give a folder for the run")
    if force or not os.path.isdir(out):
        return None
    stored = read_config_file(os.path.join(out, CONFIG_FILE))
    diffs = [] if stored is None else config_differences(stored, flatten_config(cfg), defaults,
                                                         bases=[os.getcwd()],
                                                         data_bases=_database_folders(cfg))
    differences = "; ".join(diffs[:_SHOW_DIFFS]) + (f"; ... ({len(diffs)} in all)"
                                              if len(diffs) > _SHOW_DIFFS else "")
    hint = (f"{advice.other_folder + ', or ' if advice.other_folder else ''}{advice.force} to move the "
            f"previous files into {os.path.join(out, 'previous-<time>')} and run again")
    results = read_results(out)
    mode = "eval_only" if eval_only else "train"
    if results is not None:
        reason = ""
        if results["mode"] != mode:
            names = {"train": "a training run", "eval_only": "an --eval-only run"}
            reason = (f"of {names.get(results['mode'], repr(results['mode']))}, not of "
                      f"{names[mode]}")
        elif diffs:
            reason = f"of a run with a different config ({differences})"
        elif eval_only:
            reason = _other_evaluation(results, model_dir, load_epoch)
        if reason:
            raise UserError(f"{shown(out)} already holds the results {reason}; {hint}")
        if not (eval_only and _checkpoint_newer(model_dir, load_epoch, out)):
            action = "evaluate again" if eval_only else "retrain"
            print(f"already finished: {out} holds the results of this run (results in "
                  f"{os.path.join(out, RESULTS_FILE)}); {advice.force} to {action}")
            return results
        return None
    if diffs and not eval_only and checkpoint_dirs(out):
        raise UserError(f"{shown(out)} holds an unfinished run with a different config ({differences}); run "
                        f"it with its own config to resume it, or {hint}")
    return None


def _other_evaluation(results: dict, model_dir: str, load_epoch: Optional[int]) -> str:
    """Why stored eval-only results are of another checkpoint ("" when they are of this one)."""
    stored = results.get("evaluated_checkpoint") or {}
    wanted = (os.path.abspath(model_dir), load_epoch)
    found = (stored.get("model_dir"), stored.get("load_epoch"))
    if found == wanted:
        return ""
    return (f"of another evaluation (model dir {found[0]}, load epoch {found[1]}; now "
            f"{wanted[0]}, {wanted[1]})")


def _checkpoint_newer(model_dir: str, load_epoch: Optional[int], out: str) -> bool:
    """True when the evaluated checkpoint changed after the stored evaluation was written."""
    written = os.path.getmtime(os.path.join(out, RESULTS_FILE))
    wanted = checkpoint_file_name(load_epoch)
    files = [os.path.join(d, wanted) for d in checkpoint_dirs(model_dir)]
    return any(os.path.isfile(f) and os.path.getmtime(f) > written for f in files)
