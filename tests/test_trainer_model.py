"""CustomCLIP / PromptLearner / TextEncoder on tiny random CLIP models (CPU, fp32)."""
from __future__ import annotations

import functools

import pytest
import torch

from clip import clip
from clip.model import CLIP
from clip.random_weights import PRESETS, random_state_dict
from dassl.config import get_cfg_default
from trainers.method.model_spec import TestInput, add_trainer_config
from trainers.method.custom_clip import CustomCLIP, load_clip_to_cpu
from trainers.method.model_spec import ModelSpec
from tolerances import EXACT, FP16_FORWARD_ATOL, MOS_ATOL, UNIT_ATOL

LEVELS = ["terrible", "bad", "poor", "average", "good", "perfect"]
# Level names spanning several BPE tokens exercise the middle/front layouts.
LONG_LEVELS = ["extremely_poor", "mediocre", "excellent quality"]


def make_cfg(**trainer_opts):
    cfg = get_cfg_default()
    add_trainer_config(cfg)
    for key, value in trainer_opts.items():
        setattr(cfg.TRAINER.CLIP_AGIQA, key, value)
    return cfg


def make_spec(levels=LEVELS, **trainer_opts) -> ModelSpec:
    """A spec with these level names; options named as their config keys (N_CTX=3, ...)."""
    return ModelSpec(backbone="tiny-vit", level_names=tuple(levels),
                     **{key.lower(): value for key, value in trainer_opts.items()})


def tiny_clip(arch: str = "tiny-vit", **overrides) -> torch.nn.Module:
    """fp32 random CLIP; `overrides` change the preset (e.g. embed_dim)."""
    if overrides:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            state = CLIP(**dict(PRESETS[arch], **overrides)).state_dict()
    else:
        state = random_state_dict(arch)
    return clip.build_model(state).float()


def build(levels=LEVELS, arch="tiny-vit", seed=0, **trainer_opts) -> CustomCLIP:
    torch.manual_seed(seed)
    return CustomCLIP.from_spec(make_spec(levels, **trainer_opts), tiny_clip(arch)).eval()


@functools.lru_cache(maxsize=1)
def _reference_clip() -> torch.nn.Module:
    return tiny_clip()


def token_rows(text: str) -> torch.Tensor:
    """Token embeddings (77, D) of `text` with the (deterministic) tiny-vit embedding table."""
    with torch.no_grad():
        return _reference_clip().token_embedding(clip.tokenize(text))[0]


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_shapes_and_normalisation(images):
    model = build()
    with torch.no_grad():
        img = model.encode_image(images)
        txt = model.text_features()
        out = model(images)
    assert img.shape == (3, 64) and img.dtype == torch.float32
    assert txt.shape == (6, 64) and txt.dtype == torch.float32
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(3), rtol=0, atol=UNIT_ATOL)
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(6), rtol=0, atol=UNIT_ATOL)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert model.regression[1].in_features == 64 * 7
    assert model.regression[4].out_features == 1
    assert set(model.prompt_learner.state_dict()) == {"ctx", "token_prefix", "token_suffix"}
    assert set(model.regression.state_dict()) == {"1.weight", "1.bias", "4.weight", "4.bias"}
    # forward = regress(encode_image, text_features), computed from scratch by hand too.
    with torch.no_grad():
        flat = torch.cat([img, txt.reshape(1, -1).expand(3, -1)], dim=1)
        torch.testing.assert_close(out, model.regression(flat)[:, 0], rtol=0, atol=MOS_ATOL)


def test_batched_head_equals_per_sample_in_eval(images):
    model = build()
    with torch.no_grad():
        img, txt = model.encode_image(images), model.text_features()
        batched = model.regress(img, txt)
        singles = torch.stack([model.regression(torch.cat([img[i], txt.flatten()]))[0]
                               for i in range(3)])
    torch.testing.assert_close(batched, singles, rtol=0, atol=MOS_ATOL)  # batch vs rows


def test_batched_head_equals_per_sample_with_fixed_dropout_masks(images):
    model = build().train()
    masks = []
    hooks = [model.regression[i].register_forward_hook(
        lambda _m, inp, out: masks.append((out != 0) | (inp[0] == 0))) for i in (0, 3)]
    with torch.no_grad():
        img, txt = model.encode_image(images), model.text_features()
        torch.manual_seed(123)
        batched = model.regress(img, txt)
    for hook in hooks:
        hook.remove()
    mask1, mask2 = (m.float() for m in masks)
    assert 0.2 < mask1.mean() < 0.8  # dropout was really active
    lin1, lin2 = model.regression[1], model.regression[4]
    with torch.no_grad():
        for i in range(3):
            x = torch.cat([img[i], txt.flatten()]) * mask1[i] / 0.5
            hidden = torch.relu(lin1(x)) * mask2[i] / 0.5
            torch.testing.assert_close(batched[i], lin2(hidden)[0], rtol=0, atol=MOS_ATOL)
    # Same seed, same masks: the head is a deterministic function of the RNG state.
    with torch.no_grad():
        torch.manual_seed(123)
        torch.testing.assert_close(model.regress(img, txt), batched, **EXACT)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_class_token_positions(position):
    model = build(LONG_LEVELS, N_CTX=4, CLASS_TOKEN_POSITION=position)
    pl = model.prompt_learner
    with torch.no_grad():
        prompts = pl()
    assert prompts.shape == (3, 77, 64)
    for i, name in enumerate(LONG_LEVELS):
        name_tokens = token_rows(f"{name.replace('_', ' ')}.")
        n_name = pl.name_lens[i]
        assert n_name == int(clip.tokenize(name.replace("_", " "))[0].argmax()) - 1
        name_rows = name_tokens[1 : 1 + n_name]
        ctx = pl.ctx.detach()
        if position == "end":
            expected = [name_tokens[:1], ctx, name_rows]
        elif position == "middle":
            expected = [name_tokens[:1], ctx[:2], name_rows, ctx[2:]]
        else:
            expected = [name_tokens[:1], name_rows, ctx]
        head = torch.cat(expected)
        torch.testing.assert_close(prompts[i, : len(head)], head, **EXACT)  # copied rows
        # "." and EOT follow, and the EOT index from tokenized_prompts points at the EOT row.
        eot = int(pl.tokenized_prompts[i].argmax())
        assert eot == 1 + 4 + n_name + 1
        torch.testing.assert_close(prompts[i, eot], name_tokens[1 + n_name + 1], **EXACT)
        torch.testing.assert_close(prompts[i, eot - 1], name_tokens[1 + n_name], **EXACT)
    assert pl.tokenized_prompts.dtype == torch.int64
    assert "tokenized_prompts" not in pl.state_dict()  # non-persistent buffer


def test_class_specific_contexts():
    model = build(N_CTX=5, CSC=True, CLASS_TOKEN_POSITION="middle")
    pl = model.prompt_learner
    assert pl.ctx.shape == (6, 5, 64)
    with torch.no_grad():
        pl.ctx[2].fill_(0.5)
        prompts = pl()
    assert torch.all(prompts[2, 1:3] == 0.5)  # first half of class 2's own context
    assert not torch.any(prompts[1, 1:3] == 0.5)
    shared = build(N_CTX=5)
    assert shared.prompt_learner.ctx.shape == (5, 64)


@pytest.mark.parametrize("ctx_init", ["a photo of a", "a_picture_of_an_aigc_render"])
def test_ctx_init_counts_tokens_and_matches_the_sentence(ctx_init):
    model = build(CTX_INIT=ctx_init, N_CTX=16)
    pl = model.prompt_learner
    words = ctx_init.replace("_", " ")
    n_tokens = int(clip.tokenize(words)[0].argmax()) - 1
    assert pl.n_ctx == n_tokens and pl.ctx.shape == (n_tokens, 64)
    with torch.no_grad():
        prompts = pl()
        for i, name in enumerate(LEVELS):
            # The context starts as a copy of the words' embedding rows.
            torch.testing.assert_close(prompts[i], token_rows(f"{words} {name}."), **EXACT)
    if ctx_init.count("_") == 5:
        assert n_tokens > 6  # "aigc" is split into several BPE tokens, not counted as one word


def test_resnet_backbone_head_follows_embed_dim(images):
    torch.manual_seed(0)
    levels = ["bad", "fair", "good", "great"]
    model = CustomCLIP.from_spec(make_spec(levels, N_CTX=3),
                                 tiny_clip("tiny-rn", embed_dim=96)).eval()
    assert model.regression[1].in_features == 96 * (1 + 4)
    with torch.no_grad():
        out = model(images[:2])
        image_features = model.encode_image(images[:2])
        text_features = model.text_features()
        # The head reads [image | level_0 | ... | level_3], all unit-norm 96-d features.
        manual = model.regression(torch.cat(
            [image_features, text_features.reshape(1, -1).expand(2, -1)], dim=1)).squeeze(1)
    assert image_features.shape == (2, 96) and text_features.shape == (4, 96)
    torch.testing.assert_close(image_features.norm(dim=-1), torch.ones(2), rtol=0, atol=UNIT_ATOL)
    torch.testing.assert_close(text_features.norm(dim=-1), torch.ones(4), rtol=0, atol=UNIT_ATOL)
    torch.testing.assert_close(out, manual, rtol=0, atol=MOS_ATOL)


def test_text_feature_cache():
    model = build()
    with torch.no_grad():
        first = model.text_features()
        assert model.text_features() is first  # cached in eval mode
        # An in-place update invalidates. Not a constant shift: LayerNorm removes a row's mean,
        # so ctx + 0.1 gives the same features up to rounding (they differed by 1 ulp).
        ctx = model.prompt_learner.ctx
        ctx.add_(0.1 * torch.randn(ctx.shape, generator=torch.Generator().manual_seed(0)))
        second = model.text_features()
    # ctx moved by 0.1: the features move by far more than rounding (UNIT_ATOL).
    assert second is not first and not torch.allclose(second, first, rtol=0, atol=UNIT_ATOL)
    model.train()
    assert model._text_cache is None
    assert not model.image_encoder.training and not model.text_encoder.training
    assert model.regression.training
    grad_features = model.text_features()
    assert grad_features.requires_grad  # train mode: recomputed, differentiable
    assert model.text_features() is not grad_features


def test_config_validation_errors():
    from trainers.method.model_spec import check_trainer_config

    check_trainer_config(make_cfg(PREC="bf16"))  # bf16 is a precision since issue #13
    with pytest.raises(ValueError, match="PREC must be one of"):
        check_trainer_config(make_cfg(PREC="fp8"))
    with pytest.raises(ValueError, match="CPU_PREC must be one of"):
        check_trainer_config(make_cfg(CPU_PREC="amp"))
    with pytest.raises(ValueError, match="CLASS_TOKEN_POSITION"):
        check_trainer_config(make_cfg(CLASS_TOKEN_POSITION="start"))
    with pytest.raises(ValueError, match="N_CTX"):
        check_trainer_config(make_cfg(N_CTX=0))
    check_trainer_config(make_cfg(N_CTX=73), LEVELS)  # 73 + 1 + 3 = 77 fits exactly
    with pytest.raises(ValueError, match="78 tokens > context length 77"):
        check_trainer_config(make_cfg(N_CTX=74), LEVELS)
    spec = make_spec(test_input=TestInput(size=(256, 256)))
    with pytest.raises(ValueError, match="INPUT.SIZE"):
        CustomCLIP.from_spec(spec, tiny_clip())


def test_load_clip_to_cpu_reads_a_weights_file(tmp_path):
    from clip.random_weights import save_random_weights

    path = save_random_weights(tmp_path / "tiny.pt", "tiny-vit")
    cfg = make_cfg()
    cfg.MODEL.BACKBONE.NAME = str(path)
    model = load_clip_to_cpu(cfg)
    assert model.dtype == torch.float16 and not model.training  # upstream's mixed fp16
    reference = random_state_dict("tiny-vit")
    torch.testing.assert_close(model.token_embedding.weight, reference["token_embedding.weight"],
                               **EXACT)  # loaded as stored
    cfg.MODEL.BACKBONE.NAME = ""
    with pytest.raises(ValueError, match="MODEL.BACKBONE.NAME"):
        load_clip_to_cpu(cfg)
    cfg.MODEL.BACKBONE.NAME = str(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_clip_to_cpu(cfg)


def test_fp16_layout_matches_upstream_dtypes(images):
    """Unconverted CLIP (mixed fp16): fp16 context and prompt buffers, fp32 head and output."""
    torch.manual_seed(0)
    half = CustomCLIP.from_spec(make_spec(N_CTX=4), clip.build_model(random_state_dict("tiny-vit")))
    torch.manual_seed(0)
    full = CustomCLIP.from_spec(make_spec(N_CTX=4), tiny_clip()).eval()
    half.eval()
    pl = half.prompt_learner
    assert pl.ctx.dtype == pl.token_prefix.dtype == pl.token_suffix.dtype == torch.float16
    assert half.regression[1].weight.dtype == torch.float32
    with torch.no_grad():
        full.prompt_learner.ctx.copy_(pl.ctx)  # same (fp16-representable) context
        full.regression.load_state_dict(half.regression.state_dict())
        out_half, out_full = half(images[:2]), full(images[:2])
    assert out_half.dtype == torch.float32
    torch.testing.assert_close(out_half, out_full, rtol=0, atol=FP16_FORWARD_ATOL)
    half.train()
    half(images[:1]).sum().backward()
    assert pl.ctx.grad is not None and pl.ctx.grad.dtype == torch.float16


@pytest.mark.parametrize("options", [
    {}, {"HEAD_INPUT": "image"}, {"HEAD": "similarity"},
    {"PROMPT_TEMPLATE": "{level}, {prompt}"},
], ids=["upstream", "image_head", "similarity", "prompt_template"])
@pytest.mark.parametrize("crops", [0, 3])
def test_assess_features_is_predict_and_level_probabilities_with_one_text_encoding(
        options, crops, monkeypatch):
    """The scores and level probabilities of one pass (a test epoch, `Scorer.assess`) equal
    the two separate calls exactly (the same operations on the same tensors), while the
    per-image level prompts of PROMPT_TEMPLATE are encoded once instead of twice."""
    torch.manual_seed(0)
    model = CustomCLIP.from_spec(make_spec(N_CTX=4, **options), tiny_clip(),
                                 mos_range=(1.0, 5.0)).eval()  # the similarity head's range
    torch.manual_seed(1)
    shape = (2, crops, model.embed_dim) if crops else (2, model.embed_dim)
    features = torch.nn.functional.normalize(torch.randn(shape), dim=-1)
    prompts = ["a red fox in the snow", "a castle"] if options.get("PROMPT_TEMPLATE") else None
    with torch.no_grad():
        scores = model.predict_from_features(features, prompts)
        probabilities = model.level_probabilities(features, prompts)
        calls = []
        encode = model.conditioned_text_features
        monkeypatch.setattr(model, "conditioned_text_features",
                            lambda p: calls.append(len(p)) or encode(p))
        together = model.assess_features(features, prompts)
    torch.testing.assert_close(together[0], scores, **EXACT)
    torch.testing.assert_close(together[1], probabilities, **EXACT)
    assert probabilities.shape == (2, len(LEVELS)) and torch.isfinite(scores).all()
    assert len(calls) == (1 if prompts else 0)
