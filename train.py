"""Train or evaluate CLIP-AGIQA (CoOp/Dassl command line).

Examples:
    python train.py --root ./data --seed 1 --trainer CLIP_AGIQA \
        --dataset-config-file configs/datasets/AGIQA.yaml \
        --config-file configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml \
        --output-dir output/run TEST.FINAL_MODEL best_val TEST.ALLOW_SELECTION_ON_TEST True
    python train.py ... --eval-only --model-dir output/run [--load-epoch 100]

Config merge order: Dassl defaults -> dataset keys -> trainer keys -> dataset yaml -> method yaml
-> CLI flags -> trailing `KEY VALUE` opts; then frozen. Every training or evaluation run writes
`OUTPUT_DIR/config.yaml` and `OUTPUT_DIR/run_info.json` at its start (dassl/utils/run_record.py)
and `OUTPUT_DIR/results.json` and `OUTPUT_DIR/predictions.csv` at its end
(trainers/reporting.py).

Reliability (exit status 0 = done, 2 = bad input, 130 = interrupted):
- bad input (config, dataset files, images, weights, model directory) is found before training
  and reported as one `error: <message>` line on stderr (and in log.txt), without a traceback;
- an OUTPUT_DIR holding other files than a run's is refused (``check_new_run_folder``), even
  with ``--force``; a command that fails on bad input before any checkpoint removes the
  OUTPUT_DIR it made, and the parent folders it made while they are empty;
- an OUTPUT_DIR with finished results is not trained again: the stored results are returned
  ("already finished"); `--force` moves the previous run's files into
  `OUTPUT_DIR/previous-<time>/` (nothing is deleted) and starts from scratch. An interrupted
  OUTPUT_DIR with the same config is resumed from its last end-of-epoch checkpoint; one with a
  different config is refused;
- Ctrl-C or SIGTERM (a job's time limit) finishes the current step and exits keeping the last
  end-of-epoch checkpoint (see dassl/engine/interrupt.py); a second one aborts at once;
- one process writes an OUTPUT_DIR at a time (dassl/utils/run_lock.py): a second one is refused
  naming the process that holds it.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NamedTuple, Sequence

EXAMPLE = """example (train on AGIQA-3K under ./data, the paper's method config):
  python train.py --root ./data --seed 1 --trainer CLIP_AGIQA \\
      --dataset-config-file configs/datasets/AGIQA.yaml \\
      --config-file configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml --output-dir output/run
trailing KEY VALUE pairs set config keys, e.g. OPTIM.MAX_EPOCH 10 MODEL.BACKBONE.NAME path/to/ViT-B-16.pt
(scripts/main.sh runs the paper's experiments; scripts/demo.sh an offline demo)"""
# CLI flag (argparse dest) -> config key; applied when the flag is given (`is not None`).
FLAG_TO_KEY = {
    "root": "DATASET.ROOT",
    "output_dir": "OUTPUT_DIR",
    "resume": "RESUME",
    "seed": "SEED",
    "source_domains": "DATASET.SOURCE_DOMAINS",
    "target_domains": "DATASET.TARGET_DOMAINS",
    "transforms": "INPUT.TRANSFORMS",
    "trainer": "TRAINER.NAME",
    "backbone": "MODEL.BACKBONE.NAME",
    "head": "MODEL.HEAD.NAME",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=EXAMPLE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=str, default=None, help="path to the dataset root")
    parser.add_argument("--output-dir", type=str, default=None, help="output directory")
    parser.add_argument("--resume", type=str, default=None,
                        help="checkpoint directory to resume from (default: the output directory)")
    parser.add_argument("--seed", type=int, default=None, help="seed; >= 0 fixes every RNG")
    # CoOp/Dassl flags that no dataset here uses: accepted (old command lines keep working),
    # left out of --help.
    parser.add_argument("--source-domains", type=str, nargs="+", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--target-domains", type=str, nargs="+", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--transforms", type=str, nargs="+", default=None,
                        help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="method (trainer) yaml")
    parser.add_argument("--dataset-config-file", type=str, default="", help="dataset yaml")
    parser.add_argument("--trainer", type=str, default=None, help="name of the trainer")
    parser.add_argument("--backbone", type=str, default=None,
                        help="CLIP model name or weights file (MODEL.BACKBONE.NAME)")
    parser.add_argument("--head", type=str, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="",
                        help="load the model from this directory for --eval-only")
    parser.add_argument("--load-epoch", type=int, default=None,
                        help="load model.pth.tar-<epoch> instead of model-best.pth.tar")
    parser.add_argument("--no-train", action="store_true", help="build the trainer, do not train")
    parser.add_argument("--force", action="store_true",
                        help="run even if OUTPUT_DIR holds finished results: the previous run's "
                             "files are moved into OUTPUT_DIR/previous-<time>/ first")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command line (KEY VALUE pairs)")
    return parser


# `--help` is answered here, before the imports below pull in torch (seconds to load).
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args(sys.argv[1:])

import yaml

from dassl.names import shown
from dassl.config import get_cfg_default, merge_config
from dassl.data.datasets import DATASET_REGISTRY
from dassl.engine import TRAINER_REGISTRY, build_trainer
from dassl.engine.interrupt import TrainingInterrupted, terminate_as_interrupt
from dassl.utils import (EXIT_INTERRUPTED, EXIT_USER_ERROR, ConfigError, UserError,
                         buffer_early_output, checkpoint_file_name, collect_env_info,
                         configure_determinism, log_only, path_problem, report_user_error,
                         set_random_seed, setup_logger, teardown_logger)
from dassl.utils.run_dir import (RerunAdvice, check_new_run_folder, check_output_dir,
                                 checkpoint_dirs, flatten_config, missing_folders,
                                 move_previous_run, read_config_file,
                                 read_results as read_run_results, remove_made_folders)
from dassl.utils.run_lock import lock_run_dir
from dassl.utils.run_record import (CONFIG_FILE, absolute_paths, resolve_recorded_path,
                                    write_run_record)

import datasets  # noqa: F401  (registers the AGIQA / AIGCIQA2023 datasets)
import trainers  # noqa: F401  (registers the CLIP_AGIQA trainer)
from datasets import add_dataset_config
from datasets.errors import DatasetError, MissingDataError
from datasets.fetch import FetchError
from datasets.registry import DATABASES, config_names
from datasets.scope import config_applies_to, database_tag
from datasets.levels import validate_levels
from trainers import CLIP_AGIQA, add_trainer_config
from trainers.inference.run_model import TrainedRun, check_trained_run
from trainers.reporting import write_reports
from trainers.user_errors import USER_ERRORS, error_message

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
# Given on the command line of --eval-only, these keys win over the checkpoint's spec.
CPU_PREC_KEY = "TRAINER.CLIP_AGIQA.CPU_PREC"
BACKBONE_KEY = "MODEL.BACKBONE.NAME"
CHECK_PARTS_KEY = "DATASET.CHECK_PARTS"


def reset_cfg(cfg, args: argparse.Namespace) -> None:
    """Copy the CLI flags that were given into `cfg` (so `--seed 0` counts)."""
    for dest, key in FLAG_TO_KEY.items():
        value = getattr(args, dest)
        if value is None:
            continue
        node = cfg
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = tuple(value) if isinstance(value, list) else value


def base_cfg():
    """Dassl's defaults plus every dataset and trainer key, before any file or option."""
    cfg = get_cfg_default()
    add_dataset_config(cfg)
    add_trainer_config(cfg)
    return cfg


def open_trained_run(args: argparse.Namespace) -> TrainedRun:
    """The run ``--eval-only`` evaluates: ``--model-dir``'s checkpoints of ``--load-epoch`` (else
    the best), each file read once for the whole command. A ``CPU_PREC`` given on the command
    line is this evaluation's (it wins over the precision the checkpoint records; the trained
    run's own does not), as is a backbone given explicitly (``--backbone`` or
    ``MODEL.BACKBONE.NAME``: the run's weights file moved). Raises ``UserError``."""
    check_model_dir(args.model_dir, args.load_epoch)
    options = dict(zip((args.opts or [])[::2], (args.opts or [])[1::2]))
    backbone = args.backbone or options.get(BACKBONE_KEY)
    return TrainedRun(args.model_dir, checkpoint_file_name(args.load_epoch),
                      cpu_precision=options.get(CPU_PREC_KEY),
                      backbone=resolve_recorded_path(backbone, None) if backbone else None)


def trained_data_options(trained: TrainedRun) -> dict:
    """The ``DATASET`` keys an evaluation takes from the trained run: the level names its
    model was trained with (the spec), the level thresholds it used (``results.json``'s record,
    else its configured ones) and its data root (``config.yaml``). None of them for the
    original code's output (no spec). Raises ``ConfigError`` for an unreadable config.yaml."""
    if trained.spec is None:
        return {}
    model_dir = trained.checkpoints.directory
    stored = read_config_file(os.path.join(model_dir, CONFIG_FILE)) or {}
    options = {"LEVEL_NAMES": list(trained.spec.level_names)}
    used = (((read_run_results(model_dir) or {}).get("data") or {}).get("level_thresholds")
            or {}).get("values")
    thresholds = used or stored.get("DATASET.LEVEL_THRESHOLDS")
    if thresholds:
        options["LEVEL_THRESHOLDS"] = [float(t) for t in thresholds]
    if stored.get("DATASET.ROOT"):
        options["ROOT"] = stored["DATASET.ROOT"]
    return options


def check_fixed_options(trained: TrainedRun, validated: Any, opts: Sequence[str]) -> None:
    """A ``TRAINER.CLIP_AGIQA`` model option given on an evaluation's command line must be the
    evaluated run's (its checkpoint fixes the model; precision is decided apart); raises
    ``ConfigError`` naming the option and the checkpoint otherwise."""
    if trained.spec is None:
        return
    fields = set(vars(trained.spec))
    for key in opts[::2]:
        prefix, _, name = key.rpartition(".")
        field = name.lower()
        if prefix == "TRAINER.CLIP_AGIQA" and field in fields and \
                getattr(validated.spec, field) != getattr(trained.spec, field):
            raise ConfigError(
                f"{key} {getattr(validated.spec, field)!r} differs from the model of "
                f"{trained.path('prompt_learner')} ({getattr(trained.spec, field)!r}): an "
                f"evaluation takes the model from its checkpoint; leave {name} out")
    overridden = [f"{field.upper()} {getattr(trained.spec, field)!r} (the config files say "
                  f"{getattr(validated.spec, field)!r})" for field in sorted(fields)
                  if field != "precision" and hasattr(validated.spec, field)
                  and getattr(validated.spec, field) != getattr(trained.spec, field)]
    if overridden:
        print(f"The model comes from {trained.checkpoints.directory}'s checkpoint, not the config "
              f"files: " + "; ".join(overridden))


def setup_cfg(args: argparse.Namespace, trained: TrainedRun | None = None):
    """Build the frozen config of a run from the parsed arguments.

    ``--eval-only`` of one of our runs (``trained``) takes the trainer, level names, thresholds
    and data root from the trained run (``trained_data_options``) after the yaml files, so
    ``--dataset-config-file`` alone may name another database; explicit flags and options still
    come last. The model, its test input and precision come from the checkpoint's spec (the
    trainer's ``trained``), not from the config. Without ``--output-dir`` the results go to
    ``MODEL_DIR/eval/<dataset>``.
    """
    cfg = base_cfg()
    merge_config(cfg, [args.dataset_config_file, args.config_file])
    if trained is not None:
        for key, value in trained_data_options(trained).items():
            cfg.DATASET[key] = value
        if trained.spec is not None:  # one of our runs: its trainer, unless --trainer names one
            cfg.TRAINER.NAME = CLIP_AGIQA.__name__
        if args.output_dir is None:
            name = os.path.splitext(os.path.basename(args.dataset_config_file))[0]
            cfg.OUTPUT_DIR = os.path.join(args.model_dir, "eval", name or cfg.DATASET.NAME)
    reset_cfg(cfg, args)
    merge_config(cfg, opts=args.opts)
    if args.eval_only and CHECK_PARTS_KEY not in (args.opts or [])[::2]:
        # An evaluation reads only the evaluated part's images: only they must be there.
        cfg.DATASET.CHECK_PARTS = [cfg.TEST.SPLIT]
    absolute_paths(cfg)
    cfg.freeze()
    return cfg


def check_config(cfg, args: argparse.Namespace) -> Any:
    """Validate what can be checked without reading data, so typos fail in seconds.

    Returns what the trainer class's ``validate_cfg`` built from ``cfg`` (for ``build_trainer``:
    the config is validated once per run). Raises ``ConfigError`` (or a registry ``KeyError``
    naming the unknown trainer/dataset).
    """
    if not cfg.TRAINER.NAME:
        raise ConfigError("no trainer given: pass --trainer CLIP_AGIQA (python train.py --help "
                          "shows an example command)")
    if not cfg.DATASET.NAME:
        raise ConfigError("no dataset given: pass --dataset-config-file with a file of "
                          "configs/datasets/, e.g. configs/datasets/AGIQA.yaml")
    problem = path_problem(os.path.expanduser(args.resume), "folder") if args.resume else ""
    if problem:
        raise ConfigError(f"--resume {shown(args.resume)} {problem} (give the run folder to "
                          "continue from, or leave --resume out to resume --output-dir)")
    trainer_class = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    DATASET_REGISTRY.get(cfg.DATASET.NAME)
    if not args.eval_only:  # an evaluation takes its levels from the trained run
        check_database_scope(args.config_file, args.dataset_config_file)
    if len(cfg.DATASET.LEVEL_THRESHOLDS):
        validate_levels(list(cfg.DATASET.LEVEL_NAMES), cfg.DATASET.LEVEL_THRESHOLDS)
    validated = trainer_class.validate_cfg(cfg)
    if not args.eval_only and cfg.OPTIM.MAX_EPOCH < 1:
        raise ConfigError(f"OPTIM.MAX_EPOCH must be >= 1 to train, got {cfg.OPTIM.MAX_EPOCH}: "
                          f"to evaluate a trained run {launcher_advice().evaluate}")
    elif not args.eval_only and cfg.DATASET.SPLIT_MODE == "all":
        raise ConfigError("DATASET.SPLIT_MODE all puts every row in the test part, leaving "
                          "nothing to train on: use it with --eval-only --model-dir RUN to test "
                          "a trained run on all of this database")
    # TEST_RATIO 0 holds out no test part: the validation part is the reported split, or, with
    # no validation part either, the model after the last epoch is the result, not evaluated.
    unevaluated = (cfg.TEST.FINAL_MODEL == "last_step"
                   and float(cfg.DATASET.VAL_RATIO) == 0.0)
    if (float(cfg.DATASET.TEST_RATIO) == 0.0 and not cfg.DATASET.SPLIT_FILE
            and cfg.DATASET.SPLIT_MODE != "all" and cfg.TEST.SPLIT != "val" and not unevaluated):
        raise ConfigError("DATASET.TEST_RATIO 0 trains on every row and holds out no test part: "
                          "set TEST.SPLIT val (with DATASET.VAL_RATIO > 0) to report on the "
                          "validation part, or DATASET.VAL_RATIO 0 TEST.FINAL_MODEL last_step to "
                          "train on every row and keep the last-epoch model unevaluated")
    return validated


def check_database_scope(config_file: str, dataset_config_file: str) -> None:
    """A method yaml named for one database (``levels2_aigciqa2023``: MOS cut points on its
    scale) trains only with that database's yaml, the rule the sweep plans by
    (``datasets.scope``); ``ConfigError`` naming both otherwise."""
    if not config_file or not dataset_config_file:
        return
    if config_applies_to(config_file, dataset_config_file):
        return
    tag = database_tag(os.path.splitext(os.path.basename(config_file))[0])
    databases = ", ".join(f"configs/datasets/{s}.yaml" for s in config_names()
                          if s.lower() == tag)
    raise ConfigError(f"{shown(config_file)} is made for one database (its name ends in _{tag}: MOS "
                      f"cut points or prompts of that database) and applies only to {databases}, "
                      f"not to {dataset_config_file}")


def deployed_epoch(model_dir: str) -> int | None:
    """The checkpoint epoch ``--eval-only`` takes without ``--load-epoch``: None (the
    ``model-best.pth.tar`` of a ``best_val`` run), or the last epoch of a finished
    ``TEST.FINAL_MODEL last_step`` run, which deploys that model and keeps no best file."""
    results = (read_run_results(model_dir) if model_dir and os.path.isdir(model_dir)
               else None) or {}
    if results.get("mode") != "train" or results.get("final_model") != "last_step":
        return None
    epoch = (results.get("selected") or {}).get("epoch")
    return epoch if isinstance(epoch, int) and epoch > 0 else None


def check_model_dir(model_dir: str, load_epoch: int | None) -> None:
    """The ``--eval-only`` model directory must hold the requested checkpoint file."""
    if not model_dir:
        raise ConfigError("--eval-only needs --model-dir: the output directory of a training run")
    wanted = checkpoint_file_name(load_epoch)
    found = {f for d in check_trained_run(model_dir) for f in os.listdir(d)
             if f.startswith("model")}
    if wanted not in found:
        hint = (" (pass --load-epoch E to evaluate model.pth.tar-E)"
                if load_epoch is None and found else "")
        raise UserError(f"model directory {shown(model_dir)} has no {wanted} in its module folders; "
                        f"checkpoint files found: {sorted(found) or 'none'}{hint}")


# Set by scripts/run_layout.sh to the script (main.sh, eval.sh) whose arguments built this command
# line, so that advice names what that script accepts rather than train.py's own flags.
LAUNCHER_ENV = "CLIP_AGIQA_LAUNCHER"


class LauncherAdvice(NamedTuple):
    """Remedies worded for the command the user typed: ``rerun`` for an occupied run folder,
    ``evaluate`` for how to evaluate a trained run, ``root`` for how to name the dataset root."""
    rerun: RerunAdvice = RerunAdvice()
    evaluate: str = "use --eval-only --model-dir RUN"
    root: str = "--root DIR (or DATASET.ROOT DIR)"


_LAUNCHER_ADVICE = {
    "main.sh": LauncherAdvice(
        RerunAdvice(other_folder="give main.sh another SEED (or CFG, NCTX, CSC, CTP, SHOTS) to "
                                 "train into another folder",
                    force="pass --force to main.sh"),
        evaluate="use scripts/eval.sh with main.sh's arguments",
        root="the DATA variable (DATA=DIR bash scripts/main.sh ...)"),
    "eval.sh": LauncherAdvice(RerunAdvice(other_folder="", force="pass --force to eval.sh"),
                              evaluate="use scripts/eval.sh",
                              root="the DATA variable (DATA=DIR bash scripts/eval.sh ...)"),
}


def launcher_advice() -> LauncherAdvice:
    """The remedies worded for the command the user typed (train.py itself unless told)."""
    return _LAUNCHER_ADVICE.get(os.environ.get(LAUNCHER_ENV, ""), LauncherAdvice())


def with_root_advice(exc: DatasetError, dataset: str) -> DatasetError:
    """``exc`` (data missing under the dataset root, or not fetched) with the other remedy
    beside its fetch command: naming the folder that holds the database, worded for the
    command the user typed (``launcher_advice``)."""
    database = DATABASES.get(dataset)
    holds = f"{database.folder}/" if database else f"the {dataset} database"
    return type(exc)(f"{exc}\nif it is elsewhere: name the folder that holds {holds} with "
                     f"{launcher_advice().root}")


def is_new_run(args: argparse.Namespace) -> bool:
    """Whether the command starts a training from scratch (not an evaluation of a trained run,
    nor a resume of the checkpoints in ``--resume`` or ``--output-dir``): for wording advice."""
    if args.eval_only:
        return False
    folder = args.resume or args.output_dir
    return args.force or not (folder and checkpoint_dirs(os.path.expanduser(folder)))


def _report(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Run one training or evaluation; returns the results dict (None with --no-train).

    Bad input raises ``SystemExit(2)`` after printing ``error: <message>``; an interruption
    raises ``SystemExit(130)``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        print(f"{parser.format_usage()}\n{EXAMPLE}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
    args = parser.parse_args(argv)
    # Anything printed before the log file exists is kept and written at its top.
    buffer_early_output()
    try:
        with terminate_as_interrupt():
            return _run(args, argv)
    except TrainingInterrupted as exc:
        _report(f"interrupted: {exc}")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as exc:
        _report(f"interrupted ({str(exc) or 'Ctrl-C'}): checkpoints are written atomically, so the last complete "
                "one is intact; run the same command again to resume from it")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except USER_ERRORS as exc:
        raise SystemExit(report_user_error(
            exc, message=error_message(exc, new_run=is_new_run(args)))) from None
    finally:
        teardown_logger()


def _run(args: argparse.Namespace, argv: list[str]) -> dict | None:
    misplaced = [o for o in args.opts or [] if o.startswith("--")]
    if misplaced:
        raise ConfigError(f"{misplaced[0]} comes after the KEY VALUE config options, which must "
                          "end the command line; move it before them")
    if args.eval_only and args.load_epoch is None:
        args.load_epoch = deployed_epoch(args.model_dir)
    trained = open_trained_run(args) if args.eval_only else None
    try:
        cfg = setup_cfg(args, trained)
        validated = check_config(cfg, args)
        if trained is not None:
            check_fixed_options(trained, validated, args.opts or [])
    except UserError:
        raise
    except (KeyError, ValueError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(f"invalid config: {error_message(exc)}") from exc
    made = missing_folders(cfg.OUTPUT_DIR)
    check_new_run_folder(cfg.OUTPUT_DIR, advice=launcher_advice().rerun)
    # One writer per run folder: a second train.py (or a sweep, score.py) is refused before it
    # reads or moves anything there, and --force never moves a live run's files.
    lock = lock_run_dir(cfg.OUTPUT_DIR, what="OUTPUT_DIR")
    try:
        finished = check_output_dir(cfg, flatten_config(base_cfg()), eval_only=args.eval_only,
                                    force=args.force, model_dir=args.model_dir,
                                    load_epoch=args.load_epoch, advice=launcher_advice().rerun)
        if finished is not None:
            return finished
        return _start(cfg, args, argv, validated, trained)
    except USER_ERRORS:
        if made and not checkpoint_dirs(cfg.OUTPUT_DIR):
            # Bad input found before any checkpoint: the folder this command made holds no run
            # (the error is on stderr), so it is not left behind looking like one, nor are the
            # empty parent folders it made (main.sh's output/DATASET/CLIP_AGIQA/...).
            teardown_logger()
            remove_made_folders(made)
        raise
    finally:
        lock.release()


def _start(cfg, args: argparse.Namespace, argv: list[str], validated: Any,
           trained: TrainedRun | None) -> dict | None:
    """Set up OUTPUT_DIR (log, run record) and run the training or evaluation; `validated`:
    what `check_config` returned, `trained` the run an evaluation loads."""
    moved = move_previous_run(cfg.OUTPUT_DIR, include_checkpoints=not args.eval_only) \
        if args.force else None
    setup_logger(cfg.OUTPUT_DIR)
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
    if moved:
        print(f"--force: the previous run's files were moved to {moved}")
    # Before anything touches the GPU: the deterministic cuBLAS setting is read at CUDA init.
    configure_determinism(cfg)
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    write_run_record(cfg, argv, REPO_DIR)
    # The full record goes to log.txt only; the console keeps what a user acts on.
    arguments = "".join(f"{key}: {getattr(args, key)}\n" for key in sorted(vars(args)))
    log_only(f"** Arguments **\n{arguments}** Config **\n{cfg}\n"
             f"Collecting env info ...\n{collect_env_info()}")
    print(f"Config: {os.path.join(cfg.OUTPUT_DIR, 'config.yaml')} (arguments, config and "
          f"environment also in {os.path.join(cfg.OUTPUT_DIR, 'log.txt')})")

    try:
        trainer = build_trainer(cfg, validated, **({"trained": trained} if trained else {}))
    except (MissingDataError, FetchError) as exc:
        raise with_root_advice(exc, cfg.DATASET.NAME) from None
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return write_reports(trainer, "eval_only", args.model_dir, args.load_epoch)
    if args.no_train:
        return None
    trainer.train()
    return write_reports(trainer, "train")


if __name__ == "__main__":
    main(sys.argv[1:])
