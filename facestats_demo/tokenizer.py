"""A small CLIP BPE tokenizer built offline from a word list.

OpenAI's tokenizer (49,408 tokens) cannot be downloaded here, so the demo and test
CLIPs get a byte-level BPE tokenizer of the same kind (``CLIPTokenizer``: byte
alphabet, ``</w>`` word ends, ``<|startoftext|>`` / ``<|endoftext|>``) whose merges
spell out each given word as one token. Any other text still encodes, byte by byte,
so prompts outside the word list do not fail. Saved with ``save_pretrained`` and
loaded back with ``CLIPTokenizer.from_pretrained`` like a real one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
_PIECES = re.compile(r"[^\W\d_]+|\d|[^\s\w]+|_+")


def byte_alphabet() -> dict[int, str]:
    """GPT-2 / CLIP byte → printable character map (every byte gets one visible character)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


def word_pieces(text: str) -> list[str]:
    """The pieces CLIP's pre-tokenizer splits lower-cased ``text`` into (letters, single digits, punctuation)."""
    return _PIECES.findall(text.lower())


def bpe_vocab_and_merges(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges that turn every piece of ``words`` into a single token.

    The vocabulary starts with the 256 byte symbols and their ``</w>`` forms, so any
    text can be encoded; each new piece adds the left-to-right merges that build it.
    """
    alphabet = byte_alphabet()
    tokens: list[str] = list(alphabet.values()) + [c + "</w>" for c in alphabet.values()]
    known = set(tokens)
    merges: list[tuple[str, str]] = []
    seen_merges: set[tuple[str, str]] = set()
    for word in words:
        for piece in word_pieces(word):
            symbols = [alphabet[b] for b in piece.encode("utf-8")]
            symbols[-1] += "</w>"
            while len(symbols) > 1:
                pair = (symbols[0], symbols[1])
                merged = pair[0] + pair[1]
                if pair not in seen_merges:
                    seen_merges.add(pair)
                    merges.append(pair)
                if merged not in known:
                    known.add(merged)
                    tokens.append(merged)
                symbols = [merged, *symbols[2:]]
    tokens += [BOS, EOS]
    return {token: index for index, token in enumerate(tokens)}, merges


def build_clip_tokenizer(words: Iterable[str]) -> Any:
    """A ``CLIPTokenizer`` whose vocabulary holds ``words`` (plus the byte alphabet)."""
    from transformers import CLIPTokenizer

    vocab, merges = bpe_vocab_and_merges(words)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def save_clip_tokenizer(words: Iterable[str], output_dir: Path) -> int:
    """Build the tokenizer of ``words``, ``save_pretrained`` it to ``output_dir``; returns its vocabulary size."""
    tokenizer = build_clip_tokenizer(words)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(output_dir)
    return len(tokenizer)
