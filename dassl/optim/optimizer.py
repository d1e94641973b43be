"""``build_optimizer``: torch optimizers configured from ``cfg.OPTIM``."""
from __future__ import annotations

import warnings
from typing import Iterable, Optional, Union

import torch
import torch.nn as nn

AVAI_OPTIMS = ["adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw"]


def _staged_param_groups(model: nn.Module, optim_cfg) -> list[dict]:
    """Children named in ``NEW_LAYERS`` train at ``LR``, the rest at ``LR * BASE_LR_MULT``."""
    if not isinstance(model, nn.Module):
        raise TypeError("OPTIM.STAGED_LR needs an nn.Module, not an iterable of parameters")
    if isinstance(model, nn.DataParallel):
        model = model.module
    new_layers = optim_cfg.NEW_LAYERS
    new_layers = [new_layers] if isinstance(new_layers, str) else list(new_layers)
    if not new_layers:
        raise ValueError("OPTIM.STAGED_LR is True but OPTIM.NEW_LAYERS is empty")
    children = dict(model.named_children())
    unknown = [n for n in new_layers if n not in children]
    if unknown:
        raise ValueError(f"OPTIM.NEW_LAYERS {unknown} are not children of the model: {list(children)}")
    base_params, new_params = [], []
    for name, module in children.items():
        (new_params if name in new_layers else base_params).extend(module.parameters())
    return [{"params": base_params, "lr": optim_cfg.LR * optim_cfg.BASE_LR_MULT},
            {"params": new_params}]


def build_optimizer(model_or_params: Union[nn.Module, Iterable], optim_cfg,
                    param_groups: Optional[list] = None) -> torch.optim.Optimizer:
    """Build the optimizer named by ``optim_cfg.NAME`` (``cfg.OPTIM``).

    Parameters come from ``param_groups`` if given, else from staged LR groups
    (``STAGED_LR``), else from ``model.parameters()`` (or the iterable itself). Frozen
    parameters may be included: they never receive gradients, so they are never updated.
    ``radam`` is ``torch.optim.RAdam`` (Dassl ships its own variant).
    """
    name = optim_cfg.NAME
    if name not in AVAI_OPTIMS:
        raise ValueError(f"OPTIM.NAME must be one of {AVAI_OPTIMS}, got {name!r}")
    lr, wd = optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)

    if param_groups is not None:
        if optim_cfg.STAGED_LR:
            warnings.warn("OPTIM.STAGED_LR is ignored because param_groups were given")
        params = param_groups
    elif optim_cfg.STAGED_LR:
        params = _staged_param_groups(model_or_params, optim_cfg)
    elif isinstance(model_or_params, nn.Module):
        params = model_or_params.parameters()
    else:
        params = model_or_params

    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=betas, amsgrad=name == "amsgrad")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                               dampening=optim_cfg.SGD_DAMPNING, nesterov=optim_cfg.SGD_NESTEROV)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd,
                                   alpha=optim_cfg.RMSPROP_ALPHA)
    if name == "radam":
        return torch.optim.RAdam(params, lr=lr, weight_decay=wd, betas=betas)
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=betas)
