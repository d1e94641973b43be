"""Train or evaluate CLIP-AGIQA (CoOp/Dassl command line).

Examples:
    python train.py --root ./data --seed 1 --trainer CLIP_AGIQA \
        --dataset-config-file configs/datasets/AGIQA.yaml \
        --config-file configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml \
        --output-dir output/run TEST.FINAL_MODEL best_val TEST.ALLOW_SELECTION_ON_TEST True
    python train.py ... --eval-only --model-dir output/run [--load-epoch 100]

Config merge order: Dassl defaults -> dataset keys -> trainer keys -> dataset yaml -> method yaml
-> CLI flags -> trailing `KEY VALUE` opts; then frozen. Every training or evaluation run writes
`OUTPUT_DIR/results.json` and `OUTPUT_DIR/predictions.csv` (see trainers/reporting.py).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from dassl.config import get_cfg_default, merge_config
from dassl.engine import build_trainer
from dassl.utils import (buffer_early_output, collect_env_info, configure_determinism,
                         set_random_seed, setup_logger, teardown_logger)

import datasets  # noqa: F401  (registers the AGIQA / AIGCIQA2023 datasets)
import trainers  # noqa: F401  (registers the CLIP_AGIQA trainer)
from datasets import add_dataset_config
from trainers import add_trainer_config
from trainers.reporting import write_reports

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=str, default=None, help="path to the dataset root")
    parser.add_argument("--output-dir", type=str, default=None, help="output directory")
    parser.add_argument("--resume", type=str, default=None,
                        help="checkpoint directory to resume from (default: the output directory)")
    parser.add_argument("--seed", type=int, default=None, help="seed; >= 0 fixes every RNG")
    parser.add_argument("--source-domains", type=str, nargs="+", default=None,
                        help="source domains (domain-adaptation datasets only)")
    parser.add_argument("--target-domains", type=str, nargs="+", default=None,
                        help="target domains (domain-adaptation datasets only)")
    parser.add_argument("--transforms", type=str, nargs="+", default=None,
                        help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="method (trainer) yaml")
    parser.add_argument("--dataset-config-file", type=str, default="", help="dataset yaml")
    parser.add_argument("--trainer", type=str, default=None, help="name of the trainer")
    parser.add_argument("--backbone", type=str, default=None,
                        help="CLIP model name or weights file (MODEL.BACKBONE.NAME)")
    parser.add_argument("--head", type=str, default=None, help="name of the head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="",
                        help="load the model from this directory for --eval-only")
    parser.add_argument("--load-epoch", type=int, default=None,
                        help="load model.pth.tar-<epoch> instead of model-best.pth.tar")
    parser.add_argument("--no-train", action="store_true", help="build the trainer, do not train")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command line (KEY VALUE pairs)")
    return parser


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


def setup_cfg(args: argparse.Namespace):
    """Build the frozen config of a run from the parsed arguments."""
    cfg = get_cfg_default()
    add_dataset_config(cfg)
    add_trainer_config(cfg)
    merge_config(cfg, [args.dataset_config_file, args.config_file])
    reset_cfg(cfg, args)
    merge_config(cfg, opts=args.opts)
    cfg.freeze()
    return cfg


def main(argv: Sequence[str] | None = None) -> dict | None:
    """Run one training or evaluation; returns the results dict (None with --no-train)."""
    args = build_parser().parse_args(argv)
    # Anything printed before the log file exists is kept and written at its top.
    buffer_early_output()
    try:
        cfg = setup_cfg(args)
        setup_logger(cfg.OUTPUT_DIR)
        if cfg.SEED >= 0:
            print(f"Setting fixed seed: {cfg.SEED}")
            set_random_seed(cfg.SEED)
        configure_determinism(cfg)
        print("** Arguments **")
        for key in sorted(vars(args)):
            print(f"{key}: {getattr(args, key)}")
        print("** Config **")
        print(cfg)
        print("Collecting env info ...")
        print(collect_env_info())

        trainer = build_trainer(cfg)
        if args.eval_only:
            trainer.load_model(args.model_dir, epoch=args.load_epoch)
            trainer.test()
            return write_reports(trainer, "eval_only", args.model_dir, args.load_epoch)
        if args.no_train:
            return None
        trainer.train()
        return write_reports(trainer, "train")
    finally:
        teardown_logger()


if __name__ == "__main__":
    main(sys.argv[1:])
