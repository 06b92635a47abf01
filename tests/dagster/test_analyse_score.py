"""`facestats analyse` and `facestats score` on real photos, in-process through the CLI's `main`: the
six faces of the group photo are found, a photo without a face and a truncated file get their row and
reason, the table and the JSON have their shape, and the models come from the bundle, else the model
root, else zero-shot prompts, each said in the output.

The models here are real (a probe and an MLP trained on seeded synthetic embeddings of the tiny
CLIP's dimension); what is checked is that each command applies the one it claims, to the faces
it found: the score printed for a face is the regressor's prediction on that face's embedding.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facestats_dagster.cli.main import main
from tests.core.faces.photos import VENDORED, group_photo, needs_dlib
from tests.core.synthetic import class_blobs, planted_ratings

pytestmark = needs_dlib


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    truncated = folder / "truncated.jpg"
    truncated.write_bytes((VENDORED / "astronaut.jpg").read_bytes()[:2000])
    coffee = folder / "coffee.jpg"
    Image.open(VENDORED / "coffee.jpg").save(coffee)
    return {"group": group_photo(folder / "group_six.jpg"), "coffee": coffee, "truncated": truncated}


@pytest.fixture
def env(tmp_path: Path, tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project: the tiny CLIP, an empty model root, default face mode (detect); returns the model root."""
    for name in ("FACESTATS_FACE_MODE", "FACESTATS_MODELS", "FACESTATS_TAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FACESTATS_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("FACESTATS_MODEL_ROOT", str(tmp_path / "models"))
    monkeypatch.setenv("FACESTATS_CLIP_MODEL", str(tiny_clip_dir))
    monkeypatch.setenv("FACESTATS_CLIP_COMPILE", "0")
    monkeypatch.chdir(tmp_path)  # config/tags.yaml is not here: no tags
    return tmp_path / "models"


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def _clip(tiny_clip_dir: Path):
    from facestats_core.embedding.config import ClipConfig
    from facestats_core.embedding.loader import load_clip

    return load_clip(ClipConfig(model=str(tiny_clip_dir), compile=False))


def _models(dim: int):
    """A gender probe only (age and ethnicity then fall back to zero-shot) and a regressor, of dimension `dim`."""
    from facestats_core.labels.vocab import ATTRIBUTES
    from facestats_core.models.classifiers import train_attribute_classifier
    from facestats_core.attractiveness.estimator import AttractivenessRegressor
    from facestats_core.attractiveness.training import MLPConfig

    X, y = class_blobs(120, ATTRIBUTES["gender"], dim=dim, seed=1)
    probe = train_attribute_classifier(X, y, ATTRIBUTES["gender"], cv_folds=3, c_grid=(1.0,))
    Xr, yr = planted_ratings(120, dim, seed=2)
    regressor = AttractivenessRegressor(MLPConfig(input_dim=dim, hidden=(8,), max_epochs=3)).fit(Xr, yr)
    return {"gender": probe}, regressor


def _faces(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["face"] is not None]


def _check_files(rows: list[dict], photos: dict[str, Path]) -> None:
    """Six faces in the group photo, one row with its reason for the faceless and the truncated file."""
    by_image: dict[str, list[dict]] = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    assert set(by_image) == {str(p) for p in photos.values()}
    group = by_image[str(photos["group"])]
    assert [row["face"] for row in group] == list(range(6)) and len({row["face_id"] for row in group}) == 6
    assert all(len(row["box"]) == 4 and row["error"] is None for row in group)
    [coffee] = by_image[str(photos["coffee"])]
    assert coffee["face"] is None and coffee["error"] == "no face: no_face"
    [truncated] = by_image[str(photos["truncated"])]
    assert truncated["face"] is None and truncated["error"].startswith("truncated")


def test_analyse_falls_back_to_zero_shot_with_no_models(env, photos, capsys) -> None:
    code, out = _json(["analyse", "--json", *map(str, photos.values())], capsys)
    assert code == 0 and out["models"] == "zero-shot (no trained models)"
    assert out["model_sources"]["attributes"]["source"] == "zero_shot"
    assert out["model_sources"]["attractiveness"]["source"] == "none"
    _check_files(out["faces"], photos)
    for row in _faces(out["faces"]):
        assert {row[f"{a}_method"] for a in ("gender", "age", "ethnicity")} == {"zero_shot"}
        assert 0 < row["gender_prob"] <= 1 and row["score"] is None and row["tags"] == {}

    assert main(["analyse", str(photos["group"]), str(photos["truncated"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "models: zero-shot (no trained models)" and table[1].split()[:3] == ["image", "face", "gender"]
    assert len(table) == 2 + 6 + 1 and str(photos["truncated"]) in table[-1] and " truncated" in table[-1]


def test_analyse_and_score_use_the_models_of_the_model_root(env, photos, capsys, tiny_clip_dir) -> None:
    from facestats_core.models.classifier_file import save_classifiers
    from facestats_core.attractiveness.model_file import save_regressor
    from facestats_dagster.cli.face_rows import embed_files
    from facestats_dagster.defs.resources import build_resources
    from facestats_dagster.settings import load_settings

    clip = _clip(tiny_clip_dir)
    probes, regressor = _models(clip.dim)
    save_classifiers(probes, env)
    save_regressor(regressor, env)
    code, out = _json(["analyse", "--json", *map(str, photos.values())], capsys)
    assert code == 0 and out["models"] == f"models in {env}"
    assert {target: d["source"] for target, d in out["model_sources"].items()} == {"attributes": "stored",
                                                                                   "attractiveness": "stored"}
    _check_files(out["faces"], photos)
    faces = _faces(out["faces"])
    assert {row["gender_method"] for row in faces} == {"probe"}
    assert {row["age_method"] for row in faces} == {"zero_shot"}  # no age probe: that attribute falls back
    assert all(isinstance(row["score"], float) for row in faces)
    # not just `method == probe`: the class and probability printed are the probe's on the same face's
    # CLIP embedding (found, cut and embedded by the pipeline's code in `embed_files`)
    with tempfile.TemporaryDirectory() as tmp:
        found = embed_files([str(photos["group"])], build_resources(load_settings()), clip, Path(tmp))
    proba = probes["gender"].predict_proba(found.embeddings)
    group = [row for row in faces if row["image"] == str(photos["group"])]
    assert [row["gender"] for row in group] == np.asarray(probes["gender"].classes)[proba.argmax(axis=1)].tolist()
    assert [row["gender_prob"] for row in group] == pytest.approx(proba.max(axis=1), abs=1e-3)
    assert [row["score"] for row in group] == pytest.approx(regressor.predict(found.embeddings), abs=1e-3)

    code, scored = _json(["score", "--json", *map(str, photos.values())], capsys)
    assert code == 0
    _check_files(scored, photos)
    # the same faces, the same regressor: the same scores (rounded to 3 and 4 places); no scored data set
    assert [round(row["score"], 3) for row in _faces(scored)] == pytest.approx([row["score"] for row in faces],
                                                                                abs=2e-3)
    assert {row["percentile"] for row in _faces(scored)} == {None}
    assert len({row["score"] for row in _faces(scored)}) == 6  # six different faces, six different scores


def test_analyse_applies_a_bundle_and_refuses_one_of_another_clip(env, photos, capsys, tiny_clip_dir,
                                                                   monkeypatch, tmp_path) -> None:
    from facestats_core.models.bundle import TrainedWith, write_bundle
    from facestats_dagster.resources import FacesResource

    clip = _clip(tiny_clip_dir)
    probes, regressor = _models(clip.dim)
    chip_version = FacesResource().chips().version
    write_bundle(tmp_path / "bundle", TrainedWith(clip.model_id, clip.revision, clip.dim, "whole", chip_version),
                 probes, regressor)
    monkeypatch.setenv("FACESTATS_MODELS", str(tmp_path / "bundle"))
    code, out = _json(["analyse", "--json", str(photos["group"])], capsys)
    assert code == 0 and out["models"] == f"bundle {tmp_path / 'bundle'}"
    assert {row["gender_method"] for row in out["faces"]} == {"probe"} and len(out["faces"]) == 6
    assert all(isinstance(row["score"], float) for row in out["faces"])

    other_probes, _ = _models(clip.dim + 1)  # a sound bundle, made with another (wider) CLIP
    write_bundle(tmp_path / "other", TrainedWith("other/clip", "abc123", clip.dim + 1, "whole", chip_version),
                 other_probes)
    monkeypatch.setenv("FACESTATS_MODELS", str(tmp_path / "other"))
    assert main(["analyse", str(photos["group"])]) == 2
    err = capsys.readouterr().err
    assert "does not fit this run" in err and f"embedding dimension {clip.dim + 1} in the bundle" in err


def test_score_without_a_regressor_says_what_to_do(env, photos, capsys) -> None:
    assert main(["score", str(photos["group"])]) == 2
    assert "materialize attractiveness_regressor" in capsys.readouterr().err


def test_analyse_of_files_without_faces_exits_1(env, photos, capsys) -> None:
    code, out = _json(["analyse", "--json", str(photos["coffee"]), str(photos["truncated"])], capsys)
    assert code == 1 and [row["face"] for row in out["faces"]] == [None, None]
