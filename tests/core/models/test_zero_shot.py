from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.loader import load_clip
from facestats_core.labels.vocab import ATTRIBUTES
from facestats_core.models.classifiers import predict_attributes, train_attribute_classifier
from facestats_core.models.prompts import CLASS_PHRASES, TEMPLATES, attribute_prompt_sets, expand_prompts
from facestats_core.models.text_cache import read_text_cache, text_cache_key, text_cache_path
from facestats_core.models.zero_shot import (
    attribute_prompt_groups,
    clip_prompt_embeddings,
    ensemble,
    ensemble_text_embeddings,
    softmax_probabilities,
    zero_shot_attributes,
    zero_shot_classifiers,
)


def test_prompt_sets_cover_every_canonical_class_in_order() -> None:
    sets = attribute_prompt_sets()
    assert set(sets) == set(ATTRIBUTES)
    for attr, prompt_set in sets.items():
        assert prompt_set.classes == ATTRIBUTES[attr]
        for cls, prompts in zip(ATTRIBUTES[attr], prompt_set.prompts):
            assert len(prompts) == len(CLASS_PHRASES[attr][cls]) * len(TEMPLATES)
    assert "a close-up photo of the face of an East Asian person." in sets["ethnicity"].prompts[3]
    assert expand_prompts(("a man",), ("a photo of {}.",)) == ("a photo of a man.",)


def test_prompt_sets_reject_missing_or_unknown_classes() -> None:
    with pytest.raises(ValueError, match="cover exactly"):
        attribute_prompt_sets({"gender": {"male": ("a man",)}})
    with pytest.raises(ValueError, match="unknown attribute"):
        attribute_prompt_sets({"mood": {"happy": ("x",)}})


def test_ensemble_is_the_renormalised_mean_of_normalised_rows() -> None:
    rows = np.array([[2.0, 0.0], [0.0, 0.5]])
    np.testing.assert_allclose(ensemble(rows), [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-6)


def test_each_prompt_is_encoded_once_and_grouped_back() -> None:
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[1.0, 0.0] if "x" in t else [0.0, 1.0] for t in texts])

    out = ensemble_text_embeddings(encode, {"a": ("x1", "x2"), "b": ("y",)})
    assert calls == [["x1", "x2", "y"]]
    np.testing.assert_allclose(out["a"], [1.0, 0.0])
    np.testing.assert_allclose(out["b"], [0.0, 1.0])


def test_softmax_uses_the_logit_scale_on_cosine_similarity() -> None:
    text = np.eye(2, dtype=np.float32)
    proba = softmax_probabilities(np.array([[3.0, 0.0]]), text, logit_scale=2.0)
    expected = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    np.testing.assert_allclose(proba[0], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        softmax_probabilities(np.zeros((1, 3)), text, 1.0)


def test_zero_shot_frame_has_the_probe_columns_plus_method() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 8)).astype(np.float32)
    sets = attribute_prompt_sets()
    groups = attribute_prompt_groups(sets)
    embeddings = {key: rng.normal(size=8).astype(np.float32) for key in groups}
    classifiers = zero_shot_classifiers(sets, embeddings, logit_scale=100.0)
    frame = zero_shot_attributes(classifiers, X)
    labels = np.array(["male", "female"] * 15, dtype=object)
    probe = predict_attributes({"gender": train_attribute_classifier(X, labels, ATTRIBUTES["gender"], cv_folds=2,
                                                                     c_grid=(1.0,))}, X)
    for attr in ATTRIBUTES:
        assert frame.schema[f"{attr}_pred"] == pl.String
        assert frame.schema[f"{attr}_prob"] == pl.Float32
        assert frame.schema[f"{attr}_probs"] == pl.Array(pl.Float32, len(ATTRIBUTES[attr]))
        assert frame[f"{attr}_method"].unique().to_list() == ["zero_shot"]
        assert set(frame[f"{attr}_pred"].to_list()) <= set(ATTRIBUTES[attr])
    assert {c: frame.schema[c] for c in probe.columns} == dict(probe.schema)
    probs = np.stack(frame["age_probs"].to_numpy())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(frame["age_prob"].to_numpy(), probs.max(axis=1))


def test_missing_class_embedding_is_named() -> None:
    with pytest.raises(KeyError, match="female"):
        zero_shot_classifiers(attribute_prompt_sets(), {"gender/male": np.ones(2)}, 1.0)


def test_clip_prompt_embeddings_with_the_tiny_clip_are_cached(tiny_clip_dir: Path, tmp_path: Path) -> None:
    clip = load_clip(ClipConfig(model=str(tiny_clip_dir), local_files_only=True))
    sets = attribute_prompt_sets()
    groups = attribute_prompt_groups(sets)
    embeddings = clip_prompt_embeddings(clip, groups, cache_dir=tmp_path)
    assert list(embeddings) == list(groups)
    assert all(v.shape == (clip.dim,) for v in embeddings.values())
    path = text_cache_path(tmp_path, text_cache_key(clip.model_id, clip.revision, groups))
    cached = read_text_cache(path)
    assert cached is not None and list(cached) == list(groups)
    np.testing.assert_array_equal(cached["age/70+"], embeddings["age/70+"])
    path.write_bytes(b"not an npz")  # a corrupt cache is recomputed, not trusted
    again = clip_prompt_embeddings(clip, groups, cache_dir=tmp_path)
    np.testing.assert_allclose(again["gender/male"], embeddings["gender/male"], atol=1e-6)
    assert read_text_cache(path) is not None
    from facestats_core.embedding.text import logit_scale

    frame = zero_shot_attributes(zero_shot_classifiers(sets, embeddings, logit_scale(clip)), np.ones((4, clip.dim)))
    assert frame.height == 4 and frame["ethnicity_pred"].null_count() == 0


def test_cache_key_changes_with_revision_and_prompts() -> None:
    base = text_cache_key("m", "sha256:1", {"a": ("x",)})
    assert base != text_cache_key("m", "sha256:2", {"a": ("x",)})
    assert base != text_cache_key("m", "sha256:1", {"a": ("y",)})
    assert base == text_cache_key("m", "sha256:1", {"a": ("x",)})


def test_a_face_placed_near_a_class_prompt_is_labelled_that_class(tiny_clip_dir: Path, tmp_path: Path) -> None:
    """A case with a known answer, through the tiny CLIP's own text tower and prompt ensembles: for every
    class of every attribute, a face embedding placed near that class's ensembled prompt embedding (a
    small random offset) is predicted as that class, with the highest probability of its row; placed
    near another class of the same attribute, the prediction follows it."""
    from facestats_core.models.prompt_models import prompt_models, zero_shot_predictions

    models = prompt_models(load_clip(ClipConfig(model=str(tiny_clip_dir), compile=False)), cache_dir=tmp_path)
    rng = np.random.default_rng(0)
    for attr, classes in ATTRIBUTES.items():
        anchors = np.stack([models.embeddings[f"{attr}/{c}"] for c in classes])
        anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
        margin = np.sort(anchors @ anchors.T, axis=1)[:, -2].max()  # the nearest other class, cosine
        assert margin < 0.999, f"{attr}: two classes' prompts embed alike ({margin}); the test would prove nothing"
        noise = rng.normal(size=anchors.shape)
        offset = noise / np.linalg.norm(noise, axis=1, keepdims=True) * 0.05 * np.sqrt(1 - margin)
        faces = anchors + offset
        predicted = zero_shot_predictions(models, faces.astype(np.float32))
        assert predicted[f"{attr}_pred"].to_list() == list(classes), attr
        probs = np.stack(predicted[f"{attr}_probs"].to_numpy())
        assert (probs.argmax(axis=1) == np.arange(len(classes))).all()
        shifted = zero_shot_predictions(models, np.roll(faces, 1, axis=0).astype(np.float32))
        assert shifted[f"{attr}_pred"].to_list() == list(np.roll(np.asarray(classes, dtype=object), 1)), attr
