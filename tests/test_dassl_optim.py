"""dassl.optim: optimizers, the reference LR table, warm-up variants, safe scheduler state."""
import io
import math
from collections import Counter

import pytest
import torch
import torch.nn as nn

from dassl.config import get_cfg_default
from dassl.optim import (ConstantWarmupScheduler, LinearWarmupScheduler, build_lr_scheduler,
                         build_optimizer)

# upstream_behaviour.md §4.3: LR of epochs 0..99 for vit_b16_ep100 (both optimizers).
REFERENCE_LR_TABLE = [
    "1.000000e-05", "2.000000e-03", "1.999507e-03", "1.998027e-03", "1.995562e-03",
    "1.992115e-03", "1.987688e-03", "1.982287e-03", "1.975917e-03", "1.968583e-03",
    "1.960294e-03", "1.951057e-03", "1.940881e-03", "1.929776e-03", "1.917755e-03",
    "1.904827e-03", "1.891007e-03", "1.876307e-03", "1.860742e-03", "1.844328e-03",
    "1.827081e-03", "1.809017e-03", "1.790155e-03", "1.770513e-03", "1.750111e-03",
    "1.728969e-03", "1.707107e-03", "1.684547e-03", "1.661312e-03", "1.637424e-03",
    "1.612907e-03", "1.587785e-03", "1.562083e-03", "1.535827e-03", "1.509041e-03",
    "1.481754e-03", "1.453990e-03", "1.425779e-03", "1.397148e-03", "1.368125e-03",
    "1.338738e-03", "1.309017e-03", "1.278991e-03", "1.248690e-03", "1.218143e-03",
    "1.187381e-03", "1.156434e-03", "1.125333e-03", "1.094108e-03", "1.062791e-03",
    "1.031411e-03", "1.000000e-03", "9.685892e-04", "9.372095e-04", "9.058917e-04",
    "8.746668e-04", "8.435655e-04", "8.126187e-04", "7.818568e-04", "7.513101e-04",
    "7.210089e-04", "6.909830e-04", "6.612621e-04", "6.318754e-04", "6.028521e-04",
    "5.742207e-04", "5.460095e-04", "5.182463e-04", "4.909586e-04", "4.641732e-04",
    "4.379166e-04", "4.122147e-04", "3.870929e-04", "3.625760e-04", "3.386881e-04",
    "3.154529e-04", "2.928932e-04", "2.710314e-04", "2.498889e-04", "2.294868e-04",
    "2.098450e-04", "1.909830e-04", "1.729194e-04", "1.556721e-04", "1.392580e-04",
    "1.236933e-04", "1.089935e-04", "9.517295e-05", "8.224537e-05", "7.022351e-05",
    "5.911923e-05", "4.894348e-05", "3.970631e-05", "3.141684e-05", "2.408324e-05",
    "1.771275e-05", "1.231166e-05", "7.885299e-06", "4.438035e-06", "1.973272e-06",]


def _optim_cfg(**overrides):
    cfg = get_cfg_default().OPTIM
    cfg.NAME, cfg.LR, cfg.MAX_EPOCH, cfg.LR_SCHEDULER = "sgd", 0.002, 100, "cosine"
    cfg.WARMUP_EPOCH, cfg.WARMUP_TYPE, cfg.WARMUP_CONS_LR = 1, "constant", 1e-5
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def _epoch_lrs(optimizer, scheduler, n):
    """LR used in each of n epochs, stepping the scheduler after each epoch."""
    lrs = []
    for _ in range(n):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _build(cfg, n_params=1):
    params = [nn.Parameter(torch.zeros(2)) for _ in range(n_params)]
    optimizer = build_optimizer(params, cfg)
    return optimizer, build_lr_scheduler(optimizer, cfg)


# Tolerances: learning rates are Python floats. PyTorch's schedulers update them recursively
# (each epoch's LR from the previous one), so <= 100 epochs accumulate a few hundred float64
# roundings, ~1e-13 relative, more where the cosine's factor nears 0 and cancels digits;
# rel 1e-9 (closed forms) and 1e-12 (the same schedule replayed) are above that, and the next
# epoch's LR differs by > 1e-4 relative. Bare pytest.approx (rel 1e-6) is used for short
# step/warm-up tables, where a wrong epoch differs by > 10 %.


def test_reference_lr_table_exact():
    cfg = _optim_cfg()
    # Two independent optimizers, as the method builds them: identical schedules.
    for _ in range(2):
        optimizer, scheduler = _build(cfg)
        lrs = _epoch_lrs(optimizer, scheduler, 100)
        assert [f"{lr:.6e}" for lr in lrs] == REFERENCE_LR_TABLE
        assert lrs[1] == 0.002 and lrs[0] == 1e-5
        assert lrs[51] == pytest.approx(0.001, rel=1e-12)
    # Closed form of the reference: lr(e) = 0.001 * (1 + cos(pi (e-1) / 100)) for e >= 1.
    for e in range(1, 100):
        assert lrs[e] == pytest.approx(0.001 * (1 + math.cos(math.pi * (e - 1) / 100)), rel=1e-9)


def test_no_recount_and_linear_warmup_closed_forms():
    optimizer, scheduler = _build(_optim_cfg(WARMUP_RECOUNT=False))
    lrs = _epoch_lrs(optimizer, scheduler, 100)
    assert lrs[0] == 1e-5
    for e in range(1, 100):
        expected = 0.002 * (1 + math.cos(math.pi * e / 100)) / (1 + math.cos(math.pi / 100))
        assert lrs[e] == pytest.approx(expected, rel=1e-9)

    cfg = _optim_cfg(WARMUP_EPOCH=4, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-4, MAX_EPOCH=10)
    optimizer, scheduler = _build(cfg)
    assert isinstance(scheduler, LinearWarmupScheduler)
    lrs = _epoch_lrs(optimizer, scheduler, 10)
    assert lrs[:4] == pytest.approx([1e-4, 0.0005, 0.001, 0.0015])
    for e in range(4, 10):
        assert lrs[e] == pytest.approx(0.001 * (1 + math.cos(math.pi * (e - 4) / 10)), rel=1e-9)


def test_step_schedulers():
    cfg = _optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(3,), GAMMA=0.5, WARMUP_EPOCH=-1, LR=1.0)
    assert _epoch_lrs(*_build(cfg), 7) == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    cfg = _optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(-1,), WARMUP_EPOCH=-1, LR=1.0, MAX_EPOCH=4)
    assert _epoch_lrs(*_build(cfg), 5) == pytest.approx([1, 1, 1, 1, 0.1])
    cfg = _optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=(2, 4), WARMUP_EPOCH=2, LR=1.0)
    assert _epoch_lrs(*_build(cfg), 6) == pytest.approx([1e-5, 1e-5, 1, 1, 0.1, 0.1])


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("amsgrad", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("rmsprop", torch.optim.RMSprop), ("radam", torch.optim.RAdam)])
def test_build_optimizer_hyperparameters(name, cls):
    cfg = _optim_cfg(NAME=name, LR=0.01, WEIGHT_DECAY=1e-3)
    optimizer = build_optimizer(nn.Linear(3, 2), cfg)
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.01 and group["weight_decay"] == 1e-3 and len(group["params"]) == 2
    if name == "sgd":
        assert group["momentum"] == 0.9 and group["dampening"] == 0 and group["nesterov"] is False
    if name in ("adam", "amsgrad", "adamw", "radam"):
        assert group["betas"] == (0.9, 0.999)
    if name in ("adam", "amsgrad"):
        assert group["amsgrad"] is (name == "amsgrad")


def test_staged_lr_and_errors():
    model = nn.Sequential()
    model.add_module("body", nn.Linear(3, 3))
    model.add_module("head", nn.Linear(3, 1))
    cfg = _optim_cfg(STAGED_LR=True, NEW_LAYERS=("head",), LR=0.1, BASE_LR_MULT=0.1)
    optimizer = build_optimizer(model, cfg)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.1])
    assert optimizer.param_groups[1]["params"][0] is model.head.weight
    with pytest.raises(ValueError, match="not children"):
        build_optimizer(model, _optim_cfg(STAGED_LR=True, NEW_LAYERS=("neck",)))
    with pytest.raises(ValueError, match="OPTIM.NAME"):
        build_optimizer(model, _optim_cfg(NAME="lion"))
    optimizer = build_optimizer(model, _optim_cfg())
    with pytest.raises(ValueError, match="LR_SCHEDULER"):
        build_lr_scheduler(optimizer, _optim_cfg(LR_SCHEDULER="poly"))
    with pytest.raises(ValueError, match="WARMUP_TYPE"):
        build_lr_scheduler(optimizer, _optim_cfg(WARMUP_TYPE="exp"))


def _assert_plain(obj, path="state"):
    """Only plain containers, numbers, strings, None and tensors: no objects."""
    if isinstance(obj, dict):  # includes Counter (MultiStepLR milestones)
        for k, v in obj.items():
            _assert_plain(v, f"{path}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _assert_plain(v, f"{path}[{i}]")
    else:
        assert obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)), \
            f"{path} is a {type(obj).__name__}"


@pytest.mark.parametrize("sched_name", ["cosine", "multi_step"])
def test_warmup_state_is_plain_and_resume_keeps_live_lr_moving(sched_name):
    cfg = _optim_cfg(LR_SCHEDULER=sched_name, STEPSIZE=(3, 6), MAX_EPOCH=10, WARMUP_EPOCH=2)
    reference = _epoch_lrs(*_build(cfg, n_params=2), 10)

    optimizer, scheduler = _build(cfg, n_params=2)
    assert isinstance(scheduler, ConstantWarmupScheduler)
    first = _epoch_lrs(optimizer, scheduler, 4)
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    _assert_plain(state["scheduler"])
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    if sched_name == "multi_step":
        assert isinstance(loaded["scheduler"]["successor"]["milestones"], Counter)

    # A fresh process: new parameters, optimizer and scheduler built from the config.
    optimizer2, scheduler2 = _build(cfg, n_params=2)
    optimizer2.load_state_dict(loaded["optimizer"])
    scheduler2.load_state_dict(loaded["scheduler"])
    assert scheduler2.successor.optimizer is optimizer2
    rest = _epoch_lrs(optimizer2, scheduler2, 6)
    assert first + rest == pytest.approx(reference, rel=1e-12)
    assert len(set(rest)) > 1  # the live LR keeps changing after resume
    assert all(g["lr"] == optimizer2.param_groups[0]["lr"] for g in optimizer2.param_groups)


def test_warmup_state_kind_mismatch():
    optimizer, scheduler = _build(_optim_cfg())
    state = scheduler.state_dict()
    _, linear = _build(_optim_cfg(WARMUP_TYPE="linear"))
    with pytest.raises(ValueError, match="constant"):
        linear.load_state_dict(state)
