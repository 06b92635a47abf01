"""Captions of demo faces: facts from drawn traits, the caption text, random subsets and which captions fit which face."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facestats_demo.captions import (
    ATTRIBUTES,
    caption_facts,
    caption_fits,
    caption_text,
    face_facts,
    fit_matrix,
)
from facestats_demo.traits import sample_traits
from facestats_demo.random_clip import CAPTION_WORDS
from facestats_demo.tokenizer import word_pieces


def _traits(**changes: object):
    traits = sample_traits("female", "20-29", "east_asian", np.random.default_rng(0))
    return dataclasses.replace(traits, **changes)


def test_facts_follow_the_drawn_traits() -> None:
    facts = face_facts(_traits(hair_style="long", beard="none", smile=0.9, blemish=0.1, asymmetry=0.9, eye_scale=1.1))
    assert facts == {
        "ethnicity": "east_asian", "gender": "female", "age": "20-29", "hair": "long", "beard": "none",
        "smile": "yes", "skin": "clear", "symmetry": "lopsided", "eyes": "big",
    }
    assert face_facts(_traits(age="0-2", hair_style="baby", bow=(230, 90, 200)))["hair"] == "bow"
    assert caption_text({"hair": "bow"}) == "a photo of a person , hair bow"
    middle = face_facts(_traits(blemish=0.5, asymmetry=0.5, eye_scale=1.0, smile=0.0))
    assert (middle["skin"], middle["symmetry"], middle["eyes"], middle["smile"]) == ("some", "slight", "medium", "no")


def test_caption_text_states_exactly_the_given_facts() -> None:
    assert caption_text({}) == "a photo of a person"
    assert caption_text({"gender": "female"}) == "a photo of a woman"
    assert caption_text({"ethnicity": "east_asian"}) == "a photo of a east asian person"
    assert caption_text({"age": "70+"}) == "a photo of a person aged 70+"
    full = caption_text(face_facts(_traits(hair_style="long", beard="none", smile=0.9, blemish=0.9,
                                           asymmetry=0.1, eye_scale=0.9)))
    assert full == ("a photo of a east asian woman aged 20-29 , long hair , no beard , smiling , spotty skin , "
                    "symmetric face , small eyes")
    with pytest.raises(ValueError, match="unknown caption attributes"):
        caption_text({"hat": "yes"})


def test_every_caption_word_is_a_whole_token_of_the_demo_tokenizer() -> None:
    vocabulary = {piece for line in CAPTION_WORDS for piece in word_pieces(line)}
    rng = np.random.default_rng(0)
    for gender in ("male", "female"):
        for age in ("0-2", "40-49", "70+"):
            for ethnicity in ("latino_hispanic", "southeast_asian", "middle_eastern"):
                facts = face_facts(sample_traits(gender, age, ethnicity, rng))
                assert set(word_pieces(caption_text(facts))) <= vocabulary


def test_caption_facts_keep_each_attribute_with_its_probability() -> None:
    facts = face_facts(_traits())
    rng = np.random.default_rng(1)
    assert caption_facts(facts, {a: 1.0 for a in ATTRIBUTES}, rng) == facts
    assert caption_facts(facts, {}, rng) == {}
    kept = [caption_facts(facts, {"gender": 0.5, "age": 1.0}, rng) for _ in range(400)]
    assert all(set(c) <= {"gender", "age"} and "age" in c for c in kept)
    assert 0.4 < np.mean(["gender" in c for c in kept]) < 0.6


def test_a_caption_fits_faces_that_have_every_stated_fact() -> None:
    woman = face_facts(_traits())
    man = {**woman, "gender": "male"}
    assert caption_fits({"gender": "female"}, woman) and not caption_fits({"gender": "female"}, man)
    assert caption_fits({}, man)
    assert caption_fits({"ethnicity": "east_asian", "age": "20-29"}, man)
    fits = fit_matrix([{"gender": "female"}, {}, {"gender": "male"}], [woman, man])
    assert fits.tolist() == [[True, False], [True, True], [False, True]]
    assert fit_matrix([], [woman]).shape == (0, 1)


def test_a_counterfactual_caption_changes_one_stated_fact_and_no_longer_fits() -> None:
    from facestats_demo.captions import counterfactual_facts

    face = face_facts(_traits())
    rng = np.random.default_rng(3)
    for caption in ({"gender": face["gender"], "smile": face["smile"]}, {}, dict(face)):
        for _ in range(20):
            negative = counterfactual_facts(caption, face, rng)
            assert not caption_fits(negative, face)
            changed = [name for name in negative if negative[name] != caption.get(name)]
            assert len(changed) == 1 and (not caption or changed[0] in caption)


def test_the_gender_counterfactual_swaps_only_the_gender() -> None:
    from facestats_demo.captions import gender_counterfactual

    face = face_facts(_traits())
    caption = {"gender": "female", "age": "20-29", "hair": face["hair"]}
    swapped = gender_counterfactual(caption)
    assert swapped == {**caption, "gender": "male"} and not caption_fits(swapped, face)
    assert gender_counterfactual({"gender": "male"}) == {"gender": "female"}
    assert gender_counterfactual({"age": "20-29"}) is None
