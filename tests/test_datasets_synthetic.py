"""Synthetic AGIQA-3K / AIGCIQA2023: layout, naming, and MOS that follow the degradations."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFilter
from scipy.io import loadmat
from scipy.stats import spearmanr

from dassl.config import get_cfg_default
from datasets import AGIQA, AIGCIQA2023, add_dataset_config
from datasets.agiqa import DEFAULT_THRESHOLDS as AGIQA_DEFAULT_THRESHOLDS
from datasets.levels import mos_to_levels
from datasets.synthetic import (AGIQA_APPROX_SIZES, degrade, main, make_synthetic_agiqa,
                                make_synthetic_aigciqa2023, random_scene, render_example)
from label_files import AGIQA3K_CSV

REAL_CSV = AGIQA3K_CSV  # committed: tests/data/README.md


def psnr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return 10 * np.log10(255.0 ** 2 / max(np.mean((a - b) ** 2), 1e-12))


def sharpness(img):
    """Mean absolute horizontal gradient after a 5x5 median (which suppresses the noise)."""
    grey = np.asarray(img.convert("L").filter(ImageFilter.MedianFilter(5)), np.float64)
    return float(np.mean(np.abs(np.diff(grey, axis=1))))


def test_degradation_grows_with_strength_on_a_fixed_scene():
    scene = random_scene(np.random.default_rng(0), (128, 128))
    strengths = [0.0, 0.25, 0.5, 0.75, 1.0]
    images = [degrade(scene, s, np.random.default_rng(1)) for s in strengths]
    quality = [psnr(scene, img) for img in images]
    sharp = [sharpness(img) for img in images]
    assert all(a > b for a, b in zip(quality, quality[1:])), quality
    assert all(a > b for a, b in zip(sharp, sharp[1:])), sharp
    with pytest.raises(ValueError, match="strength"):
        degrade(scene, 1.5, np.random.default_rng(0))


def test_haze_fades_toward_white_with_strength_and_is_off_by_default():
    scene = random_scene(np.random.default_rng(0), (128, 128))
    plain = degrade(scene, 0.8, np.random.default_rng(1))
    assert np.array_equal(np.asarray(plain), np.asarray(degrade(scene, 0.8, np.random.default_rng(1),
                                                                haze=0.0)))
    means = [np.asarray(degrade(scene, s, np.random.default_rng(1), haze=0.6), np.float64).mean()
             for s in (0.0, 0.5, 1.0)]
    base = np.asarray(scene, np.float64).mean()
    # At strength s the mean moves toward 255 by 0.6 s of its distance (noise has mean 0; the
    # +-3 grey levels allow for clipping at 0/255 and JPEG rounding).
    for s, mean in zip((0.0, 0.5, 1.0), means):
        assert abs(mean - (base + 0.6 * s * (255 - base))) < 3, (s, mean)
    with pytest.raises(ValueError, match="haze"):
        degrade(scene, 0.5, np.random.default_rng(0), haze=1.5)


@pytest.mark.slow
def test_agiqa_set_mos_follows_the_pixels(tmp_path):
    folder = make_synthetic_agiqa(tmp_path, n_images=64, seed=3)
    table = pd.read_csv(folder / "data.csv")
    assert list(table.columns) == ["name", "prompt", "adj1", "adj2", "style", "mos_quality",
                                   "std_quality", "mos_align", "std_align"]
    assert table["name"].str.fullmatch(r"[A-Za-z0-9.]+_[a-z]+_\d{3}\.jpg").all()
    assert table["name"].is_unique and table["name"][0] == "AttnGAN_normal_000.jpg"
    assert table["mos_quality"].between(0, 5).all() and table["mos_align"].between(0, 5).all()
    fidelity, sharp = [], []
    for i, name in enumerate(table["name"]):
        clean, _degraded, strength = render_example(3, i, (256, 256))
        # The same float64 formula (METRIC_REL, pytest.approx's default, is far above rounding).
        assert table["mos_quality"][i] == pytest.approx(5 * (1 - strength))
        img = Image.open(folder / name)
        assert img.size == (256, 256) and img.format == "JPEG"
        fidelity.append(psnr(clean, img.convert("RGB")))
        sharp.append(sharpness(img))
    assert spearmanr(fidelity, table["mos_quality"])[0] > 0.9
    assert spearmanr(sharp, table["mos_quality"])[0] > 0.6
    again = make_synthetic_agiqa(tmp_path / "again", n_images=64, seed=3)
    assert pd.read_csv(again / "data.csv").equals(table)


def test_agiqa_set_loads_and_is_learnable_by_level(tmp_path):
    make_synthetic_agiqa(tmp_path, n_images=40, seed=0, image_format="png")
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME, cfg.DATASET.ROOT = "AGIQA", str(tmp_path)
    ds = AGIQA(cfg)
    assert (len(ds.train_x), len(ds.test)) == (32, 8)
    assert all(Image.open(d.impath).format == "PNG" for d in ds.test)
    assert ds.thresholds == list(AGIQA_DEFAULT_THRESHOLDS["quality"])
    data = ds.train_x + ds.test
    mos = np.array([d.mos for d in data])
    levels = mos_to_levels(mos, AGIQA_DEFAULT_THRESHOLDS["quality"])
    assert [d.label for d in data] == levels.tolist()
    assert len(set(levels.tolist())) > 1  # the synthetic MOS span several levels


def test_agiqa_names_from_the_real_csv_and_real_sizes(tmp_path):
    folder = make_synthetic_agiqa(tmp_path, n_images=12, names_csv=REAL_CSV, sizes="real")
    table = pd.read_csv(folder / "data.csv")
    real = pd.read_csv(REAL_CSV)
    assert set(table["name"]) <= set(real["name"]) and len(table) == 12
    assert table["name"].iloc[0] == real["name"].iloc[0]
    assert table["name"].iloc[-1] == real["name"].iloc[-1]
    by_name = real.set_index("name")
    assert table["prompt"].tolist() == by_name.loc[table["name"], "prompt"].tolist()
    for name in table["name"]:
        assert Image.open(folder / name).size == AGIQA_APPROX_SIZES[name.split("_")[0]]


def test_aigciqa2023_set(tmp_path):
    folder = make_synthetic_aigciqa2023(tmp_path, n_images=30, seed=1, sizes=((64, 48),))
    mos = [loadmat(folder / "MOS" / f"mosz{k}.mat")["MOSz"] for k in (1, 2, 3)]
    assert all(m.shape == (30, 1) and 27 <= m.min() and m.max() <= 74 for m in mos)
    for i in range(30):
        _clean, _img, strength = render_example(1, i, (64, 48))
        assert mos[0][i, 0] == pytest.approx(27 + 47 * (1 - strength))  # float64, as above
    assert spearmanr(mos[0][:, 0], mos[1][:, 0])[0] > 0.8
    assert Image.open(folder / "allimg" / "29.png").size == (64, 48)
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME, cfg.DATASET.ROOT = "AIGCIQA2023", str(tmp_path)
    cfg.DATASET.TASK = "correspondence"
    ds = AIGCIQA2023(cfg)
    assert (len(ds.train_x), len(ds.test)) == (24, 6)


def test_cli(tmp_path, capsys):
    assert main(["agiqa", "--root", str(tmp_path), "--n", "5", "--sizes", "32x32,48x40"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "AGIQA-3K")
    table = pd.read_csv(tmp_path / "AGIQA-3K" / "data.csv")
    sizes = [Image.open(tmp_path / "AGIQA-3K" / n).size for n in table["name"]]
    assert sizes == [(32, 32), (48, 40), (32, 32), (48, 40), (32, 32)]
    assert main(["aigciqa2023", "--root", str(tmp_path), "--n", "4", "--sizes", "16x16"]) == 0
    assert sorted(p.name for p in (tmp_path / "AIGCIQA2023" / "allimg").iterdir()) == [
        "0.png", "1.png", "2.png", "3.png"]


def test_data_manager_batches_carry_the_synthetic_mos(tmp_path):
    from dassl.data import DataManager

    make_synthetic_agiqa(tmp_path, n_images=20, sizes=((40, 32),))
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME, cfg.DATASET.ROOT, cfg.DATASET.VAL_RATIO = "AGIQA", str(tmp_path), 0.25
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TEST.BATCH_SIZE = 8
    cfg.INPUT.SIZE = (32, 32)
    cfg.VERBOSE = False
    dm = DataManager(cfg)
    batch = next(iter(dm.test_loader))
    expected = {d.impath: d.mos for d in dm.dataset.test}
    assert batch["img"].shape == (4, 3, 32, 32)
    assert batch["mos"].tolist() == [expected[p] for p in batch["impath"]]
    assert len(dm.val_loader.dataset) == 4 and dm.num_classes == 6
