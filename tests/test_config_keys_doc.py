"""docs/config_keys.md is generated from `_KEYS` (scripts/config_keys.py): a key is documented
once, where it is defined, and no other document keeps a hand-written table of the keys."""
from __future__ import annotations

from pathlib import Path

from scripts import config_keys
from trainers.method import model_spec

REPO = Path(__file__).resolve().parents[1]


def test_the_keys_table_is_what_keys_generates():
    assert config_keys.DOC.read_text(encoding="utf-8") == config_keys.render(), (
        "docs/config_keys.md is stale: run python scripts/config_keys.py")
    assert config_keys.main(["--check"]) == 0


def test_a_new_key_makes_the_check_fail_until_the_table_is_written(monkeypatch, tmp_path):
    doc = tmp_path / "config_keys.md"
    monkeypatch.setattr(config_keys, "DOC", doc)
    monkeypatch.setattr(config_keys, "REPO", tmp_path)
    assert config_keys.main([]) == 0
    keys = dict(model_spec._KEYS, NEW_KEY=(3, "a key added | with a bar"))
    monkeypatch.setattr(model_spec, "_KEYS", keys)
    assert config_keys.main(["--check"]) == 1
    assert config_keys.main([]) == 0 and config_keys.main(["--check"]) == 0
    assert "| `TRAINER.CLIP_AGIQA.NEW_KEY` | `3` | a key added / with a bar |" in doc.read_text()


def test_no_other_document_lists_the_keys_by_hand():
    rows = sorted(f"{path.relative_to(REPO)}: {line[:60]}"
                  for path in REPO.rglob("*.md") if path != config_keys.DOC
                  and ".git" not in path.parts and "output" not in path.parts
                  for line in path.read_text(encoding="utf-8").splitlines()
                  if line.startswith("| `TRAINER.CLIP_AGIQA."))
    assert rows == []
