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


def _merge_pair(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """``symbols`` with every left-to-right occurrence of ``pair`` joined into one symbol."""
    merged: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def bpe_vocab_and_merges(words: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges that turn every piece of ``words`` into a single token.

    Byte-pair encoding trained on the pieces themselves: repeatedly join the most
    frequent adjacent pair (ties: the first in sorted order) in every piece, until
    each piece is one symbol. Encoding replays merges by rank, which is exactly this
    training order, so every piece encodes to its single token — a merge list built
    piece by piece does not have that property ("woman" came out as "wo" + "man"
    because "man"'s merges ranked first). The vocabulary starts with the 256 byte
    symbols and their ``</w>`` forms, so any other text still encodes.
    """
    alphabet = byte_alphabet()
    tokens: list[str] = list(alphabet.values()) + [c + "</w>" for c in alphabet.values()]
    known = set(tokens)
    pieces: list[list[str]] = []
    for word in words:
        for piece in word_pieces(word):
            symbols = [alphabet[b] for b in piece.encode("utf-8")]
            symbols[-1] += "</w>"
            if symbols not in pieces:
                pieces.append(symbols)
    merges: list[tuple[str, str]] = []
    while True:
        counts: dict[tuple[str, str], int] = {}
        for symbols in pieces:
            for pair in zip(symbols, symbols[1:], strict=False):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(sorted(counts), key=lambda pair: counts[pair])
        merges.append(best)
        merged = best[0] + best[1]
        if merged not in known:
            known.add(merged)
            tokens.append(merged)
        pieces = [_merge_pair(symbols, best) for symbols in pieces]
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
