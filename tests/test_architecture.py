"""The rules of ARCHITECTURE.md that the code itself can check: imports run one way, the method
speaks of quality levels (Dassl's class words stay at the data/engine boundary), and a fact is
defined in one place."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package -> the packages of ours it must not import
FORBIDDEN = {"clip": ("dassl", "datasets", "trainers"),
             "dassl": ("clip", "datasets", "trainers"),  # the engine knows no backbone
             "datasets": ("trainers",), "trainers": ("datasets",)}
# Inside trainers/: sub-package -> the modules of ours it must not import (dotted names).
FORBIDDEN_INSIDE = {"trainers/inference": ("trainers.clip_agiqa",),
                    "trainers/method": ("trainers.fast",)}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a Python file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    wrong = {str(path.relative_to(REPO)): sorted(imported_packages(path) & set(FORBIDDEN[package]))
             for path in (REPO / package).rglob("*.py")}
    assert {k: v for k, v in wrong.items() if v} == {}


def imported_modules(path: Path) -> set[str]:
    """Dotted names of every module a Python file imports (relative imports resolved, imports
    inside functions included)."""
    package = ".".join(path.relative_to(REPO).parent.parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] \
                if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN_INSIDE))
def test_trainers_layers_run_one_way(folder):
    """The scorer's model rebuild knows the model, not the trainer; the method knows nothing of
    the fast data path."""
    def forbidden(name: str) -> bool:
        return any(name == f or name.startswith(f + ".") for f in FORBIDDEN_INSIDE[folder])

    wrong = {str(path.relative_to(REPO)): sorted(filter(forbidden, imported_modules(path)))
             for path in (REPO / folder).rglob("*.py")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_import_check_resolves_relative_imports():
    """The check above can fail: it sees `..clip_agiqa` from trainers/inference."""
    names = imported_modules(REPO / "trainers" / "clip_agiqa.py")
    assert "trainers.fast.multi_crop" in names and "trainers.inference.run_model" in names


def test_the_method_speaks_of_levels_not_classes():
    """Dassl's `classnames` / `lab2cname` are translated into `level_names` by the engine."""
    words = re.compile(r"classname|lab2cname")
    hits = [f"{path.relative_to(REPO)}:{number}"
            for path in (REPO / "trainers").rglob("*.py")
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if words.search(line)]
    assert hits == []


def test_the_six_level_words_are_written_once():
    """Upstream's level names live in dassl/data/levels.py; code elsewhere imports them."""
    hits = sorted(str(path.relative_to(REPO))
                  for folder in ("clip", "dassl", "datasets", "trainers", "scripts")
                  for path in (REPO / folder).rglob("*.py")
                  if '"terrible"' in path.read_text(encoding="utf-8"))
    top = sorted(path.name for path in REPO.glob("*.py")
                 if '"terrible"' in path.read_text(encoding="utf-8"))
    assert hits == ["dassl/data/levels.py"] and top == []
