"""Weight-file errors are one line naming the file and the likely cause, with no advice to
unpickle untrusted code; the usual container layouts of the same weights load."""
from __future__ import annotations

import argparse

import pytest
import torch
from safetensors.torch import save_file

from clip.checkpoint import CheckpointError, model_from_file, read_state_dict
from clip.random_weights import save_random_weights
import score
import train


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = save_random_weights(tmp_path_factory.mktemp("w") / "tiny.pt", "tiny-vit")
    return path, read_state_dict(str(path))


def one_line_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        model_from_file(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "weights_only=False" not in message
    return message


@pytest.mark.parametrize("content, cause", [
    (b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>BlobNotFound"
     b"</body></html>\n", "it is an HTML page"),
    (b"", "it is empty"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:5806e77c\nsize 351\n",
     "Git LFS pointer"),
    (b'{"error":"Repository Not Found"}', "JSON error message"),
    (b"\x1f\x8b\x08\x00" + b"\x00" * 64, "gzip-compressed"),
])
def test_files_that_are_not_weights_say_what_they_are(tmp_path, content, cause):
    path = tmp_path / "ViT-B-16.pt"
    path.write_bytes(content)
    assert cause in one_line_error(path)


def test_truncated_archives_are_named_as_such(tmp_path, weights):
    data = open(weights[0], "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated archive" in one_line_error(cut)
    tensors = tmp_path / "cut.safetensors"
    save_file({k: v.contiguous() for k, v in weights[1].items()}, str(tensors))
    tensors.write_bytes(tensors.read_bytes()[:-1000])
    assert "truncated safetensors file" in one_line_error(tensors)


def test_other_models_and_unknown_containers(tmp_path, weights):
    hf = tmp_path / "pytorch_model.bin"
    torch.save({"text_model.embeddings.token_embedding.weight": torch.zeros(4, 2),
                "vision_model.embeddings.patch_embedding.weight": torch.zeros(2, 3, 2, 2)}, hf)
    assert "Hugging Face transformers CLIPModel" in one_line_error(hf)
    prompt = tmp_path / "model-best.pth.tar"
    torch.save({"state_dict": {"ctx": torch.zeros(4, 8), "token_prefix": torch.zeros(6, 1, 8)}},
               prompt)
    assert "prompt-learner checkpoint" in one_line_error(prompt)
    unknown = tmp_path / "unknown.pt"
    torch.save({"checkpoint": {"weights_of_epoch_3": {"a": 1}}, "epoch": 3}, unknown)
    assert "unknown container layout" in one_line_error(unknown)
    pickled = tmp_path / "with_args.pt"
    torch.save({"state_dict": weights[1], "args": argparse.Namespace(lr=1)}, pickled)
    message = one_line_error(pickled)
    assert "argparse.Namespace" in message and "re-save it as a plain state dict" in message


@pytest.mark.parametrize("wrap", [
    lambda sd: {"model": sd},
    lambda sd: {"model_state_dict": sd, "optimizer": {"lr": 0.1}},
    lambda sd: {"epoch": 32, "name": "ViT-B-16", "state_dict": {f"module.{k}": v
                                                                for k, v in sd.items()}},
    lambda sd: {"state_dict": {f"model.clip.{k}": v for k, v in sd.items()}},
    lambda sd: {f"clip_model.{k}": v for k, v in sd.items()},
], ids=["model", "model_state_dict", "open_clip_training", "double_prefix", "prefix"])
def test_container_layouts_of_the_same_weights_load(tmp_path, weights, wrap):
    path = tmp_path / "wrapped.pt"
    torch.save(wrap(weights[1]), path)
    loaded = read_state_dict(str(path))
    assert loaded.keys() == weights[1].keys()
    assert all(torch.equal(loaded[k], weights[1][k]) for k in loaded)
    model_from_file(str(path))


def test_train_reports_an_html_page_as_weights_in_one_line(user_error, tiny_args, tmp_path):
    page = tmp_path / "ViT-B-16.pt"
    page.write_bytes(b"<html><body><h1>403 Forbidden</h1></body></html>")
    message = user_error(tiny_args(tmp_path / "out", weights=page))
    assert message == (f"cannot read CLIP weights from {page}: it is an HTML page (48 bytes), not "
                       "weights: a failed download saves the server's error page under the file "
                       "name; delete it and download again")


def test_module_checkpoint_errors_are_one_line(tmp_path, weights):
    from dassl.utils import CheckpointFileError, load_checkpoint

    page = tmp_path / "model-best.pth.tar"
    page.write_bytes(b"<!DOCTYPE html><html><body>Not Found</body></html>")
    cut = tmp_path / "model.pth.tar-3"
    data = open(weights[0], "rb").read()
    cut.write_bytes(data[: len(data) // 3])
    garbage = tmp_path / "model.pth.tar-4"
    garbage.write_bytes(b"<" + bytes(range(256)) * 4)
    for path, cause in ((page, "it is an HTML page"), (cut, "truncated or corrupt file?"),
                        (garbage, "truncated or corrupt file?")):
        with pytest.raises(CheckpointFileError) as info:
            load_checkpoint(str(path))
        message = str(info.value)
        assert message.startswith(f"Cannot read checkpoint {path} ({cause}")
        assert "\n" not in message and "weights_only" not in message



def test_train_without_network_says_which_key_to_pass_in_one_line(user_error, tiny_args,
                                                                   tmp_path, no_network):
    message = user_error(tiny_args(tmp_path / "out", "MODEL.BACKBONE.NAME", "ViT-B/16"))
    assert "\n" not in message
    assert message.startswith("CLIP weights for 'ViT-B/16' are not available (not cached, and "
                              "the download failed: OpenAI: cannot connect to 127.0.0.1:")
    assert "pass MODEL.BACKBONE.NAME path/to/ViT-B-16.pt (a local weights file)" in message
    assert f"put ViT-B-16.pt into {no_network.cache}, where a download would go" in message
    assert "clip.load()" not in message and not (tmp_path / "out").exists()


def test_score_without_network_says_which_flag_to_pass_in_one_line(tmp_path, no_network, capsys,
                                                                   tiny_assets, tiny_args):
    run = tmp_path / "run"
    train.main(tiny_args(run))
    status = score.main([str(run), tiny_assets["root"], "--backbone", "ViT-B/16",
                         "--output", str(tmp_path / "s.csv"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: CLIP weights for 'ViT-B/16' are not available (not cached")
    assert "pass --backbone path/to/ViT-B-16.pt (a local weights file)" in err
    assert f"put ViT-B-16.pt into {no_network.cache}, where a download would go" in err
