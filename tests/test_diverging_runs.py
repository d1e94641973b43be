"""Issue 25, fault 4: a run that diverges (a learning rate typed 1000 for 1e-3, an fp16 overflow)
ends with one `error:` line naming epoch, step, loss, learning rate and precision with a hint;
the same command again gives the same line; no checkpoint with non-finite values is ever the
resume point."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

import train
from dassl.engine.base import TrainerBase
from dassl.utils import read_checkpoint, read_checkpoint_pointer


def _finite(path: Path) -> bool:
    state = read_checkpoint(str(path))["state_dict"]
    return all(bool(torch.isfinite(v).all()) for v in state.values()
               if torch.is_tensor(v) and v.is_floating_point())


def test_a_diverging_run_ends_with_one_line_twice_and_keeps_only_finite_checkpoints(
        tiny_args, user_error, tmp_path, monkeypatch):
    out = tmp_path / "run"
    # The first epoch trains normally; from the second the step blows the weights up, as a
    # learning rate 1e6 times too high does (the tiny model's loss would merely grow slowly).
    real_update = TrainerBase.model_update

    def update(self, names=None):
        real_update(self, names)
        if self.epoch >= 1 and self.batch_idx >= 1:
            with torch.no_grad():
                for name in self.get_model_names(names):
                    for p in self._models[name].parameters():
                        if p.requires_grad:
                            p.mul_(1e30)
    monkeypatch.setattr(TrainerBase, "model_update", update)
    argv = tiny_args(out, "OPTIM.LR", "1000.0", epochs=3)
    first = user_error(argv)
    assert re.search(r"^training diverged at epoch 2/3, step \d+/\d+: (the loss is (nan|inf)|"
                     r"\w+'s [\w.]+ holds non-finite values) \(learning rate 1000(\.0)?, "
                     r"precision \w+\)", first), first
    assert "lower OPTIM.LR" in first and "--force" in first
    # The resume point is the end of epoch 1, with finite values only.
    for module in ("prompt_learner", "regression"):
        pointer = read_checkpoint_pointer(str(out / module))
        assert pointer == "model.pth.tar-1" and _finite(out / module / pointer)
    assert not (out / "results.json").exists()
    assert user_error(argv) == first  # the same command: the same line, no traceback


def test_a_non_finite_loss_or_checkpoint_is_named_not_saved(tiny_args, user_error, tmp_path,
                                                            monkeypatch):
    # A loss that overflows in the first step of a new run (as fp16 does): no checkpoint at all.
    real_loss = None

    def overflow(self, output, mos):
        return real_loss(self, output, mos) * math.inf
    from trainers.method.custom_clip import CustomCLIP
    real_loss = CustomCLIP.loss
    monkeypatch.setattr(CustomCLIP, "loss", overflow)
    message = user_error(tiny_args(tmp_path / "new", "OPTIM.LR", "0.002"))
    # (the first epoch runs at the yaml's constant warm-up learning rate, 1e-05)
    assert message.startswith("training diverged at epoch 1/1, step 1/") and \
        "the loss is inf (learning rate 1e-05, precision " in message
    assert not (tmp_path / "new").exists() or not list((tmp_path / "new").rglob("model.pth*"))
    monkeypatch.undo()

    # A resume point written with non-finite weights (by an older version) is refused by name.
    out = tmp_path / "old"
    train.main(tiny_args(out, epochs=1))
    ckpt = out / "regression" / "model.pth.tar-1"
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][key] = torch.full_like(state["state_dict"][key], math.nan)
    torch.save(state, ckpt)
    (out / "results.json").unlink()
    message = user_error(tiny_args(out, epochs=1))
    assert message.startswith(f"cannot resume from {ckpt}: ")
    assert f"regression's {key} holds non-finite values" in message and "--force" in message


@pytest.mark.parametrize("loss", [math.nan, -math.inf])
def test_detect_anomaly_is_a_floating_point_error(loss):
    trainer = TrainerBase()
    with pytest.raises(FloatingPointError, match="training diverged at epoch 1/.*the loss is"):
        trainer.detect_anomaly(torch.tensor(loss))


def test_the_error_names_the_learning_rate_of_the_step_that_diverged(tiny_args, capsys, tmp_path,
                                                                     monkeypatch):
    # The weights go non-finite in the last step of epoch 3: the check before its checkpoint
    # finds them after the scheduler has stepped to epoch 4's (lower, cosine) rate.
    real_update = TrainerBase.model_update

    def update(self, names=None):
        real_update(self, names)
        if self.epoch == 2 and self.batch_idx == self.num_batches - 1:
            with torch.no_grad():
                for name in self.get_model_names(names):
                    for p in self._models[name].parameters():
                        if p.requires_grad:
                            p.mul_(math.inf)
    monkeypatch.setattr(TrainerBase, "model_update", update)
    with pytest.raises(SystemExit) as info:
        train.main(tiny_args(tmp_path / "run", "TRAIN.PRINT_FREQ", "1", epochs=4))
    out, err = capsys.readouterr()
    assert info.value.code == 2, err
    message = re.search(r"training diverged at epoch (\d+)/4, step (\d+)/(\d+): .*"
                        r"\(learning rate ([^,]+), precision", err)
    assert message, err
    epoch, step = message.group(1), message.group(2)
    assert (epoch, step) == ("3", message.group(3))
    logged = [float(m.group(1)) for m in re.finditer(
        rf"^epoch \[{epoch}/4\] batch \[{step}/\d+\] .* lr (\S+) ", out, re.MULTILINE)]
    assert len(logged) == 1, out
    lrs = {float(m.group(1)) for m in re.finditer(r"^epoch \[\d/4\] .* lr (\S+) ", out,
                                                  re.MULTILINE)}
    assert len(lrs) > 2  # the schedule changes the rate between epochs: the check can fail
    # Both are printed to 4 significant digits (".4g" and ".4e"): equal within that rounding.
    assert float(message.group(4)) == pytest.approx(logged[0], rel=1e-3)
