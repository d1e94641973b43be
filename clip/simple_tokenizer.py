"""CLIP's byte-level BPE tokenizer (OpenAI's 49,408-token vocabulary).

Vocabulary ids: 0-255 the byte alphabet, 256-511 the same symbols with the end-of-word marker
``</w>``, 512-49405 the 48,894 merges in file order, 49406 ``<|startoftext|>``, 49407
``<|endoftext|>``. The merge list ``bpe_simple_vocab_16e6.txt.gz`` (from OpenAI's MIT-licensed
CLIP release) ships next to this module.
"""
from __future__ import annotations

import gzip
import html
import os
from functools import lru_cache

import ftfy
import regex

__all__ = ["SimpleTokenizer", "default_bpe", "bytes_to_unicode", "clean_text"]

SOT_TOKEN = "<|startoftext|>"
EOT_TOKEN = "<|endoftext|>"
# Merges used by CLIP: vocabulary size 49,408 = 256 bytes x 2 (+/- "</w>") + merges + 2 specials.
NUM_MERGES = 49152 - 256 - 2
END_OF_WORD = "</w>"


def default_bpe() -> str:
    """Path of the merge list shipped with the package."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpe_simple_vocab_16e6.txt.gz")


@lru_cache(maxsize=None)
def bytes_to_unicode() -> dict[int, str]:
    """Reversible map byte -> printable character, in vocabulary order.

    The 188 bytes that are already visible characters (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``)
    map to themselves and come first; the other 68 (space, controls, ...) map, in ascending
    byte order, to ``chr(256 + n)`` so that BPE symbols never contain whitespace or controls.
    """
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in visible}
    hidden = [b for b in range(256) if b not in mapping]
    mapping.update({b: chr(256 + n) for n, b in enumerate(hidden)})
    return mapping


_WHITESPACE = regex.compile(r"\s+")


def clean_text(text: str) -> str:
    """ftfy repair, HTML-unescape twice (doubly escaped scraped captions), collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


class SimpleTokenizer:
    """Text <-> BPE token ids. ``encode`` adds no start/end tokens; ``clip.tokenize`` does."""

    def __init__(self, bpe_path: str | None = None):
        bpe_path = bpe_path or default_bpe()
        if not os.path.isfile(bpe_path):
            raise FileNotFoundError(f"BPE merge list not found: {bpe_path}")
        with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        # Line 0 is a version header; the file holds more merges than CLIP's vocabulary uses.
        merges = [tuple(line.split()) for line in lines[1:NUM_MERGES + 1]]
        if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{bpe_path} is not a CLIP merge list (expected {NUM_MERGES} pairs)")

        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        alphabet = list(self.byte_encoder.values())
        vocab = alphabet + [c + END_OF_WORD for c in alphabet] + ["".join(m) for m in merges]
        vocab += [SOT_TOKEN, EOT_TOKEN]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.decoder = {i: token for token, i in self.encoder.items()}
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.vocab_size = len(vocab)
        self.sot_token = self.encoder[SOT_TOKEN]
        self.eot_token = self.encoder[EOT_TOKEN]
        # Special-token literals in the text stay single tokens.
        self.cache = {SOT_TOKEN: SOT_TOKEN, EOT_TOKEN: EOT_TOKEN}
        # Pieces: special literals, English contractions, letter runs, single digits, runs of
        # other non-space symbols. Whitespace is dropped: "</w>" marks word ends instead.
        self.pat = regex.compile(
            regex.escape(SOT_TOKEN) + "|" + regex.escape(EOT_TOKEN)
            + r"|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
            regex.IGNORECASE,
        )

    def bpe(self, piece: str) -> str:
        """BPE-merge one pre-token (already byte-mapped); returns its symbols joined by spaces."""
        if piece in self.cache:
            return self.cache[piece]
        symbols = list(piece[:-1]) + [piece[-1] + END_OF_WORD]
        while len(symbols) > 1:
            ranked = [(self.bpe_ranks[p], p) for p in zip(symbols, symbols[1:]) if p in self.bpe_ranks]
            if not ranked:
                break
            first, second = min(ranked)[1]
            merged, i = [], 0
            # Merge every non-overlapping occurrence, scanning left to right.
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        result = " ".join(symbols)
        self.cache[piece] = result
        return result

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` after cleaning, without start/end tokens."""
        ids: list[int] = []
        for piece in self.pat.findall(clean_text(text)):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self.bpe(mapped).split(" "))
        return ids

    def decode(self, tokens) -> str:
        """Text of token ids (iterable of ints); word ends become spaces, bad UTF-8 is replaced."""
        text = "".join(self.decoder[int(t)] for t in tokens)
        raw = bytearray(self.byte_decoder[c] for c in text)
        return raw.decode("utf-8", errors="replace").replace(END_OF_WORD, " ")
