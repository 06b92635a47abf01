"""The offline CLIP tokenizer: given words are single tokens, anything else still encodes, and it round-trips."""

from pathlib import Path

from facestats_demo.tokenizer import BOS, EOS, bpe_vocab_and_merges, save_clip_tokenizer, word_pieces


def test_word_pieces_split_like_clip() -> None:
    assert word_pieces("A photo, aged 20-29!") == ["a", "photo", ",", "aged", "2", "0", "-", "2", "9", "!"]


def test_given_words_become_single_tokens(tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    save_clip_tokenizer(["a photo of a woman", "east asian"], tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("A photo of an East Asian woman").input_ids)
    assert tokens[0] == BOS and tokens[-1] == EOS
    assert tokens[1:-1] == ["a</w>", "photo</w>", "of</w>", "an</w>", "east</w>", "asian</w>", "woman</w>"]


def test_unknown_text_is_spelt_byte_by_byte_and_decodes(tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    save_clip_tokenizer(["woman"], tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path)
    ids = tokenizer("woman zürich").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "woman zürich"


def test_vocab_has_every_byte_and_ids_are_dense() -> None:
    vocab, merges = bpe_vocab_and_merges(["male", "female"])
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert len(vocab) == 512 + len({"".join(m) for m in merges}) + 2
    assert "male</w>" in vocab and "female</w>" in vocab
    assert all(a + b in vocab for a, b in merges)


def test_words_sharing_pieces_still_encode_to_one_token_each(tmp_path: Path) -> None:
    """Merges learnt piece by piece broke this: "woman" came out as "wo" + "man" (the merges of "man"
    ranked first), "smiling" as five pieces; BPE trained on all words keeps every word whole."""
    from transformers import CLIPTokenizer

    from facestats_demo.random_clip import CAPTION_WORDS

    save_clip_tokenizer(CAPTION_WORDS, tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path)
    pieces = sorted({piece for line in CAPTION_WORDS for piece in word_pieces(line)})
    split = {piece: tokenizer.tokenize(piece) for piece in pieces if len(tokenizer.tokenize(piece)) != 1}
    assert split == {}
    assert tokenizer.tokenize("a woman , smiling , spotty skin") == [
        "a</w>", "woman</w>", ",</w>", "smiling</w>", ",</w>", "spotty</w>", "skin</w>"
    ]
