"""clip.model: numerical parity with open_clip, dtypes, shape inference, random weights."""

import open_clip.model as open_clip_model
import pytest
import torch

from clip import clip
from clip.model import CLIP, build_model, convert_weights, infer_hyperparameters
from clip.random_weights import PRESETS, random_state_dict, save_random_weights
from tolerances import FP16_FORWARD_ATOL, reorder_atol

TEXTS = ["a photo of a cat.", "X X X X X X X X X X X X X X X X terrible.", "an over-saturated render, 4k"]


def _pair(arch, overrides=None):
    """(ours, open_clip) built from one random state dict, both fp32."""
    state_dict = random_state_dict(arch, seed=1, overrides=overrides)
    ours = build_model(dict(state_dict)).float()
    ref = open_clip_model.build_model_from_openai_state_dict(dict(state_dict)).float()
    return ours, ref


# Real ViT-B/16 and RN50 widths, patch size, resolution, heads and image-tower stages; only the
# transformer depths are cut to 2 to keep the test fast (deeper stacks repeat the same block).
SHALLOW = {"ViT-B/16": {"vision_layers": 2, "transformer_layers": 2}, "RN50": {"transformer_layers": 2}}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ViT-B/16", "RN50"])
def test_parity_with_open_clip(arch):
    ours, ref = _pair(arch, SHALLOW[arch])
    if arch == "RN50":
        assert [len(getattr(ours.visual, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert ours.visual.input_resolution == 224 and ours.text_projection.shape[0] == 512
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 224, 224, generator=generator)
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        ours_img, ref_img = ours.encode_image(images), ref.encode_image(images)
        ours_txt, ref_txt = ours.encode_text(tokens), ref.encode_text(tokens)
        logits, logits_t = ours(images, tokens)
    embed_dim = 512 if arch == "ViT-B/16" else 1024
    assert ours_img.shape == (2, embed_dim) and ours_txt.shape == (3, embed_dim)
    # Features must be non-trivial for the comparison to mean anything.
    assert ref_img.std() > 1e-2 and ref_txt.std() > 1e-2
    # open_clip computes the same maths in another order: rounding only, relative to the
    # features' scale, with the widest sums of these models (3x3x512 = 4608 terms in RN50's
    # convolutions, 3072 in ViT's MLP) and <= 60 stages (RN50's 50 layers and its pool).
    rel = reorder_atol(1.0, terms=4608, stages=60)  # 2.5e-4
    assert (ours_img - ref_img).abs().max() < rel * float(ref_img.abs().max())
    assert (ours_txt - ref_txt).abs().max() < rel * float(ref_txt.abs().max())
    expected = ref.logit_scale.exp() * torch.nn.functional.normalize(ref_img, dim=-1) @ \
        torch.nn.functional.normalize(ref_txt, dim=-1).t()
    # Cosines carry the features' relative error, times the logit scale (100).
    assert torch.allclose(logits, expected, rtol=0, atol=rel * float(ref.logit_scale.detach().exp()))
    assert torch.equal(logits_t, logits.t())


@pytest.mark.parametrize("arch", ["tiny-vit", "tiny-rn"])
def test_tiny_parity_with_open_clip_in_fp32(arch):
    ours, ref = _pair(arch)
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    tokens = clip.tokenize(TEXTS + ["", "good"])
    with torch.no_grad():
        # Same maths in another order (open_clip): rounding only, relative to the features'
        # scale (reorder_atol: sums of <= 512 terms, <= 20 stages in these tiny models).
        for ours_out, ref_out in ((ours.encode_image(images), ref.encode_image(images)),
                                  (ours.encode_text(tokens), ref.encode_text(tokens))):
            assert (ours_out - ref_out).abs().max() < reorder_atol(float(ref_out.abs().max()))


def test_build_model_dtypes_like_openai():
    model = build_model(random_state_dict("tiny-vit"))
    assert model.dtype == torch.float16 and not model.training
    for name in ("token_embedding.weight", "positional_embedding", "ln_final.weight", "visual.class_embedding",
                 "logit_scale", "visual.positional_embedding", "visual.ln_post.bias"):
        assert model.state_dict()[name].dtype == torch.float32, name
    for name in ("visual.conv1.weight", "visual.proj", "text_projection", "transformer.resblocks.0.attn.in_proj_weight",
                 "transformer.resblocks.0.attn.out_proj.bias", "transformer.resblocks.1.mlp.c_fc.weight"):
        assert model.state_dict()[name].dtype == torch.float16, name
    assert model.float().dtype == torch.float32
    rn = build_model(random_state_dict("tiny-rn"))
    assert rn.visual.bn1.weight.dtype == torch.float32 and rn.visual.attnpool.q_proj.weight.dtype == torch.float16


def test_fp16_model_runs_and_matches_fp32():
    state_dict = random_state_dict("tiny-vit", seed=3)
    half, full = build_model(state_dict), build_model(state_dict).float()
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        out16, out32 = half.encode_image(images), full.encode_image(images)
        txt16 = half.encode_text(tokens)
    assert out16.dtype == torch.float16 and txt16.dtype == torch.float16
    # float16 storage rounds each stage's output (FP16_FORWARD_ATOL, relative to the scale).
    assert (out16.float() - out32).abs().max() < FP16_FORWARD_ATOL * out32.abs().max()


@pytest.mark.parametrize("arch", list(PRESETS))
def test_hyperparameters_read_off_shapes(arch):
    state_dict = random_state_dict(arch) if arch.startswith("tiny") else _meta_state_dict(arch)
    inferred = infer_hyperparameters(state_dict)
    expected = dict(PRESETS[arch])
    assert {k: (tuple(v) if isinstance(v, list) else v) for k, v in inferred.items()} == expected


def _meta_state_dict(arch):
    with torch.device("meta"):
        return CLIP(**PRESETS[arch]).state_dict()


def test_input_resolution_and_context_length():
    model = build_model(random_state_dict("tiny-rn"))
    assert model.visual.input_resolution == 224 and model.context_length == 77
    with pytest.raises(ValueError, match="224x224"):
        model.encode_image(torch.zeros(1, 3, 192, 192))


def test_text_is_causal_and_read_at_end_token():
    model = build_model(random_state_dict("tiny-vit")).float()
    tokens = clip.tokenize(["a photo of a dog"])
    altered = tokens.clone()
    eot = int(tokens.argmax())
    altered[0, eot + 1:] = 1234  # tokens after the end token must not matter (causal mask)
    changed = tokens.clone()
    changed[0, 1] = 1234  # a token before it must
    with torch.no_grad():
        base, after, before = (model.encode_text(t) for t in (tokens, altered, changed))
    assert torch.equal(base, after)
    assert (base - before).abs().max() > 1e-3


def test_build_model_keeps_input_and_drops_openai_scalars():
    state_dict = random_state_dict("tiny-vit")
    state_dict.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
                      vocab_size=torch.tensor(49408))
    state_dict["attn_mask"] = torch.zeros(77, 77)  # saved as a buffer by older open_clip versions
    keys = set(state_dict)
    model = build_model(state_dict)
    assert set(state_dict) == keys
    assert torch.equal(model.token_embedding.weight, state_dict["token_embedding.weight"])
    # BatchNorm counters are optional (some exporters drop them).
    rn = random_state_dict("tiny-rn")
    without = build_model({k: v for k, v in rn.items() if not k.endswith("num_batches_tracked")})
    assert int(without.visual.bn1.num_batches_tracked) == 0
    assert torch.equal(without.visual.layer1[0].bn3.running_var, rn["visual.layer1.0.bn3.running_var"])


def test_build_model_rejects_wrong_state_dicts():
    state_dict = random_state_dict("tiny-vit")
    with pytest.raises(ValueError, match="text_projection"):
        build_model({k: v for k, v in state_dict.items() if k != "text_projection"})
    with pytest.raises(ValueError, match="(?i)missing"):
        build_model({k: v for k, v in state_dict.items() if k != "visual.ln_post.weight"})
    bad = dict(state_dict)
    bad["transformer.resblocks.0.mlp.c_fc.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="c_fc"):
        build_model(bad)


def test_convert_weights_in_place():
    model = CLIP(**PRESETS["tiny-rn"])
    convert_weights(model)
    assert model.visual.conv1.weight.dtype == torch.float16
    assert model.visual.layer1[0].bn1.weight.dtype == torch.float32
    assert model.transformer.resblocks[0].attn.in_proj_bias.dtype == torch.float16


def test_random_weights_seeded_and_rng_neutral(tmp_path):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = random_state_dict("tiny-vit", seed=0)
    assert torch.equal(torch.rand(1), before)  # global RNG untouched
    second = random_state_dict("tiny-vit", seed=0)
    other = random_state_dict("tiny-vit", seed=1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["visual.conv1.weight"], other["visual.conv1.weight"])
    assert all(v.dtype == torch.float32 for v in first.values() if v.is_floating_point())
    path = save_random_weights(tmp_path / "w.pt", "tiny-rn", seed=4)
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in random_state_dict("tiny-rn", seed=4).items())
    shallow = random_state_dict("tiny-vit", overrides={"transformer_layers": 1})
    assert infer_hyperparameters(shallow)["transformer_layers"] == 1
    with pytest.raises(ValueError, match="tiny-vit"):
        random_state_dict("ViT-H/14")


@pytest.mark.parametrize("arch", ["tiny-vit", "tiny-rn"])
def test_tiny_presets_are_small(arch):
    """The tiny presets stay small enough for CPU tests (size, not wall-clock time, is asserted:
    timings belong in benchmarks/, where a busy machine cannot make a test flaky)."""
    tokens = clip.tokenize(TEXTS)
    images = torch.randn(2, 3, 224, 224)
    model = build_model(random_state_dict(arch, seed=5)).float()
    n_params = sum(p.numel() for p in model.parameters())
    # The token embedding alone is 49,408 x 64 = 3.16 M; the towers must add little on top.
    assert n_params < 5_000_000, n_params
    with torch.no_grad():
        image_features = model.encode_image(images)
        text_features = model.encode_text(tokens)
    assert image_features.shape == (2, 64) and text_features.shape == (3, 64)
    assert torch.isfinite(image_features).all() and torch.isfinite(text_features).all()


def test_random_weights_command_line(tmp_path):
    """`python -m clip.random_weights` has --help, writes the named file and says where."""
    import subprocess
    import sys
    help_run = subprocess.run([sys.executable, "-m", "clip.random_weights", "--help"],
                              capture_output=True, text=True)
    assert help_run.returncode == 0 and "--arch" in help_run.stdout and "MODEL.BACKBONE.NAME" in help_run.stdout
    target = tmp_path / "sub dir" / "w.pt"
    run = subprocess.run([sys.executable, "-m", "clip.random_weights", str(target), "--arch", "tiny-rn",
                          "--seed", "3"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert str(target) in run.stdout
    saved = torch.load(target, weights_only=True)
    expected = random_state_dict("tiny-rn", seed=3)
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in saved)
    bare = subprocess.run([sys.executable, "-m", "clip.random_weights"], capture_output=True, text=True)
    assert bare.returncode == 2 and "output" in bare.stderr
    folder = subprocess.run([sys.executable, "-m", "clip.random_weights", str(tmp_path)],
                            capture_output=True, text=True)
    assert folder.returncode == 2 and folder.stderr.startswith("error:") and "folder" in folder.stderr
