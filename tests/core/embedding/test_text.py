from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.embed import embed_paths
import facestats_core.embedding.text as text
from facestats_core.embedding.loader import ClipLoadError, load_clip
from facestats_core.embedding.text import clip_tokenizer, encode_texts, logit_scale
from facestats_core.embedding.tower import LoadedClip
from tests.conftest import write_photos


@pytest.fixture(scope="module")
def tiny_clip(tiny_clip_dir: Path) -> LoadedClip:
    return load_clip(ClipConfig(model=str(tiny_clip_dir), local_files_only=True))


def test_image_only_runs_never_load_the_tokenizer(tiny_clip_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer was loaded")

    text._tokenizer.cache_clear()  # nothing loaded by an earlier test answers for it
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir), local_files_only=True))
    assert clip.local_files_only is True
    assert embed_paths(clip, write_photos(tmp_path, 2)).embeddings.shape == (2, clip.dim)


def test_text_features_are_normalised_in_the_image_projection_space(tiny_clip: LoadedClip) -> None:
    import torch

    texts = ["a photo of a man.", "a close-up photo of the face of an East Asian person.", "a baby"]
    features = encode_texts(tiny_clip, texts, batch_size=2)
    assert features.shape == (3, tiny_clip.dim) and features.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)
    with torch.no_grad():  # the same vectors CLIPModel.get_text_features gives
        tokens = clip_tokenizer(tiny_clip)(texts, padding=True, return_tensors="pt")
        reference = tiny_clip.model.get_text_features(**tokens)
        reference = getattr(reference, "pooler_output", reference).numpy()
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(features, reference, atol=1e-5)
    assert clip_tokenizer(tiny_clip) is clip_tokenizer(tiny_clip)  # loaded once


def test_texts_are_batched_by_length_and_come_back_in_order(tiny_clip: LoadedClip) -> None:
    """Batches hold texts of similar length (less padding to encode); each row is its own text's features."""
    texts = ["a close-up photo of the face of an East Asian person with grey hair.", "a man",
             "a studio portrait photo of the face of a smiling elderly woman.", "a baby"]
    padded: list[tuple[int, ...]] = []
    hook = tiny_clip.model.text_model.register_forward_pre_hook(
        lambda module, args, kwargs: padded.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        together = encode_texts(tiny_clip, texts, batch_size=2)
    finally:
        hook.remove()
    lengths = sorted(len(ids) for ids in clip_tokenizer(tiny_clip)(texts)["input_ids"])
    assert padded == [(2, lengths[1]), (2, lengths[3])]  # the two short texts, then the two long ones
    alone = np.concatenate([encode_texts(tiny_clip, [t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_logit_scale_is_the_exponentiated_parameter(tiny_clip: LoadedClip) -> None:
    assert logit_scale(tiny_clip) == pytest.approx(float(tiny_clip.model.logit_scale.detach().exp()))


def test_no_texts_gives_an_empty_matrix(tiny_clip: LoadedClip) -> None:
    assert encode_texts(tiny_clip, []).shape == (0, tiny_clip.dim)


def test_missing_tokenizer_is_a_clip_load_error(tiny_clip: LoadedClip, tmp_path: Path) -> None:
    from dataclasses import replace

    no_tokenizer = replace(tiny_clip, model_id=str(tmp_path), local_files_only=True)
    with pytest.raises(ClipLoadError, match="tokenizer"):
        encode_texts(no_tokenizer, ["a photo of a man."])
