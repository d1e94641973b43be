"""Code written against upstream Dassl.pytorch's API imports and runs on our compact `dassl`.

`COOP_STYLE_SOURCE` is a trainer and dataset module in the style of CoOp's (imports, registry
decorators, the hooks it overrides), kept as source text and imported from a file, as a user's
project would import it. The names it uses are the compatibility surface listed in
`dassl/__init__.py`.
"""
from __future__ import annotations

import importlib.util
import sys

import torch

COOP_STYLE_SOURCE = '''
import os.path as osp

import torch
import torch.nn as nn
from torch.nn import functional as F

from dassl.config import get_cfg_default
from dassl.data import DataManager
from dassl.data.datasets import DATASET_REGISTRY, Datum, DatasetBase
from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
from dassl.evaluation import build_evaluator
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import (collect_env_info, listdir_nohidden, load_checkpoint,
                         load_pretrained_weights, mkdir_if_missing, read_json, save_checkpoint,
                         set_random_seed, setup_logger, write_json)


@DATASET_REGISTRY.register()
class CompatToyPets(DatasetBase):
    dataset_dir = "toy_pets"

    def __init__(self, cfg):
        items = [Datum(impath=f"img{i}.jpg", label=i % 2, classname=("cat", "dog")[i % 2])
                 for i in range(4)]
        super().__init__(train_x=items, val=items[:2], test=items[2:])


@TRAINER_REGISTRY.register()
class CompatCoOp(TrainerX):
    def check_cfg(self, cfg):
        assert cfg.TRAINER.NAME == "CompatCoOp"

    def build_model(self):
        self.model = nn.Linear(3, 2)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("prompt_learner", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
'''


def _import_source(tmp_path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_coop_style_module_imports_and_its_classes_register(tmp_path):
    module = _import_source(tmp_path, "coop_style_user_module", COOP_STYLE_SOURCE)
    from dassl.data.datasets import DATASET_REGISTRY
    from dassl.engine import TRAINER_REGISTRY

    assert TRAINER_REGISTRY.get("CompatCoOp") is module.CompatCoOp
    dataset = DATASET_REGISTRY.get("CompatToyPets")(None)
    assert dataset.num_classes == 2 and dataset.classnames == ["cat", "dog"]
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    accuracy = module.compute_accuracy(logits, torch.tensor([0, 1, 1, 1]))[0]
    assert float(accuracy) == 75.0  # three of four top-1 predictions are right
