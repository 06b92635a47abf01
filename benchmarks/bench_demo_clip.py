"""How much the demo CLIP measures: probes, zero-shot and the attractiveness regressor on held-out demo faces.

Usage: python benchmarks/bench_demo_clip.py [--model DIR] [--n-images 600] [--seed 0] [--work DIR]

Generates a demo set as ``make demo`` does (``--n-images`` faces of demo seed
``--seed``, 256 px; the demo CLIP never trained on seed 0), embeds it with
``facestats_core.embedding`` (``load_clip`` + ``embed_paths``, the
pipeline's loader and preprocessing), then reports:

* linear probes: ``train_attribute_classifier`` held-out accuracy (stratified
  20 %) for gender, ethnicity (7) and age (9 bins), with the majority baseline;
* zero-shot: each face gets the class whose prompt (``caption_text`` of that one
  fact, e.g. "a photo of a woman", "a photo of a east asian person",
  "a photo of a person aged 20-29") has the highest cosine to its image
  features; accuracy over every face, against chance;
* the attractiveness regressor: ``AttractivenessRegressor.fit`` (the pipeline's MLP and
  split), held-out Pearson r / RMSE of the MLP, the mean and ridge baselines.

The last line is ``summary: gender=… ethnicity=… age=… zs_gender=… zs_ethnicity=… zs_age=… regressor_r=… ridge_r=…``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.embedding.config import ClipConfig
from facestats_core.embedding.embed import embed_paths
from facestats_core.embedding.loader import load_clip
from facestats_core.embedding.tower import LoadedClip
from facestats_core.embedding.vectors import l2_normalize
from facestats_core.labels.vocab import AGE_BINS, ETHNICITIES, GENDERS
from facestats_core.models.classifiers import train_attribute_classifier
from facestats_demo.captions import caption_text
from facestats_demo.faces import DemoSpec, generate_demo_dataset
from facestats_demo.train_clip import DEMO_CLIP_DIR

ATTRIBUTE_CLASSES: dict[str, tuple[str, ...]] = {"gender": GENDERS, "ethnicity": ETHNICITIES, "age": AGE_BINS}


def text_features(clip: LoadedClip, model_dir: str, prompts: list[str]) -> np.ndarray:
    """L2-normalised CLIP text features of ``prompts`` (the model folder's own tokenizer)."""
    import torch
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(model_dir)
    tokens = tokenizer(prompts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        output = clip.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
    features = getattr(output, "pooler_output", output)
    return l2_normalize(features.float().cpu().numpy())


def zero_shot_accuracy(image: np.ndarray, text: np.ndarray, truth: np.ndarray, classes: tuple[str, ...]) -> float:
    """Share of faces whose most similar prompt is their true class's."""
    predicted = np.asarray(classes)[np.argmax(image @ text.T, axis=1)]
    return float(np.mean(predicted == truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEMO_CLIP_DIR), help="CLIP folder or id (default: the demo CLIP)")
    parser.add_argument("--n-images", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0, help="demo seed of the evaluated faces")
    parser.add_argument("--work", default=None, help="folder for the demo set (default: a temporary one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.work or tmp)
        started = time.perf_counter()
        dataset = generate_demo_dataset(root, DemoSpec(n_images=args.n_images, seed=args.seed))
        print(f"demo set: {dataset.n_images} faces of seed {args.seed} ({time.perf_counter() - started:.1f} s)")
        truth = pl.read_csv(dataset.truth)
        clip = load_clip(ClipConfig(model=args.model))
        result = embed_paths(clip, [root / "raw" / name for name in truth["file"].to_list()], batch_size=64)
        if result.failures:
            raise SystemExit(f"{len(result.failures)} images failed to embed: {result.failures}")
        X = result.embeddings
        print(f"embedded with {args.model} ({clip.revision}, {X.shape[1]}-d) in {result.seconds:.1f} s")

        probe: dict[str, float] = {}
        zero_shot: dict[str, float] = {}
        for name, classes in ATTRIBUTE_CLASSES.items():
            labels = truth[name].to_numpy().astype(str)
            metrics = train_attribute_classifier(X, labels, classes, seed=0).metrics
            probe[name] = float(metrics["accuracy"])
            prompts = [caption_text({name: value}) for value in classes]
            zero_shot[name] = zero_shot_accuracy(X, text_features(clip, args.model, prompts), labels, classes)
            print(
                f"{name:10s} probe acc {probe[name]:.3f} (balanced {metrics['balanced_accuracy']:.3f}, "
                f"majority {metrics['majority_baseline_accuracy']:.3f}, n_val {metrics['n_val']})  "
                f"zero-shot acc {zero_shot[name]:.3f} (chance {1 / len(classes):.3f}; "
                f"prompts like {prompts[0]!r})"
            )

        regressor = AttractivenessRegressor(num_threads=2).fit(X, truth["score"].to_numpy()).evaluation.held_out
        for label, m in (("mlp", regressor.mlp), ("ridge", regressor.ridge), ("mean", regressor.mean_baseline)):
            print(f"attractiveness {label:5s} r {m.pearson_r:.3f}  rmse {m.rmse:.3f}  mae {m.mae:.3f}  "
                  f"(n_test {regressor.n_test})")
        verdict = "beats" if regressor.mlp.rmse < regressor.ridge.rmse else "does not beat"
        print(f"the MLP {verdict} ridge on held-out RMSE")
        print(
            f"summary: gender={probe['gender']:.3f} ethnicity={probe['ethnicity']:.3f} age={probe['age']:.3f} "
            f"zs_gender={zero_shot['gender']:.3f} zs_ethnicity={zero_shot['ethnicity']:.3f} "
            f"zs_age={zero_shot['age']:.3f} regressor_r={regressor.mlp.pearson_r:.3f} "
            f"ridge_r={regressor.ridge.pearson_r:.3f}"
        )


if __name__ == "__main__":
    main()
