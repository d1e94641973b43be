"""Run folders written by earlier code (`tests/fixtures/runs_v1/`), placed where a test wants them.

`RUNS` maps each fixture to the trailing `KEY VALUE` options it was trained with (on top of
conftest's `tiny_args`). `install_run(name, dest, assets)` copies `runs_v1/<name>` to `dest` and
puts the real paths back in place of the placeholders `@DATA@`, `@WEIGHTS@` and `@OUTPUT@`.
`expected(name, file)` is a file of `runs_v1/expected/<name>/` (outputs of the same code).
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs_v1"
TEXT_SUFFIXES = (".yaml", ".json", ".txt", ".csv")

# name -> (trailing options, epoch to load: None = model-best)
RUNS = {
    "finished_fp32": (["TRAINER.CLIP_AGIQA.PREC", "fp32", "TEST.FINAL_MODEL", "best_val",
                       "TEST.ALLOW_SELECTION_ON_TEST", "True"], None),
    "finished_fp16": (["TRAINER.CLIP_AGIQA.PREC", "fp16", "TRAINER.CLIP_AGIQA.HEAD_INPUT",
                       "image"], 1),
    "interrupted_std": (["TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET", "True"], 1),
}


def install_run(name: str, dest: Path, assets: dict) -> Path:
    """Copy fixture `name` to `dest` with the placeholders replaced; return `dest`."""
    shutil.copytree(FIXTURES / name, dest)
    values = {"@DATA@": assets["root"], "@WEIGHTS@": assets["weights"], "@OUTPUT@": str(dest)}
    for path in dest.rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8")
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            path.write_text(text, encoding="utf-8")
    return dest


def expected(name: str, file: str) -> Path:
    return FIXTURES / "expected" / name / file


def read_column(path: Path, column: str) -> dict[str, float]:
    """`{name: float(row[column])}` of a CSV with a `name` column."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["name"]: float(row[column]) for row in csv.DictReader(handle)}
