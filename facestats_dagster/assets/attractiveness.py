"""Attractiveness stage: an MLP regressor on embeddings trained on human ratings, and scores."""

import json
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.models.attractiveness import (
    DEFAULT_NAME,
    CrossValidation,
    MLPConfig,
    RegressorIntegrityError,
    assemble_training_data,
    cross_validate,
    cross_validation_markdown,
    embeddings_to_matrix,
    load_regressor,
    metrics_markdown,
    predict_scores,
    regressor_paths,
    save_regressor,
    score_table,
    train_regressor,
)
from facestats_core.labels.ratings import RatingIssue, match_ratings_to_images, merge_ratings, read_ratings
from facestats_dagster.assets._metadata import count_values, counts_table, log_issues
from facestats_dagster.resources import AnalysisResource, LabelsResource, PathsResource


def _read_ratings(context: dg.AssetExecutionContext, source: Any) -> tuple[pl.DataFrame, list[RatingIssue]]:
    try:
        read = read_ratings(source)
    except (FileNotFoundError, ValueError) as exc:
        raise dg.Failure(f"Cannot read ratings {source}: {exc}") from exc
    log_issues(context, str(source), read.issues, count_values(i.kind for i in read.issues), what="rating issues")
    return read.ratings, list(read.issues)


@dg.asset(group_name="attractiveness", kinds={"pytorch"})
def attractiveness_regressor(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    labels: LabelsResource,
    analysis: AnalysisResource,
) -> dg.MaterializeResult:
    """A torch MLP (embedding → 256 → 64 → 1, dropout) trained on SCUT-FBP5500-format mean
    ratings (1–5) with early stopping, compared with the mean and ridge baselines on held-out
    test rows that no model saw, and by k-fold cross-validation (``attractiveness_cv_folds``).
    Writes ``<model_root>/attractiveness_regressor.pt`` + ``.json``."""
    layout = paths.layout()
    source = labels.resolve(layout, labels.ratings)
    if source is None:
        raise dg.Failure(
            "No attractiveness ratings configured: set FACESTATS_RATINGS (labels.ratings) to a "
            "SCUT-FBP5500-format file (`filename,score` or `filename score` lines). "
            "The other assets do not need it."
        )
    ratings, issues = _read_ratings(context, source)
    manual = labels.resolve(layout, labels.manual_ratings)
    if manual is not None:
        manual_ratings, manual_issues = _read_ratings(context, manual)
        ratings, issues = merge_ratings(ratings, manual_ratings), issues + manual_issues
    matched, match_issues = match_ratings_to_images(ratings, embeddings_clip.select("image_id", "path"))
    issues += match_issues
    if match_issues:
        context.log.warning(f"{len(match_issues)} ratings do not match an embedded image (first: {match_issues[0].message})")
    data = assemble_training_data(embeddings_clip, matched)
    if len(data.y) < 10:
        raise dg.Failure(f"Only {len(data.y)} rated images match embedded images in {source}; need at least 10.")
    config = MLPConfig(
        input_dim=int(data.X.shape[1]),
        hidden=tuple(analysis.mlp_hidden),
        dropout=analysis.mlp_dropout,
        max_epochs=analysis.mlp_max_epochs,
        patience=analysis.mlp_patience,
        seed=analysis.seed,
    )
    result = train_regressor(data.X, data.y, config)
    cv = None
    if analysis.attractiveness_cv_folds >= 2:
        if len(data.y) >= 3 * analysis.attractiveness_cv_folds:
            cv = cross_validate(data.X, data.y, config, k=analysis.attractiveness_cv_folds)
        else:
            context.log.warning(
                f"{len(data.y)} rated images are too few for {analysis.attractiveness_cv_folds}-fold "
                "cross-validation; reporting the held-out split only."
            )
    saved = save_regressor(result, layout.model_root, cross_validation=cv)
    m = result.metrics
    cv_metadata: dict[str, Any] = {}
    if cv is not None:
        diff = cv.mlp_minus_ridge_rmse()
        cv_metadata = {
            "cross_validation": dg.MetadataValue.md(cross_validation_markdown(cv)),
            "cv_pearson_r": round(cv.summary("mlp", "pearson_r").mean, 4),
            "cv_rmse": round(cv.summary("mlp", "rmse").mean, 4),
            "cv_ridge_rmse": round(cv.summary("ridge", "rmse").mean, 4),
            "cv_mlp_minus_ridge_rmse": round(diff.mean, 4),
        }
    return dg.MaterializeResult(
        metadata={
            **cv_metadata,
            "metrics": dg.MetadataValue.md(metrics_markdown(m)),
            "pearson_r": round(m.mlp.pearson_r, 4),
            "mae": round(m.mlp.mae, 4),
            "rmse": round(m.mlp.rmse, 4),
            "baseline_mean_rmse": round(m.mean_baseline.rmse, 4),
            "baseline_ridge_rmse": round(m.ridge.rmse, 4),
            "n_train": result.n_train,
            "n_val": result.n_val,
            "n_test": result.n_test,
            "epochs": result.epochs_run,
            "train_seconds": round(result.train_seconds, 2),
            "rating_issues": counts_table(count_values(issue.kind for issue in issues), key="issue"),
            "data_hash": result.data_hash,
            "model_path": dg.MetadataValue.path(str(saved.weights)),
        }
    )


def _regressor_metadata(paths: PathsResource) -> dict[str, Any]:
    return json.loads(regressor_paths(paths.layout().model_root, DEFAULT_NAME).metadata.read_text())


@dg.asset_check(asset=attractiveness_regressor, description="The MLP beats predicting the mean on held-out data.")
def regressor_beats_mean_baseline(paths: PathsResource) -> dg.AssetCheckResult:
    metrics = _regressor_metadata(paths)["metrics"]
    mlp, mean = metrics["mlp"]["rmse"], metrics["mean_baseline"]["rmse"]
    return dg.AssetCheckResult(
        passed=bool(mlp < mean),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"mlp_rmse": round(mlp, 4), "mean_baseline_rmse": round(mean, 4),
                  "ridge_rmse": round(metrics["ridge"]["rmse"], 4)},
    )


@dg.asset_check(
    asset=attractiveness_regressor,
    description="Warns when the MLP does not beat ridge regression on the same data (k-fold mean RMSE "
    "when cross-validation ran, else the held-out split): then the MLP adds nothing over a linear probe.",
)
def regressor_beats_ridge(paths: PathsResource) -> dg.AssetCheckResult:
    saved = _regressor_metadata(paths)
    if saved.get("cross_validation"):
        cv = CrossValidation.from_dict(saved["cross_validation"])
        k = len(cv.folds)
        mlp, ridge = cv.summary("mlp", "rmse").mean, cv.summary("ridge", "rmse").mean
        extra = {"protocol": f"{k}-fold CV", "mlp_wins_folds": f"{cv.mlp_wins('ridge')}/{k}",
                 "difference_standard_error": round(cv.mlp_minus_ridge_rmse().std, 4)}
    else:
        mlp, ridge = saved["metrics"]["mlp"]["rmse"], saved["metrics"]["ridge"]["rmse"]
        extra = {"protocol": "held-out split"}
    return dg.AssetCheckResult(
        passed=bool(mlp < ridge),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"mlp_rmse": round(mlp, 4), "ridge_rmse": round(ridge, 4), **extra},
    )


@dg.asset(group_name="attractiveness", deps=[attractiveness_regressor], kinds={"pytorch", "parquet"})
def attractiveness_scores(
    context: dg.AssetExecutionContext, embeddings_clip: pl.DataFrame, paths: PathsResource
) -> pl.DataFrame:
    """Raw score (rating scale, 1–5), percentile (mid-rank, ties share it) and decile 1–10 per image."""
    try:
        model = load_regressor(paths.layout().model_root)
    except (RegressorIntegrityError, FileNotFoundError, ValueError) as exc:
        raise dg.Failure(str(exc)) from exc
    raw = predict_scores(model, embeddings_to_matrix(embeddings_clip))
    table = score_table(embeddings_clip["image_id"].to_list(), raw).join(
        embeddings_clip.select("image_id", "path"), on="image_id", how="left"
    )
    context.add_output_metadata(
        {
            "images": table.height,
            "score_mean": round(float(table["attractiveness_raw"].mean() or 0.0), 4),
            "score_std": round(float(table["attractiveness_raw"].std() or 0.0), 4),
            "decile_counts": counts_table(
                {str(d): int(c) for d, c in table["attractiveness_decile"].value_counts().iter_rows()}, key="decile"
            ),
        }
    )
    return table
