"""clip.load / clip.checkpoint: every weights file format, and clear errors for bad files."""
import sys
import warnings

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from clip import clip
from clip.checkpoint import CheckpointError, read_state_dict
from clip.random_weights import random_state_dict, save_random_weights
from clip.weights import WeightsNotFoundError

TEXTS = ["a photo of a cat", "a blurry render"]


class NotATensor:
    """Arbitrary Python object: must not be unpickled by the weights loader."""


@pytest.fixture(scope="module")
def reference():
    """(state dict, fp32 model built from it, images, tokens, image features, text features)."""
    state_dict = random_state_dict("tiny-vit", seed=7)
    model = clip.build_model(state_dict).float()
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        return state_dict, images, tokens, model.encode_image(images), model.encode_text(tokens)


def _assert_same_model(model, reference):
    _, images, tokens, image_features, text_features = reference
    assert model.dtype == torch.float32 and not model.training  # CPU load gives fp32, eval mode
    with torch.no_grad():
        assert torch.equal(model.encode_image(images), image_features)
        assert torch.equal(model.encode_text(tokens), text_features)


def test_load_plain_state_dict(tmp_path, reference):
    path = save_random_weights(tmp_path / "weights.pt", "tiny-vit", seed=7)
    model, preprocess = clip.load(str(path))
    _assert_same_model(model, reference)
    pixels = preprocess(Image.new("L", (320, 240), color=128))  # grey-scale, non-square input
    assert pixels.shape == (3, 224, 224) and pixels.dtype == torch.float32
    # Resizing a constant image is exact; normalisation is a few float32 roundings of a value
    # < 2 (< 1e-6), well inside 1e-5; a wrong mean or std is > 1e-2 off.
    assert torch.allclose(pixels[:, 0, 0], (128 / 255 - torch.tensor(clip.OPENAI_MEAN)) / torch.tensor(clip.OPENAI_STD),
                          rtol=0, atol=1e-5)


def test_load_nested_and_prefixed_state_dicts(tmp_path, reference):
    state_dict = reference[0]
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": state_dict, "epoch": 3}, nested)
    _assert_same_model(clip.load(str(nested))[0], reference)
    prefixed = tmp_path / "prefixed.bin"
    torch.save({f"module.{k}": v for k, v in state_dict.items()}, prefixed)
    _assert_same_model(clip.load(str(prefixed))[0], reference)


def test_load_safetensors(tmp_path, reference):
    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in reference[0].items()}, str(path))
    _assert_same_model(clip.load(str(path))[0], reference)
    # Content decides the format, not the extension.
    renamed = tmp_path / "weights.pt"
    renamed.write_bytes(path.read_bytes())
    _assert_same_model(clip.load(str(renamed))[0], reference)


def test_load_torchscript_archive(tmp_path, reference):
    state_dict = reference[0]
    module = clip.build_model(state_dict).float()
    # OpenAI's archives also carry scalars such as input_resolution next to the weights.
    module.register_buffer("input_resolution", torch.tensor(224))
    path = tmp_path / "ViT-tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(module, {"encode_text": reference[2]})
        torch.jit.save(traced, str(path))
    loaded = read_state_dict(str(path))
    assert "input_resolution" in loaded and "visual.conv1.weight" in loaded
    model, _ = clip.load(str(path))
    assert isinstance(model, clip.CLIP) and not isinstance(model, torch.jit.ScriptModule)
    _assert_same_model(model, reference)


def test_load_gives_fp32_on_cpu_and_load_weights_the_raw_dict(tmp_path):
    path = save_random_weights(tmp_path / "w.pt", "tiny-rn")
    model, preprocess = clip.load(str(path), device="cpu")
    assert model.visual.input_resolution == 224 and model.dtype == torch.float32
    state_dict = clip.load_weights(str(path))
    assert all(torch.equal(state_dict[k], v) for k, v in random_state_dict("tiny-rn").items())
    assert clip.build_model(state_dict).dtype == torch.float16  # mixed fp16 when built directly


def test_truncated_and_corrupt_files(tmp_path, reference):
    good = save_random_weights(tmp_path / "good.pt", "tiny-vit")
    data = open(good, "rb").read()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        clip.load(str(truncated))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 100)
    with pytest.raises(CheckpointError, match="garbage.bin"):
        clip.load(str(garbage))
    safetensors_path = tmp_path / "cut.safetensors"
    save_file({k: v.contiguous() for k, v in reference[0].items()}, str(safetensors_path))
    safetensors_path.write_bytes(safetensors_path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        clip.load(str(safetensors_path))


def test_wrong_architecture_is_rejected(tmp_path, reference):
    resnet_like = tmp_path / "resnet50_imagenet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048)}, resnet_like)
    with pytest.raises(CheckpointError, match="resnet50_imagenet.pth.*text_projection"):
        clip.load(str(resnet_like))
    broken = dict(reference[0])
    broken["visual.transformer.resblocks.1.attn.in_proj_weight"] = torch.zeros(3, 64)
    broken_path = tmp_path / "broken.pt"
    torch.save(broken, broken_path)
    with pytest.raises(CheckpointError, match="(?s)broken.pt.*size mismatch.*in_proj_weight"):
        clip.load(str(broken_path))


def test_pickled_objects_are_not_executed(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"model": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        clip.load(str(path))


def test_unknown_names_and_paths(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="ViT-B/16"):
        clip.load("ViT-H/99")
    with pytest.raises(FileNotFoundError, match="not an existing file"):
        clip.load(str(tmp_path / "missing.pt"))
    with pytest.raises(RuntimeError, match="directory"):
        clip.load(str(tmp_path))
    with pytest.raises(ValueError, match="jit=True"):
        clip.load("ViT-B/16", jit=True)


def test_public_api():
    import clip as package
    assert package.load is clip.load and package.tokenize is clip.tokenize
    assert clip.available_models() == ["RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16",
                                       "ViT-L/14", "ViT-L/14@336px"]
    assert clip._MODELS["ViT-B/16"].endswith("/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/"
                                              "ViT-B-16.pt")
    from clip.model import convert_weights
    from clip.simple_tokenizer import SimpleTokenizer
    assert package.model is sys.modules["clip.model"] and package.clip is sys.modules["clip.clip"]
    assert package.simple_tokenizer is sys.modules["clip.simple_tokenizer"]
    assert package.model.convert_weights is convert_weights
    assert package.simple_tokenizer.SimpleTokenizer is SimpleTokenizer
