"""dassl.utils: registry hints, logging tee, seeding/RNG snapshots, checkpoint files."""
import os
import random
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn

from dassl.config import get_cfg_default
from dassl.utils import (Registry, RegistryKeyError, check_availability, collect_env_info,
                         configure_determinism, get_rng_state, load_checkpoint,
                         load_pretrained_weights, read_checkpoint_pointer, read_image,
                         resume_from_checkpoint, save_checkpoint, set_random_seed, set_rng_state)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def test_registry_register_get_and_errors():
    reg = Registry("THING")

    @reg.register()
    class ResNetLike:
        pass

    assert reg.get("ResNetLike") is ResNetLike and "ResNetLike" in reg
    with pytest.raises(KeyError, match="did you mean ResNetLike"):
        reg.get("ResnetLike")
    with pytest.raises(RegistryKeyError, match="already registered"):
        reg.register(ResNetLike)
    err = pytest.raises(KeyError, reg.get, "zzz").value
    assert "did you mean" not in str(err) and "ResNetLike" in str(err)
    with pytest.raises(ValueError, match="did you mean sgd"):
        check_availability("sdg", ["sgd", "adam"])


def test_trainer_registry_lookup_error():
    from dassl.engine import build_trainer

    cfg = get_cfg_default()
    cfg.TRAINER.NAME = "NoSuchTrainer"
    with pytest.raises(KeyError, match="NoSuchTrainer"):
        build_trainer(cfg)


@pytest.mark.slow
def test_logger_tees_stdout_stderr_warnings_and_early_output(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.txt").write_text("previous run\n")
    script = textwrap.dedent(f"""
        import sys, warnings
        from dassl.utils import buffer_early_output, log_only, setup_logger
        buffer_early_output()
        print("Setting fixed seed: 0")
        log_only("early, file only")
        path = setup_logger({str(out)!r})
        print("after setup")
        log_only("late, file only")
        sys.stderr.write("to stderr\\n")
        sys.stderr.write("\\r 50%|#####     | progress bar redraw")
        warnings.warn("careful now")
        raise SystemExit(0)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "after setup" in proc.stdout and "Setting fixed seed" in proc.stdout
    log = (out / "log.txt").read_text()
    assert log.index("Setting fixed seed: 0") < log.index("early, file only") < log.index("after setup")
    assert log.index("after setup") < log.index("late, file only")
    assert "file only" not in proc.stdout + proc.stderr
    assert "to stderr" in log and "UserWarning: careful now" in log
    assert "progress bar" not in log and "progress bar" in proc.stderr
    rotated = [f for f in os.listdir(out) if f != "log.txt"]
    assert len(rotated) == 1 and re.fullmatch(r"log-\d{4}(-\d\d){5}\.txt", rotated[0])
    assert (out / rotated[0]).read_text() == "previous run\n"


def test_set_random_seed_zero_and_rng_snapshot(tmp_path):
    def draws():
        return (random.random(), float(np.random.rand()), float(torch.rand(1)))

    set_random_seed(0)
    a = draws()
    set_random_seed(0)
    assert draws() == a
    set_random_seed(1)
    assert draws() != a
    with pytest.raises(ValueError):
        set_random_seed(-1)

    set_random_seed(3)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    state = get_rng_state()
    expected = draws() + (float(np.random.randn()),)
    draws()
    path = str(tmp_path / "rng.pt")
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    set_rng_state(loaded)
    assert draws() + (float(np.random.randn()),) == expected


def test_configure_determinism_and_env_info():
    cfg = get_cfg_default()
    cfg.DETERMINISTIC = True
    try:
        configure_determinism(cfg)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.benchmark is False
    finally:
        cfg.DETERMINISTIC = False
        configure_determinism(cfg)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark is (torch.cuda.is_available())
    info = collect_env_info()
    assert torch.__version__ in info and "Python" in info


def _state(model, epoch, **extra):
    return {"state_dict": model.state_dict(), "epoch": epoch, "optimizer": None,
            "scheduler": None, "val_result": None, **extra}


def test_save_checkpoint_atomic_pointer_and_safe_load(tmp_path):
    model = nn.Linear(3, 2)
    d = str(tmp_path / "net")
    path = save_checkpoint(_state(model, 3), d)
    assert os.path.basename(path) == "model.pth.tar-3"
    assert open(os.path.join(d, "checkpoint")).read() == "model.pth.tar-3\n"
    save_checkpoint(_state(model, 3, val_result=0.5), d, model_name="model-best.pth.tar",
                    pointer="checkpoint-best")
    assert read_checkpoint_pointer(d) == "model.pth.tar-3"  # best save leaves it alone
    assert read_checkpoint_pointer(d, "checkpoint-best") == "model-best.pth.tar"
    save_checkpoint(_state(model, 4), d, is_best=True)
    assert read_checkpoint_pointer(d) == "model.pth.tar-4"
    assert load_checkpoint(os.path.join(d, "model-best.pth.tar"))["epoch"] == 4
    assert sorted(os.listdir(d)) == ["checkpoint", "checkpoint-best", "model-best.pth.tar",
                                     "model.pth.tar-3", "model.pth.tar-4"]  # no temp files

    wrapped = nn.DataParallel(model)
    save_checkpoint(_state(wrapped, 5), d)
    ckpt = torch.load(os.path.join(d, "model.pth.tar-5"), weights_only=True)
    assert list(ckpt["state_dict"]) == ["weight", "bias"]

    unsafe = str(tmp_path / "unsafe.pth")
    torch.save({"optimizer_object": torch.optim.SGD(model.parameters(), lr=0.1)}, unsafe)
    with pytest.raises(RuntimeError, match="weights_only"):
        load_checkpoint(unsafe)
    assert isinstance(load_checkpoint(unsafe, weights_only=False)["optimizer_object"], torch.optim.SGD)
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        load_checkpoint(str(tmp_path / "nothing.pth"))


def test_resume_from_checkpoint_and_pretrained_weights(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    d = str(tmp_path / "m")
    save_checkpoint({"state_dict": model.state_dict(), "epoch": 7,
                     "optimizer": optimizer.state_dict(), "scheduler": None}, d)
    other = nn.Linear(3, 2)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.5, momentum=0.9)
    assert resume_from_checkpoint(d, other, other_opt) == 7
    assert torch.equal(other.weight, model.weight)
    assert other_opt.param_groups[0]["lr"] == 0.1
    assert torch.equal(other_opt.state[other.weight]["momentum_buffer"],
                       optimizer.state[model.weight]["momentum_buffer"])
    with pytest.raises(FileNotFoundError):
        resume_from_checkpoint(str(tmp_path / "empty"), other)

    big = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 5))
    torch.save({"state_dict": {"0.weight": model.weight.detach(), "0.bias": model.bias.detach(),
                               "1.weight": torch.zeros(9, 9)}}, str(tmp_path / "pre.pth"))
    before = big[1].weight.detach().clone()
    load_pretrained_weights(big, str(tmp_path / "pre.pth"))
    assert torch.equal(big[0].weight, model.weight) and torch.equal(big[1].weight, before)


def test_read_image_errors(tmp_path):
    from PIL import Image

    good = tmp_path / "a.png"
    Image.fromarray(np.zeros((5, 7), dtype=np.uint8)).save(good)  # grayscale on disk
    img = read_image(str(good))
    assert img.mode == "RGB" and img.size == (7, 5)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        read_image(str(tmp_path / "missing.jpg"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(OSError, match="broken.jpg"):
        read_image(str(bad))


def test_setup_logger_file_name_variants(tmp_path):
    from dassl.utils import setup_logger, teardown_logger

    assert setup_logger(None) is None
    try:
        path = setup_logger(str(tmp_path / "logs" / "train.log"))
        print("first")
        again = setup_logger(str(tmp_path / "logs" / "train.log"))  # replaces the tee, rotates
        print("second")
    finally:
        teardown_logger()
    assert path == again and open(path).read() == "second\n"
    rotated = [f for f in os.listdir(tmp_path / "logs") if f != "train.log"]
    assert len(rotated) == 1 and re.fullmatch(r"train-[\d-]+\.log", rotated[0])
    assert (tmp_path / "logs" / rotated[0]).read_text() == "first\n"


def test_atomic_write_gives_files_the_umask_mode(tmp_path):
    from dassl.utils import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(str(tmp_path / "results.json"), "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "results.json").stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_count_noun_agrees_in_number():
    from dassl.utils import count_noun
    assert [count_noun(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert count_noun(1, "batch", "batches") == "1 batch" and count_noun(3, "batch", "batches") == "3 batches"
