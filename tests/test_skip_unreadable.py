"""Issue 25: `score.py --skip-unreadable`. Without it the first unreadable image stops the
scoring with one `error:` line that names it and offers the flag (the rows scored before it are
kept, so the re-run continues); with it the unreadable images are skipped, named on stderr and in
`<csv name>.skipped.csv` (name,reason), and the others score exactly as when scored alone."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

import score


@pytest.fixture(scope="module")
def trained(trained_run) -> Path:
    return trained_run


def _rows(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row[0]: row[1] for row in list(csv.reader(handle))[1:]}


@pytest.fixture()
def folder(tiny_assets, tmp_path) -> Path:
    """Ten good images, an image file that is not an image and a truncated JPEG among them."""
    images = tmp_path / "images"
    images.mkdir()
    for path in sorted((Path(tiny_assets["root"]) / "AGIQA-3K").glob("*.jpg"))[:10]:
        shutil.copy(path, images / path.name)
    good = sorted(images.iterdir())
    (images / "m_not_really.png").write_bytes(b"<html>error page</html>")
    (images / "n_truncated.jpg").write_bytes(good[0].read_bytes()[:200])
    return images


def test_without_the_flag_the_error_names_the_image_and_offers_the_flag(
        trained, folder, tmp_path, capsys):
    output = tmp_path / "scores.csv"
    argv = [str(trained), str(folder), "--output", str(output), "--batch-size", "4",
            "--workers", "1", "--no-progress"]
    assert score.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "m_not_really.png" in err[-1]
    assert "add --skip-unreadable" in err[-1] and not output.exists()
    # The two batches of 4 scored before the bad image are kept for the re-run.
    assert "scored so far are kept in" in err[-1]
    assert len(_rows(tmp_path / "scores.partial.csv")) == 8

    assert score.main(argv + ["--skip-unreadable"]) == 0
    err = capsys.readouterr().err
    assert "continuing: 8 of 12 images" in err
    assert "skipped 2 unreadable images (--skip-unreadable): m_not_really.png (" in err
    skipped = _rows(tmp_path / "scores.skipped.csv")
    assert list(skipped) == ["m_not_really.png", "n_truncated.jpg"]
    assert all(reason for reason in skipped.values())
    assert "cannot identify image file" in skipped["m_not_really.png"]
    scores = _rows(output)
    assert len(scores) == 10 and not set(skipped) & set(scores)

    # The good images alone score the same; the skipped list goes once nothing is skipped.
    for name in skipped:
        (folder / name).unlink()
    alone = tmp_path / "alone.csv"
    assert score.main([str(trained), str(folder), "--output", str(alone), "--batch-size", "4",
                       "--workers", "1", "--no-progress", "--skip-unreadable"]) == 0
    # Other batch compositions change only float32 summation order: 1e-5 relative covers it.
    assert _rows(alone).keys() == scores.keys() and not (tmp_path / "alone.skipped.csv").exists()
    assert all(float(_rows(alone)[n]) == pytest.approx(float(s), rel=1e-5)
               for n, s in scores.items())
    (tmp_path / "stale.skipped.csv").write_text("name,reason\nx.png,old\n")
    assert score.main([str(trained), str(folder), "--output", str(tmp_path / "stale.csv"),
                       "--skip-unreadable", "--no-progress"]) == 0
    assert not (tmp_path / "stale.skipped.csv").exists()


def test_with_list_a_missing_listed_image_is_skipped_and_named(trained, folder, tmp_path,
                                                                capsys):
    (folder / "m_not_really.png").unlink()
    (folder / "n_truncated.jpg").unlink()
    names = sorted(p.name for p in folder.iterdir())
    listing = tmp_path / "list.csv"
    listing.write_text("name\n" + "\n".join(names[:3] + ["gone.jpg"] + names[3:5]) + "\n")
    output = tmp_path / "scores.csv"
    argv = [str(trained), str(folder), "--list", str(listing), "--output", str(output),
            "--no-progress"]
    assert score.main(argv) == 2
    assert "gone.jpg" in capsys.readouterr().err
    assert score.main(argv + ["--skip-unreadable"]) == 0
    assert list(_rows(output)) == names[:5]
    assert _rows(tmp_path / "scores.skipped.csv") == {"gone.jpg": "not found"}
