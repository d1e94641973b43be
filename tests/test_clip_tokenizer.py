"""clip.simple_tokenizer / clip.tokenize: vocabulary file, open_clip parity, known ids, edge cases."""
import csv
import hashlib
from pathlib import Path

import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer as OpenClipTokenizer

from clip import clip
from clip.simple_tokenizer import SimpleTokenizer, bytes_to_unicode, default_bpe
from label_files import AGIQA3K_CSV

AGIQA_CSV = AGIQA3K_CSV  # committed: tests/data/README.md
# SHA-256 of OpenAI's bpe_simple_vocab_16e6.txt.gz (identical in the CLIP and open_clip releases).
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

EDGE_CASES = [
    "Café naïve résumé à la crème brûlée",
    "Tom &amp; Jerry &lt;3 &amp;amp; &quot;quotes&quot; &#39;x&#39;",
    "emoji 🙂🚀👍🏽 and flags 🇫🇷",
    "東京タワーと富士山の写真",
    "한국어 文字 中文 русский текст",
    "",
    "   \t\n  ",
    "don't we'll I'm they're it's you've he'd",
    "MiXeD   CaSe\twith\nwhitespace",
    "ﬁ ligature and Ｆｕｌｌｗｉｄｔｈ",
    "numbers 3.14159 2024 1,000,000",
    "mojibake: cafÃ©",
    "punctuation!!! ... ??? (brackets) [x] {y} <tag>",
]


@pytest.fixture(scope="module")
def reference():
    return OpenClipTokenizer()


def _agiqa_prompts():
    with open(AGIQA_CSV, newline="", encoding="utf-8") as handle:
        prompts = [row["prompt"] for row in csv.DictReader(handle)]
    assert len(prompts) > 2900
    return prompts


def test_vocabulary_file_is_openais():
    digest = hashlib.sha256(Path(default_bpe()).read_bytes()).hexdigest()
    assert digest == VOCAB_SHA256


def test_vocabulary_layout():
    tok = SimpleTokenizer()
    assert tok.vocab_size == 49408 and (tok.sot_token, tok.eot_token) == (49406, 49407)
    assert tok.encoder["<|startoftext|>"] == 49406 and tok.decoder[49407] == "<|endoftext|>"
    mapping = bytes_to_unicode()
    assert len(set(mapping.values())) == 256 and mapping[ord("a")] == "a" and mapping[ord(" ")] == "Ġ"
    assert tok.encoder["a"] == list(mapping).index(ord("a")) and tok.encoder["a</w>"] == 256 + tok.encoder["a"]


def test_agiqa_prompts_match_open_clip(reference):
    prompts = _agiqa_prompts()
    ours = clip.tokenize(prompts, truncate=True)
    theirs = reference(prompts)
    assert ours.dtype == torch.long and ours.shape == (len(prompts), 77)
    mismatched = [p for p, a, b in zip(prompts, ours, theirs) if not torch.equal(a, b)]
    assert not mismatched, f"{len(mismatched)} prompts differ, e.g. {mismatched[:3]}"


def test_edge_cases_match_open_clip(reference):
    tok = SimpleTokenizer()
    for text in EDGE_CASES:
        assert tok.encode(text) == reference.encode(text), text
    assert torch.equal(clip.tokenize(EDGE_CASES), reference(EDGE_CASES))


def test_known_ids():
    tok = SimpleTokenizer()
    words = {"terrible": 9741, "bad": 2103, "poor": 3665, "average": 6254, "good": 886, "perfect": 1878,
             "x": 343, ".": 269}
    for word, token in words.items():
        assert tok.encode(word) == [token], word
    row = clip.tokenize(" ".join(["X"] * 16) + " terrible.")[0]
    assert row[:20].tolist() == [49406] + [343] * 16 + [9741, 269, 49407]
    assert int(row.argmax()) == 19 and not row[20:].any()


def test_cleaning_and_special_tokens():
    tok = SimpleTokenizer()
    assert tok.encode("A &amp;amp; B") == tok.encode("a & b")
    assert tok.encode("  Hello\n\tWORLD ") == tok.encode("hello world")
    assert tok.encode("<|endoftext|>") == [49407]
    assert clip.tokenize("")[0, :3].tolist() == [49406, 49407, 0]


def test_decode_round_trip():
    tok = SimpleTokenizer()
    for text in ["a photo of a cat.", "café 🙂 東京", "don't stop"]:
        assert tok.decode(tok.encode(text)).strip().replace(" ", "") == text.replace(" ", "")
    assert tok.decode([49406, 343, 49407]) == "<|startoftext|>x <|endoftext|>"


def test_too_long_raises_unless_truncated(reference):
    text = " ".join(["word"] * 80)
    with pytest.raises(RuntimeError, match="too long for context length 77"):
        clip.tokenize(text)
    with pytest.raises(ValueError):
        clip.tokenize(["ok", text])
    truncated = clip.tokenize(text, truncate=True)
    assert truncated[0, 0] == 49406 and truncated[0, -1] == 49407 and int(truncated[0].argmax()) == 76
    assert (truncated[0, 1:76] == SimpleTokenizer().encode("word")[0]).all()
    assert torch.equal(truncated, reference(text))
    exact = " ".join(["word"] * 75)  # 75 + start + end = 77: fits exactly
    assert int(clip.tokenize(exact)[0].argmax()) == 76
    assert clip.tokenize(exact, context_length=100).shape == (1, 100)
