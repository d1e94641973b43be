"""Issue 25, fault 6, every image a folder holds: one folder walk
(`dassl.utils.image_files.find_images`) behind score.py's folders and --list, the loaders' image
check (and so fetch's check of an unpacked database): links to files and folders followed once
(no loops, no duplicates), every extension Pillow opens in any letter case, hidden files and
non-images left out, and everything left out named."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

import score
from datasets import AGIQA, add_dataset_config
from datasets.errors import MissingDataError
from datasets.layout import check_images
from datasets.synthetic import make_synthetic_agiqa
from dassl.config import get_cfg_default
from dassl.utils.image_files import find_images, image_extensions

# What every entry point must find in the folder `tree` builds (names relative to it).
EXPECTED = ["B.JPG", "a.png", "c.Jpeg", "d.webp", "e.tif", "linked/o.png", "sub/f.png"]
SKIPPED = {".hidden.png": "hidden", "notes.txt": "not an image", "dead.png": "broken link",
           "link_to_a.png": "same file as a.png", "loop": "link loop to the folder searched",
           "sub/up": "link loop to the folder searched",
           "linked_again": "same folder as linked", "sub_link": "same folder as sub"}


@pytest.fixture()
def tree(tmp_path) -> Path:
    """A folder with upper-case and uncommon extensions, a real sub-folder, a linked folder
    outside it (linked twice), a link to a file inside, link loops, a broken link, a hidden
    image and a text file."""
    outside = tmp_path / "outside"
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    for name in ["a.png", "B.JPG", "c.Jpeg", "d.webp", "e.tif", "sub/f.png", ".hidden.png"]:
        Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / name)
    Image.new("RGB", (8, 8)).save(outside / "o.png")
    (folder / "notes.txt").write_text("not an image\n")
    os.symlink(folder / "a.png", folder / "link_to_a.png")
    os.symlink(outside, folder / "linked")
    os.symlink(outside, folder / "linked_again")
    os.symlink("sub", folder / "sub_link")
    os.symlink(".", folder / "loop")
    os.symlink("..", folder / "sub" / "up")
    os.symlink(folder / "missing.png", folder / "dead.png")
    return folder


def test_pillow_extensions_in_any_letter_case():
    assert {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"} <= \
        image_extensions()
    assert ".pdf" not in image_extensions()  # Pillow writes PDF, it cannot read it


def test_every_entry_point_finds_the_same_images_and_names_the_skipped(tree, tmp_path, capsys):
    walk = find_images(tree)
    assert walk.names == EXPECTED
    assert dict(walk.skipped) == SKIPPED
    line = walk.skipped_line(limit=100)
    assert line.startswith(f"skipped {len(SKIPPED)} entries of {tree}: ")
    assert all(f"{name} ({reason})" in line for name, reason in SKIPPED.items())

    # score.py with the folder: the same names; the skipped are named on stderr.
    found = score.collect_images([str(tree)])
    assert [name for name, _ in found] == EXPECTED
    err = capsys.readouterr().err
    assert "dead.png (broken link)" in err and "notes.txt (not an image)" in err
    assert all(Image.open(path).size == (8, 8) for _, path in found)
    # More skipped than a line names: the rest are counted with how to name them all, and
    # score.py --verbose names every one.
    notes = []
    few = walk.skipped_line(limit=2, more_hint=" (--verbose names them all)")
    assert few.endswith(f" and {len(SKIPPED) - 2} more (--verbose names them all)")
    score.collect_images([str(tree)], notes, name_all=True)
    assert all(f"{name} ({reason})" in notes[-1] for name, reason in SKIPPED.items())

    # score.py --list: the listed top-level names are found, a broken link is named as such.
    listing = tmp_path / "list.csv"
    top = [n for n in EXPECTED if "/" not in n]
    listing.write_text("name\n" + "\n".join(top) + "\n")
    listed, missing = score.list_images(str(listing), [str(tree)])
    assert [name for name, _ in listed] == top and missing == []
    listing.write_text("name\n" + "\n".join(top + ["dead.png"]) + "\n")
    with pytest.raises(FileNotFoundError, match=r"dead\.png \(broken link\)"):
        score.list_images(str(listing), [str(tree)])

    # The loaders' image check: all found (also through links), a broken link named.
    check_images(tree, EXPECTED + ["link_to_a.png", "sub_link/f.png"])  # second names: there
    with pytest.raises(MissingDataError, match=r"dead\.png \(broken link\)"):
        check_images(tree, EXPECTED + ["dead.png"])


def test_a_database_of_links_loads_and_a_broken_link_is_named(tmp_path):
    real = make_synthetic_agiqa(tmp_path / "real", n_images=40, sizes=((16, 16),))
    folder = tmp_path / "root" / "AGIQA-3K"
    folder.mkdir(parents=True)
    shutil.copy(real / "data.csv", folder / "data.csv")
    images = sorted(p for p in real.iterdir() if p.suffix == ".jpg")
    for path in images:
        os.symlink(path, folder / path.name)
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME, cfg.DATASET.ROOT = "AGIQA", str(tmp_path / "root")
    dataset = AGIQA(cfg)
    assert len(dataset.train_x) + len(dataset.test) == len(images)
    images[3].unlink()
    with pytest.raises(MissingDataError, match=rf"{images[3].name} \(broken link\)"):
        AGIQA(cfg)


def test_fetch_copies_a_folder_of_links_without_looping(tree, tmp_path):
    from datasets.fetch import _copy_tree

    copy = tmp_path / "copy"
    _copy_tree(tree, copy)  # `python -m datasets.fetch DB --from FOLDER` copies the folder so
    found = find_images(copy)
    # The linked folders are copied as folders of their own (their files hard links where
    # possible); the link to a.png still names the same file, so it stays a second name.
    assert found.names == sorted(EXPECTED + ["linked_again/o.png", "sub_link/f.png"])
    assert (copy / "linked_again" / "o.png").is_file() and (copy / "link_to_a.png").is_file()
    assert not (copy / "loop").exists() and not (copy / "sub" / "up").exists()
    assert not (copy / "dead.png").exists()
