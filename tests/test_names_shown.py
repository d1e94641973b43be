"""Issue 25, fault 7, names shown as they are: a name with characters a reader cannot see (a
trailing space, a tab, a no-break or zero-width space, a CR) is shown in messages so that the
difference is visible: plain names as they are, the others quoted and escaped
(`dassl.names.shown`). Driven through several entry points: main.sh, train.py (config key,
dataset name, label file image name), score.py and the sweep."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import score
from conftest import REPO
from dassl.names import shown

INVISIBLE = {"trailing space": ("vit_b16 ", "'vit_b16 '"), "tab": ("a\tb.jpg", "'a\\tb.jpg'"),
             "no-break space": ("OPTIM.LR\xa0", "'OPTIM.LR\\xa0'"),
             "zero-width space": ("\u200bAGIQA", "'\\u200bAGIQA'"),
             "byte-order mark": ("\ufeffname", "'\\ufeffname'"), "CR": ("False\r", "'False\\r'"),
             "leading space": (" x.png", "' x.png'")}


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_the_rule(kind):
    name, expected = INVISIBLE[kind]
    assert shown(name) == expected
    assert shown(Path("my images") / "a.png") == "my images/a.png"  # plain: as it is
    assert shown("café.png") == "café.png"


def test_the_scripts_show_by_the_same_rule():
    names = [name for name, _ in INVISIBLE.values()] + ["plain name"]
    done = subprocess.run([sys.executable, str(REPO / "dassl/names.py"), *names],
                          capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:-1] == [shown(n) for n in names]


def test_main_sh_shows_a_cfg_with_a_trailing_space(tmp_path):
    done = subprocess.run(["bash", str(REPO / "scripts/main.sh"), "AGIQA", "vit_b16_ep100 ",
                           "end", "16", "1", "False"], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 2
    assert done.stderr.startswith("error: CFG 'vit_b16_ep100 ': ")
    methods = done.stderr.split("method configs: ")[1].split(";")[0].split(", ")
    assert "vit_b16_ep100" in methods  # the valid names are listed


@pytest.mark.parametrize("position, name, kind, expected", [
    (0, "AGIQA\xa0", "DATASET", "AGIQA"), (1, "vit_b16_ep100\t", "CFG", "vit_b16_ep100")])
def test_main_sh_shows_the_name_only_escaped_and_offers_the_valid_one(position, name, kind,
                                                                      expected, tmp_path):
    """The rejected name appears only as shown (no raw tab or no-break space in a path built
    from it), with the close valid name offered."""
    args = ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False"]
    args[position] = name
    done = subprocess.run(["bash", str(REPO / "scripts/main.sh"), *args], cwd=tmp_path,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHON=sys.executable))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {kind} {shown(name)}: ")
    assert name not in done.stderr and f"(did you mean {expected}?)" in done.stderr


def test_train_py_shows_a_key_a_dataset_and_an_image_name(user_error, tiny_args, tiny_assets,
                                                         tmp_path):
    message = user_error(tiny_args(tmp_path / "a", "OPTIM.LR\xa0", "0.1"))
    assert "Non-existent config key: 'OPTIM.LR\\xa0' (did you mean OPTIM.LR?)" in message

    message = user_error(tiny_args(tmp_path / "b", "DATASET.NAME", "\u200bAGIQA"))
    assert "'\\u200bAGIQA' does not exist" in message and "did you mean AGIQA?" in message

    root = tmp_path / "data"
    shutil.copytree(tiny_assets["root"], root)
    labels = root / "AGIQA-3K" / "data.csv"
    lines = labels.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")[0]
    lines[1] = lines[1].replace(first, first.replace("_", "\t", 1), 1)
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = user_error(tiny_args(tmp_path / "c", root=root))
    # (the missing image is named by its path: quoted as a whole, the tab escaped)
    assert shown(first.replace("_", "\t", 1))[1:] in message and "\t" not in message


def test_score_py_and_the_sweep_show_names(tmp_path, capsys):
    assert score.main([str(tmp_path), str(tmp_path / "images "), "--output",
                       str(tmp_path / "s.csv")]) == 2
    assert f"input not found: '{tmp_path}/images '" in capsys.readouterr().err
    done = subprocess.run([sys.executable, str(REPO / "scripts/sweep.py"), "--datasets",
                           "AGIQA\xa0", "--variants", "vit_b16_ep100", "--dry-run",
                           "--output", str(tmp_path / "sweep")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "'AGIQA\\xa0'" in done.stderr, done.stderr


def test_a_listed_image_that_differs_only_in_case_or_invisible_characters_says_so(
        user_error, tiny_args, tiny_assets, tmp_path):
    """A label file's name that reads the same as a file in the folder but is not it (letter
    case, a zero-width space, a no-break space for a space) names the look-alike, in the
    loaders' image check and in score.py's --list."""
    root = tmp_path / "data"
    shutil.copytree(tiny_assets["root"], root)
    labels = root / "AGIQA-3K" / "data.csv"
    lines = labels.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")[0]
    upper = first.upper()
    lines[1] = lines[1].replace(first, upper, 1)
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = user_error(tiny_args(tmp_path / "c", root=root))
    assert f"{first} is there: the names differ in letter case or invisible characters" \
        in message, message

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a b.png")
    listed = tmp_path / "list.csv"
    listed.write_text("name\n\u200ba\xa0b.png\n", encoding="utf-8")
    found, missing = score.list_images(str(listed), [str(folder)], missing_ok=True)
    assert found == [] and missing == [
        ("\u200ba\xa0b.png", "a b.png is there: the names differ in letter case or invisible "
                            "characters")]
