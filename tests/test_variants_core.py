"""Numerical cores of the method variants (issue 16): similarity head, multi-crop grid,
prompt-conditioned templates and image-encoder fine-tuning, each on its own (tiny CLIP, CPU)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from yacs.config import CfgNode

from clip.checkpoint import model_from_file
from clip.random_weights import save_random_weights
from dassl.config import get_cfg_default
from trainers.method.model_spec import TestInput, add_trainer_config
from trainers.fast.decoded_images import DecodedImages
from trainers.method.encoder_tuning import attach_encoder_tuning, lora_targets
from trainers.fast.multi_crop import MultiCropTransform, average_crops, crop_offsets, grid_shape
from trainers.method.prompt_learner import PromptLearner, TextEncoder
from trainers.method.prompt_template import (ConditionedPromptTokens, check_template,
                                      conditioned_embeddings, fill_template)
from trainers.method.similarity_head import SimilarityHead, expected_level
from trainers.fast.tensor_transforms import TensorTransform

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
LEVELS = ["bad", "poor", "fair", "good", "excellent"]


@pytest.fixture(scope="module")
def tiny_clip_file(tmp_path_factory):
    return save_random_weights(tmp_path_factory.mktemp("variants") / "tiny.pt", "tiny-vit")


def fresh_clip(path):
    return model_from_file(path).float().eval()


def method_cfg(**trainer_keys) -> CfgNode:
    cfg = get_cfg_default()
    add_trainer_config(cfg)
    cfg.INPUT.SIZE = (224, 224)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    for key, value in trainer_keys.items():
        setattr(cfg.TRAINER.CLIP_AGIQA, key, value)
    return cfg


# ---------------------------------------------------------------- similarity head

def test_similarity_head_equals_a_hand_computation_on_two_images():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])      # 3 levels, unit length
    head = SimilarityHead(n_levels=3, logit_scale=2.0, mos_range=(1.0, 5.0))
    # By hand: cosines (1, 0.6, 0) and (0, 0.8, 1), times 2, softmax, expected index, then
    # the map of the MOS range (level 0 -> 1, level 2 -> 5): MOS = 2 * index + 1.
    expected = []
    for cosines in ((1.0, 0.6, 0.0), (0.0, 0.8, 1.0)):
        weights = [math.exp(2.0 * c) for c in cosines]
        index = sum(i * w for i, w in enumerate(weights)) / sum(weights)
        expected.append(2.0 * index + 1.0)
    # float32 softmax of three terms: relative error a few ulp (1e-6).
    torch.testing.assert_close(head(image, text), torch.tensor(expected), rtol=1e-6, atol=1e-6)
    # Per-image level features that repeat the shared ones give the same numbers.
    torch.testing.assert_close(head(image, text.expand(2, 3, 2)), torch.tensor(expected),
                               rtol=1e-6, atol=1e-6)


def test_similarity_head_trains_only_the_map_and_what_made_the_text():
    torch.manual_seed(0)
    head = SimilarityHead(n_levels=4, logit_scale=100.0, mos_range=(0.0, 3.0))
    ctx = torch.randn(4, 8, requires_grad=True)
    image = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    text = torch.nn.functional.normalize(ctx, dim=1)
    loss = (head(image, text) - torch.arange(5.0)).pow(2).mean()
    loss.backward()
    assert [name for name, p in head.named_parameters() if p.grad is not None] == \
        ["slope", "intercept"]
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    assert not head.logit_scale.requires_grad and "logit_scale" in head.state_dict()


def test_expected_level_saturates_to_the_most_similar_level():
    text = torch.eye(3)
    image = torch.tensor([[0.0, 0.0, 1.0]])
    # The other levels' softmax weights are exp(-1000) = 0 in float32; 1e-6 covers the rounding
    # of the normalisation (2 ulp of 2.0 = 4.8e-7).
    assert expected_level(image, text, 1000.0).item() == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(ValueError, match="built for 3 levels"):
        SimilarityHead(3, 100.0, (0.0, 1.0))(image, torch.eye(4, 3))


# ---------------------------------------------------------------- multi-crop

def random_images(sizes, seed=0) -> DecodedImages:
    generator = torch.Generator().manual_seed(seed)
    groups, group_of, row_of = [], [], []
    for g, (h, w) in enumerate(sizes):
        groups.append(torch.randint(0, 256, (1, 3, h, w), dtype=torch.uint8, generator=generator))
        group_of.append(g)
        row_of.append(0)
    return DecodedImages(list(sizes), groups, torch.tensor(group_of), torch.tensor(row_of),
                         torch.device("cpu"))


def test_one_crop_is_exactly_the_centre_crop_test_transform():
    cfg = method_cfg()
    images = random_images([(300, 240), (240, 320), (224, 224), (96, 64)])
    indices = torch.arange(4)
    single = TensorTransform.from_config(cfg, is_train=False)(images, indices)
    cfg.TEST.NUM_CROPS = 1
    assert torch.equal(MultiCropTransform(TestInput.from_config(cfg))(images, indices), single)


def test_grid_shape_and_offsets():
    assert grid_shape(15, 512, 768) == (3, 5)
    assert grid_shape(15, 768, 512) == (5, 3)
    assert grid_shape(7, 500, 500) == (1, 7)
    (h, w), offsets = crop_offsets(512, 768, (224, 224), 15)
    assert (h, w) == (512, 768) and len(offsets) == 15
    assert offsets[0] == (0, 0) and offsets[-1] == (512 - 224, 768 - 224)
    assert [left for top, left in offsets[:5]] == [0, 136, 272, 408, 544]
    # Too small for a native crop: the shorter side is resized to 224 first.
    assert crop_offsets(200, 300, (224, 224), 2)[0] == (224, 336)
    with pytest.raises(ValueError, match="NUM_CROPS"):
        grid_shape(0, 10, 10)


def test_multi_crops_are_the_native_pixels_of_the_grid():
    cfg = method_cfg()
    cfg.TEST.NUM_CROPS = 6
    sizes = [(300, 400), (256, 230)]
    images = random_images(sizes, seed=1)
    crops = MultiCropTransform(TestInput.from_config(cfg))(images, torch.tensor([1, 0]))
    assert crops.shape == (12, 3, 224, 224)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    for b, index in enumerate([1, 0]):
        pixels = images.groups[index][0].float()
        _, offsets = crop_offsets(*sizes[index], (224, 224), 6)
        for k, (top, left) in enumerate(offsets):
            native = (pixels[:, top:top + 224, left:left + 224] / 255.0 - mean) / std
            # Identity resampling is exact; the tolerance covers float32 normalisation only.
            torch.testing.assert_close(crops[b * 6 + k], native, rtol=0, atol=1e-5)
    assert torch.equal(average_crops(torch.arange(12.0), 6), torch.tensor([2.5, 8.5]))


# ---------------------------------------------------------------- prompt-conditioned levels

def test_template_filling_and_the_empty_generation_prompt():
    template = "{level}, {prompt}"
    assert fill_template(template, "bad", "a cat  on a mat") == "bad, a cat on a mat"
    assert fill_template(template, "bad", "") == "bad"
    assert fill_template(template, "bad", "   ") == "bad"
    assert fill_template("{level} image of {prompt}!", "good", "") == "good!"
    assert fill_template("", "good", "a dog") == "good"
    for bad in ("{prompt} {level}", "{level}", "{level} {prompt} {x}", "{level} {level} {prompt}"):
        with pytest.raises(ValueError, match="PROMPT_TEMPLATE"):
            check_template(bad)


def test_empty_generation_prompt_gives_the_plain_level_prompt_features(tiny_clip_file):
    torch.manual_seed(0)
    clip_model = fresh_clip(tiny_clip_file)
    learner = PromptLearner(LEVELS, clip_model, n_ctx=4)
    tokens = ConditionedPromptTokens("X X X X", LEVELS, "{level}, {prompt}", 77)
    ids = tokens.ids(["", "a red fox in the snow"])
    assert torch.equal(ids[0], learner.tokenized_prompts)
    assert not torch.equal(ids[1], learner.tokenized_prompts)
    embedded = conditioned_embeddings(learner.ctx, clip_model.token_embedding, ids)
    assert torch.equal(embedded[:5], learner())
    encoder = TextEncoder(clip_model)
    with torch.no_grad():
        plain = encoder(learner(), learner.tokenized_prompts)
        conditioned = encoder(embedded, ids.reshape(10, -1))
    # Identical inputs in a batch of 10 instead of 5: the float32 kernels may block the sums
    # differently, so equality holds to float32 rounding.
    torch.testing.assert_close(conditioned[:5], plain, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(conditioned[5:], plain)  # other tokens: a real difference
    # The context slots hold the learned context: the gradient reaches it.
    encoder(conditioned_embeddings(learner.ctx, clip_model.token_embedding, ids),
            ids.reshape(10, -1)).sum().backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0


def test_long_generation_prompts_are_truncated_with_a_warning():
    tokens = ConditionedPromptTokens("X X X X", ["bad", "good"], "{level}, {prompt}", 20)
    with pytest.warns(UserWarning, match="truncated"):
        ids = tokens.ids(["a very long prompt " * 10])
    assert ids.shape == (1, 2, 20)
    assert (ids[0, :, -1] == ids.max()).all()      # the end-of-text token stays last
    assert tokens.truncated == ["a very long prompt " * 10]
    assert tokens.ids(["short"]).shape == (1, 2, 20)


# ---------------------------------------------------------------- image-encoder fine-tuning

def test_lora_with_zero_b_is_the_frozen_encoder_and_trains_only_its_factors(tiny_clip_file):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 224, 224)
    frozen = fresh_clip(tiny_clip_file).visual
    with torch.no_grad():
        reference = frozen(images)
    encoder = fresh_clip(tiny_clip_file).visual
    adapters = attach_encoder_tuning(encoder, "lora", rank=2)
    with torch.no_grad():
        assert torch.equal(encoder(images), reference)
    assert len(adapters.adapters) == 4 * 2    # 4 weights per block, 2 blocks
    assert all(p.dtype == torch.float32 for p in adapters.parameters())

    encoder(images).sum().backward()
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in encoder.named_parameters() if p.grad is not None}
    assert trainable == with_grad and trainable
    assert all(n.endswith(("lora_A", "lora_B")) for n in trainable)
    assert len(trainable) == 2 * len(adapters.adapters)

    # A non-zero B adds exactly B @ A to each weight: compare with merged weights.
    with torch.no_grad():
        for lora in adapters.adapters.values():
            lora.lora_B.normal_(std=0.01)
        merged = fresh_clip(tiny_clip_file).visual
        for (name, module, leaf), (_, adapted, _) in zip(lora_targets(merged),
                                                         lora_targets(encoder)):
            getattr(module, leaf).copy_(getattr(adapted, leaf))
        # Same weights, two code paths: float32 rounding of the sums only.
        torch.testing.assert_close(encoder(images), merged(images), rtol=1e-4, atol=1e-5)
        # B ~ N(0, 0.01) moves the features by far more than 1e-3 (a real difference).
        assert not torch.allclose(encoder(images), reference, atol=1e-3)


def test_last_k_trains_exactly_the_last_blocks_in_float32(tiny_clip_file):
    clip_model = model_from_file(tiny_clip_file)       # mixed fp16, as upstream's weights
    encoder = clip_model.visual
    blocks = attach_encoder_tuning(encoder, "last_k", last_k=1)
    assert all(p.dtype == torch.float32 for p in blocks.parameters())
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("transformer.resblocks.1.") for n in trainable)
    assert trainable == {f"transformer.resblocks.1.{n}" for n, _ in blocks[0].named_parameters()}
    with pytest.raises(ValueError, match="ENCODER_LAST_K"):
        attach_encoder_tuning(fresh_clip(tiny_clip_file).visual, "last_k", last_k=3)
    with pytest.raises(ValueError, match="TRAIN_IMAGE_ENCODER"):
        attach_encoder_tuning(encoder, "all")


def test_last_k_in_fp32_gets_gradients_only_in_those_blocks(tiny_clip_file):
    encoder = fresh_clip(tiny_clip_file).visual
    attach_encoder_tuning(encoder, "last_k", last_k=1)
    encoder(torch.randn(1, 3, 224, 224)).pow(2).sum().backward()
    with_grad = {n for n, p in encoder.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert np.all([p.grad.abs().sum() > 0 for p in encoder.parameters() if p.grad is not None])


@pytest.mark.parametrize("mode", ["last_k", "lora"])
def test_fp16_encoder_trains_float32_parameters(tiny_clip_file, mode):
    images = torch.randn(1, 3, 224, 224).half()
    frozen = model_from_file(tiny_clip_file).visual          # mixed fp16 (upstream layout)
    with torch.no_grad():
        reference = frozen(images)
    encoder = model_from_file(tiny_clip_file).visual
    trainable = attach_encoder_tuning(encoder, mode, last_k=1, rank=2)
    output = encoder(images)
    assert output.dtype == torch.float16
    if mode == "lora":   # zero B: the adapted fp16 weights are the frozen ones, bit for bit
        assert torch.equal(output.detach(), reference)
    output.float().sum().backward()
    grads = [p.grad for p in trainable.parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
