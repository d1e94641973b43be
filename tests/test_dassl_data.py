"""dassl.data: Datum/DatasetBase contracts, transforms vs torchvision, wrapper and loaders."""
import csv
import os

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms import InterpolationMode

from dassl.config import get_cfg_default
from dassl.data import DataManager, DatasetWrapper, build_data_loader
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
from dassl.data.samplers import build_sampler
from dassl.data.transforms import build_transform
from dassl.utils import ConfigError

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def make_photo(path, width, height, seed, quality=90):
    """A smooth, photo-like RGB JPEG: gradients, a blob and mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.1 * width * height))
    channels = [rng.uniform(40, 120) + rng.uniform(60, 120) * (x / width) * (c + 1) / 3
                + 90 * blob + rng.normal(0, 6, size=x.shape) for c in range(3)]
    arr = np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=quality)
    return str(path)


def _cfg(**input_overrides):
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    cfg.INPUT.SIZE = (24, 24)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    for k, v in input_overrides.items():
        setattr(cfg.INPUT, k, v)
    return cfg


def test_datum_contract(tmp_path):
    d = Datum(impath="/x/y/img_001.jpg", label=3, classname="average", mos="2.5")
    assert (d.impath, d.label, d.domain, d.classname, d.mos, d.name) == \
        ("/x/y/img_001.jpg", 3, 0, "average", 2.5, "img_001.jpg")
    assert isinstance(d.mos, float) and Datum().mos is None
    assert Datum(impath="/r/sub/a.png", name="a.png").name == "a.png"
    with pytest.raises(AttributeError):
        d.mos = 1.0
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        Datum(impath=str(tmp_path / "missing.jpg"), check_file=True)
    real = make_photo(tmp_path / "ok.jpg", 8, 6, 0)
    assert Datum(impath=real, check_file=True).impath == real


def test_dataset_base_classnames_and_save_splits(tmp_path):
    train = [Datum(impath=f"/d/t{i}.png", label=i % 2, classname=["bad", "good"][i % 2], mos=i / 3)
             for i in range(4)]
    test = [Datum(impath="/d/s0.png", label=0, mos=1.25), Datum(impath="/d/sub/s1.png", mos=None)]
    derived = DatasetBase(train_x=train, test=test)
    assert derived.classnames == ["bad", "good"] and derived.num_classes == 2
    assert derived.lab2cname == {0: "bad", 1: "good"}
    names = ["terrible", "bad", "poor", "average", "good", "perfect"]
    ds = DatasetBase(train_x=train, test=test, classnames=names)
    assert ds.classnames == names and ds.num_classes == 6 and ds.lab2cname[5] == "perfect"

    out = tmp_path / "splits"
    (out).mkdir()
    (out / "val.csv").write_text("stale\n")
    ds.save_splits(str(out))
    assert sorted(os.listdir(out)) == ["test.csv", "train.csv"]
    with open(out / "train.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "mos"] and [r[0] for r in rows[1:]] == ["t0.png", "t1.png", "t2.png", "t3.png"]
    assert [float(r[1]) for r in rows[1:]] == [i / 3 for i in range(4)]  # exact round trip
    assert (out / "test.csv").read_text() == "name,mos\ns0.png,1.25\ns1.png,\n"
    DatasetBase(train_x=train, val=test[:1], test=test).save_splits(str(out))
    assert (out / "val.csv").read_text() == "name,mos\ns0.png,1.25\n"


def test_fewshot_sampling():
    items = [Datum(impath=f"/d/{i}.png", label=i % 3) for i in range(30)]
    ds = DatasetBase(train_x=items)
    assert ds.generate_fewshot_dataset(items, num_shots=-1) is items
    few = ds.generate_fewshot_dataset(items, num_shots=2)
    assert sorted(d.label for d in few) == [0, 0, 1, 1, 2, 2]
    assert len(ds.generate_fewshot_dataset(items[:3], num_shots=4, repeat=True)) == 12


def test_test_transform_matches_torchvision_and_clip_preprocessing(tmp_path):
    cfg = _cfg()
    tfm = build_transform(cfg, is_train=False)
    for i, (w, h) in enumerate([(40, 30), (30, 52), (24, 36)]):
        img = Image.open(make_photo(tmp_path / f"p{i}.jpg", w, h, i)).convert("RGB")
        reference = T.Compose([T.Resize(24, interpolation=InterpolationMode.BICUBIC),
                               T.CenterCrop(24), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
        out = tfm(img)
        assert out.shape == (3, 24, 24) and out.dtype == torch.float32
        assert torch.equal(out, reference(img))
        if (w, h) == (24, 36):  # shorter side already 24: a pure centre crop, computed by hand
            arr = np.asarray(img, dtype=np.float32)[6:30] / 255.0
            manual = (arr - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
            # The same float32 operations (x / 255, - mean, / std) on values < 2.2: <= 2 ulp
            # (4.8e-7); an off-by-one crop or another mean/std is > 1e-3 off.
            assert np.allclose(out.permute(1, 2, 0).numpy(), manual, rtol=0, atol=1e-6)
    # Without "normalize" the test pipeline stops at ToTensor (values in [0, 1]).
    plain = build_transform(_cfg(TRANSFORMS=("random_flip",)), is_train=False)(img)
    assert plain.min() >= 0 and plain.max() <= 1


def test_train_transform_matches_torchvision(tmp_path):
    cfg = _cfg()
    tfm = build_transform(cfg, is_train=True)
    reference = T.Compose([
        T.RandomResizedCrop((24, 24), scale=(0.08, 1.0), interpolation=InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    img = Image.open(make_photo(tmp_path / "p.jpg", 50, 34, 7)).convert("RGB")
    outputs = []
    for seed in range(4):
        torch.manual_seed(seed)
        out = tfm(img)
        torch.manual_seed(seed)
        assert torch.equal(out, reference(img))
        outputs.append(out)
    assert out.shape == (3, 24, 24)
    assert not torch.equal(outputs[0], outputs[1])  # random crops differ

    # No random crop: exact resize to SIZE; with center_crop: shorter side + centre crop.
    resize = build_transform(_cfg(TRANSFORMS=("normalize",)), is_train=True)
    assert torch.equal(resize(img), T.Compose([T.Resize((24, 24), InterpolationMode.BICUBIC),
                                               T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])(img))
    center = build_transform(_cfg(TRANSFORMS=("center_crop",)), is_train=True)
    assert torch.equal(center(img), T.Compose([T.Resize(24, InterpolationMode.BICUBIC),
                                               T.CenterCrop(24), T.ToTensor()])(img))


def test_transform_errors():
    with pytest.raises(ValueError, match="random_flip"):
        build_transform(_cfg(TRANSFORMS=("random_flipp",)))
    with pytest.raises(ValueError, match="INTERPOLATION"):
        build_transform(_cfg(INTERPOLATION="lanczos"))
    assert build_transform(_cfg(NO_TRANSFORM=True)) is None


@DATASET_REGISTRY.register()
class DasslDataToy(DatasetBase):
    """Images in cfg.DATASET.ROOT; split sizes from DATASET.NUM_SHOTS (train) for testing."""

    def __init__(self, cfg):
        root = cfg.DATASET.ROOT
        files = sorted(f for f in os.listdir(root) if f.endswith(".jpg"))
        n_train = cfg.DATASET.NUM_SHOTS
        items = [Datum(impath=os.path.join(root, f), label=i % 2, mos=1.0 + i / 4)
                 for i, f in enumerate(files)]
        super().__init__(train_x=items[:n_train], test=items[n_train:], classnames=["low", "high"])


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_images")
    for i in range(13):
        make_photo(root / f"img_{i:02d}.jpg", 30 + 3 * i, 26 + i, seed=i)
    return str(root)


def _toy_cfg(root, n_train=10, batch=4):
    cfg = _cfg()
    cfg.DATASET.NAME = "DasslDataToy"
    cfg.DATASET.ROOT = root
    cfg.DATASET.NUM_SHOTS = n_train
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = batch
    cfg.DATALOADER.TEST.BATCH_SIZE = 2
    return cfg


def test_wrapper_item_and_collated_batch(image_root):
    cfg = _toy_cfg(image_root)
    ds = build_dataset(cfg)
    tfm = build_transform(cfg, is_train=False)
    item = DatasetWrapper(cfg, ds.test, transform=tfm)[1]
    assert set(item) == {"img", "label", "domain", "impath", "index", "mos"}
    assert item["index"] == 1 and item["impath"].endswith("img_11.jpg")
    assert item["mos"] == 1.0 + 11 / 4 and isinstance(item["mos"], float)
    assert torch.equal(item["img"], tfm(Image.open(item["impath"]).convert("RGB")))
    no_mos = DatasetWrapper(cfg, [Datum(impath=item["impath"])], transform=tfm)[0]
    assert "mos" not in no_mos

    cfg.DATALOADER.K_TRANSFORMS = 2
    cfg.DATALOADER.RETURN_IMG0 = True
    multi = DatasetWrapper(cfg, ds.train_x, transform=build_transform(cfg), is_train=True)[0]
    assert isinstance(multi["img"], list) and len(multi["img"]) == 2
    assert multi["img0"].shape == (3, 24, 24)
    with pytest.raises(ValueError, match="2 times"):
        DatasetWrapper(cfg, ds.train_x, transform=None, is_train=True)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_data_manager_loaders(image_root):
    cfg = _toy_cfg(image_root, n_train=10, batch=4)
    dm = DataManager(cfg)
    assert dm.num_classes == 2 and dm.lab2cname == {0: "low", 1: "high"} and dm.val_loader is None
    assert dm.train_loader_x.drop_last and len(dm.train_loader_x) == 2
    assert not dm.test_loader.drop_last and len(dm.test_loader) == 2
    assert dm.train_loader_x.pin_memory is torch.cuda.is_available()
    batch = next(iter(dm.test_loader))
    assert batch["img"].shape == (2, 3, 24, 24) and batch["mos"].dtype == torch.float64
    assert batch["impath"][0].endswith("img_10.jpg") and batch["index"].tolist() == [0, 1]
    assert isinstance(dm.train_loader_x.sampler, torch.utils.data.RandomSampler)

    small = DataManager(_toy_cfg(image_root, n_train=3, batch=4))  # fewer items than a batch
    assert not small.train_loader_x.drop_last and len(small.train_loader_x) == 1

    cfg = _toy_cfg(image_root)
    cfg.DATALOADER.NUM_WORKERS = (os.cpu_count() or 1) + 3  # kept as configured
    assert DataManager(cfg).train_loader_x.num_workers == (os.cpu_count() or 1) + 3

    with pytest.raises(ConfigError, match="empty"):
        DataManager(_toy_cfg(image_root, n_train=13))  # nothing left for the test split
    with pytest.raises(ConfigError, match="empty"):
        build_data_loader(cfg, data_source=[], batch_size=4)


def test_samplers_and_dataset_registry_errors(image_root):
    data = list(range(5))
    assert list(build_sampler("SequentialSampler", data_source=data)) == data
    torch.manual_seed(0)
    order = list(build_sampler("RandomSampler", data_source=data))
    assert sorted(order) == data
    torch.manual_seed(0)
    assert list(build_sampler("RandomSampler", data_source=data)) == order  # global torch RNG
    with pytest.raises(ValueError, match="RandomSampler"):
        build_sampler("RandomDomainSampler", data_source=data)
    cfg = _toy_cfg(image_root)
    cfg.DATASET.NAME = "DasslDataTyo"
    with pytest.raises(KeyError, match="did you mean DasslDataToy"):
        build_dataset(cfg)
