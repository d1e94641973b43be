"""Checkpoints written by the original CLIP-AGIQA code load safely and give the same predictions.

The test writes such a checkpoint itself: its `scheduler` entry pickles an object of a class from
a throwaway module (standing in for `dassl.optim.lr_scheduler.ConstantWarmupScheduler`) that holds
a real `CosineAnnealingLR` holding a real `SGD`, exactly like the original files; the throwaway
module is then removed, so only a loader that never imports pickled classes can read the file.
"""
from __future__ import annotations

import builtins
import os
import pickle
import sys
import types

import pytest
import torch

from dassl.utils.restricted_pickle import InertObject, inert_state
from dassl.utils.torchtools import read_checkpoint as safe_load_checkpoint

from test_trainer_training import assets, make_trainer  # noqa: F401  (fixture + helper)

FAKE_MODULE = "dassl_original_fake.optim.lr_scheduler"


class _Evil:
    """Unpickling runs `command` through `function` (os.system or exec)."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


def _fake_optim_module():
    """Look-alikes of the original's optimizer/scheduler classes, in a module that will vanish."""
    module = types.ModuleType(FAKE_MODULE)

    class SGD:
        def __init__(self, params, lr, momentum, weight_decay):
            self.defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
            self.param_groups = [dict(self.defaults, params=list(params))]
            self.state = {}

    class CosineAnnealingLR:
        def __init__(self, optimizer, T_max):
            self.optimizer = optimizer
            self.T_max, self.eta_min = T_max, 0
            self.base_lrs = [group["lr"] for group in optimizer.param_groups]
            self.last_epoch, self._step_count = 99, 100

    class ConstantWarmupScheduler:
        def __init__(self, optimizer, successor, warmup_epoch, cons_lr):
            self.optimizer = optimizer
            self.successor = successor
            self.warmup_epoch, self.cons_lr = warmup_epoch, cons_lr
            self.base_lrs = [group["lr"] for group in optimizer.param_groups]
            self.last_epoch, self.verbose, self._step_count = 100, False, 101

        def state_dict(self):  # the original: everything but the optimizer
            return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    for cls in (SGD, CosineAnnealingLR, ConstantWarmupScheduler):
        cls.__module__, cls.__qualname__ = FAKE_MODULE, cls.__name__
        setattr(module, cls.__name__, cls)
    return module


def write_original_run(directory, prompt_state, regression_state, evil=(), successor="torch"):
    """Lay out `directory` like an original run (best file, last file, pointer).

    `successor="torch"`: the warmup wrapper holds a real torch CosineAnnealingLR and SGD (as in
    the original files); "fake": look-alike classes from the vanished module.
    """
    module = _fake_optim_module()
    for name in ("dassl_original_fake", "dassl_original_fake.optim", FAKE_MODULE):
        sys.modules[name] = module
    try:
        for name, state in (("prompt_learner", prompt_state), ("regression", regression_state)):
            params = [torch.nn.Parameter(v.clone()) for v in state.values() if v.is_floating_point()]
            if successor == "torch":
                optim = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=5e-4)
                cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=100.0)
            else:
                optim = module.SGD(params, lr=0.002, momentum=0.9, weight_decay=5e-4)
                cosine = module.CosineAnnealingLR(optim, T_max=100.0)
            sched = module.ConstantWarmupScheduler(optim, cosine, 1, 1e-5)
            scheduler_state = sched.state_dict()
            # The wrapper object itself too, so the file names a class nobody can import.
            scheduler_state["wrapper"] = sched
            scheduler_state.update({f"evil{i}": e for i, e in enumerate(evil)})
            optim_state = optim.state_dict() if successor == "torch" else {"state": {}}
            folder = directory / name
            folder.mkdir(parents=True)
            for fname, epoch, scale in (("model-best.pth.tar", 37, 1.0),
                                        ("model.pth.tar-100", 100, -1.0)):
                torch.save({"state_dict": {k: v * scale if k in ("ctx", "4.bias") else v
                                           for k, v in state.items()},
                            "epoch": epoch, "optimizer": optim_state,
                            "scheduler": scheduler_state, "val_result": 0.8123},
                           folder / fname)
            (folder / "checkpoint").write_text("model.pth.tar-100\n")
    finally:
        for name in ("dassl_original_fake", "dassl_original_fake.optim", FAKE_MODULE):
            sys.modules.pop(name, None)


def original_states(trainer, seed=7):
    """Random upstream-style states: fp16 prompt learner (fp16 run), fp32 head."""
    g = torch.Generator().manual_seed(seed)
    pl = {k: v.half() for k, v in trainer.model.prompt_learner.state_dict().items()}
    pl["ctx"] = (torch.randn(pl["ctx"].shape, generator=g) * 0.5).half()
    reg = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in
           trainer.model.regression.state_dict().items()}
    return pl, reg


def predictions(trainer):
    trainer.test()
    return [row[2] for row in trainer.evaluator.predictions()]


@pytest.mark.parametrize("successor", ["torch", "fake"])
def test_original_checkpoints_load_and_predict_identically(assets, tmp_path, successor):  # noqa: F811
    trainer = make_trainer(assets, tmp_path / "direct")
    pl_state, reg_state = original_states(trainer)
    run = tmp_path / "original_run"
    write_original_run(run, pl_state, reg_state, successor=successor)
    assert "dassl_original_fake" not in sys.modules

    best = run / "prompt_learner" / "model-best.pth.tar"
    with pytest.raises(pickle.UnpicklingError):
        torch.load(best, weights_only=True)  # so the restricted fallback is what reads it
    checkpoint = safe_load_checkpoint(best)
    # A stored Python float: approx's default (METRIC_REL) only absorbs the decimal literal.
    assert checkpoint["epoch"] == 37 and checkpoint["val_result"] == pytest.approx(0.8123)
    assert torch.equal(checkpoint["state_dict"]["ctx"], pl_state["ctx"])
    assert checkpoint["state_dict"]["ctx"].dtype == torch.float16
    stub = checkpoint["scheduler"]["successor"]
    assert isinstance(stub, InertObject) and "CosineAnnealingLR" in repr(stub)
    assert inert_state(stub)["T_max"] == 100.0
    wrapper = checkpoint["scheduler"]["wrapper"]
    assert repr(wrapper) == f"<inert {FAKE_MODULE}.ConstantWarmupScheduler>"
    assert inert_state(wrapper)["warmup_epoch"] == 1

    # Reference: the same parameters set directly.
    with torch.no_grad():
        trainer.model.prompt_learner.ctx.copy_(pl_state["ctx"])
        trainer.model.regression.load_state_dict(reg_state)
    expected = predictions(trainer)

    loaded = make_trainer(assets, tmp_path / "loaded")
    loaded.load_model(str(run))
    assert predictions(loaded) == expected
    assert loaded.loaded_checkpoints["prompt_learner"]["epoch"] == 37
    assert loaded.loaded_checkpoints["regression"]["val_result"] == pytest.approx(0.8123)  # idem

    loaded.load_model(str(run), epoch=100)  # the other file: negated ctx and last bias
    assert torch.equal(loaded.model.prompt_learner.ctx, -pl_state["ctx"].float())
    assert predictions(loaded) != expected


def test_pickled_code_is_never_executed(assets, tmp_path):  # noqa: F811
    marker_system = tmp_path / "pwned_by_system"
    marker_exec = tmp_path / "pwned_by_exec"
    evil = (_Evil(os.system, f"touch '{marker_system}'"),
            _Evil(builtins.exec, f"open(r'{marker_exec}', 'w').close()"))
    trainer = make_trainer(assets, tmp_path / "out")
    pl_state, reg_state = original_states(trainer)
    run = tmp_path / "run"
    write_original_run(run, pl_state, reg_state, evil=evil)

    checkpoint = safe_load_checkpoint(run / "regression" / "model-best.pth.tar")
    assert isinstance(checkpoint["scheduler"]["evil0"], InertObject)
    assert isinstance(checkpoint["scheduler"]["evil1"], InertObject)
    trainer.load_model(str(run))
    assert not marker_system.exists() and not marker_exec.exists()

    # Control: the same payload does run under a plain unpickler, so the check above can fail.
    control = tmp_path / "control.pt"
    torch.save({"evil": evil[0]}, control)
    torch.load(control, weights_only=False)
    assert marker_system.exists()


def test_safe_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth.tar"):
        safe_load_checkpoint(tmp_path / "nowhere.pth.tar")
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, plain)
    assert safe_load_checkpoint(plain)["epoch"] == 3
