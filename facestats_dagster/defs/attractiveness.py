"""Stage 5, attractiveness: an MLP regressor on embeddings trained on human ratings, and scores."""

from typing import Any

import dagster as dg
import polars as pl

from facestats_core.analysis.scores import score_table
from facestats_core.embedding.matrix import embedding_matrix
from facestats_core.labels.face_labels import labels_to_faces
from facestats_core.labels.ratings import RatingIssue, match_ratings_to_images, merge_ratings, read_ratings
from facestats_core.models.cross_validation import CrossValidation, cross_validate
from facestats_core.models.regressor import (
    LoadedRegressor,
    MLPConfig,
    TrainedRegressor,
    predict_scores,
    train_regressor,
)
from facestats_core.models.training_data import assemble_training_data
from facestats_dagster.conditions import CHECKS_FOLLOW_ASSET, FOLLOW_UPSTREAM
from facestats_dagster.markdown import cross_validation_markdown, regressor_metrics_markdown
from facestats_dagster.metadata import count_values, counts_table, log_issues
from facestats_dagster.resources import AnalysisResource, LabelsResource, PathsResource


def _read_ratings(context: dg.AssetExecutionContext, source: Any) -> tuple[pl.DataFrame, list[RatingIssue]]:
    try:
        read = read_ratings(source)
    except (FileNotFoundError, ValueError) as exc:
        raise dg.Failure(f"Cannot read ratings {source}: {exc}") from exc
    log_issues(context, str(source), read.issues, count_values(i.kind for i in read.issues), what="rating issues")
    return read.ratings, list(read.issues)


def _cv_metadata(cv: CrossValidation) -> dict[str, Any]:
    return {
        "cross_validation": dg.MetadataValue.md(cross_validation_markdown(cv)),
        "cv_pearson_r": round(cv.summary("mlp", "pearson_r").mean, 4),
        "cv_rmse": round(cv.summary("mlp", "rmse").mean, 4),
        "cv_ridge_rmse": round(cv.summary("ridge", "rmse").mean, 4),
        "cv_mlp_minus_ridge_rmse": round(cv.mlp_minus_ridge_rmse().mean, 4),
    }


@dg.asset(
    group_name="attractiveness", kinds={"pytorch"}, io_manager_key="model_store",
    automation_condition=FOLLOW_UPSTREAM,
)
def attractiveness_regressor(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    paths: PathsResource,
    labels: LabelsResource,
    analysis: AnalysisResource,
) -> TrainedRegressor:
    """A torch MLP (embedding → 256 → 64 → 1, dropout) trained on SCUT-FBP5500-format mean
    ratings (1–5) with early stopping, compared with the mean and ridge baselines on held-out
    test rows that no model saw, and by k-fold cross-validation (`attractiveness_cv_folds`).
    Stored by the model store as `<model_root>/attractiveness_regressor.pt` + `.json`."""
    layout = paths.layout()
    source = layout.data_file(labels.ratings)
    if source is None:
        raise dg.Failure(
            "No attractiveness ratings configured: set FACESTATS_RATINGS (labels.ratings) to a "
            "SCUT-FBP5500-format file (`filename,score` or `filename score` lines). "
            "The other assets do not need it."
        )
    ratings, issues = _read_ratings(context, source)
    manual = layout.data_file(labels.manual_ratings)
    if manual is not None:
        manual_ratings, manual_issues = _read_ratings(context, manual)
        ratings, issues = merge_ratings(ratings, manual_ratings), issues + manual_issues
    images = embeddings_clip.select("image_id", "path").unique("image_id", keep="first")
    matched, match_issues = match_ratings_to_images(ratings, images)
    issues += match_issues
    if match_issues:
        context.log.warning(f"{len(match_issues)} ratings do not match an embedded image (first: {match_issues[0].message})")
    rated_faces, multi_face = labels_to_faces(matched.select("image_id", "score"), embeddings_clip.select("face_id", "image_id"))
    if multi_face:
        context.log.warning(f"{multi_face} ratings name images with several faces and were not used.")
    data = assemble_training_data(embeddings_clip, rated_faces)
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
    folds = analysis.attractiveness_cv_folds
    cv = None
    if folds >= 2:
        if len(data.y) >= 3 * folds:
            cv = cross_validate(data.X, data.y, config, k=folds)
        else:
            context.log.warning(
                f"{len(data.y)} rated images are too few for {folds}-fold cross-validation; "
                "reporting the held-out split only."
            )
    m = result.metrics
    context.add_output_metadata(
        {
            **(_cv_metadata(cv) if cv is not None else {}),
            "metrics": dg.MetadataValue.md(regressor_metrics_markdown(m)),
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
        }
    )
    return TrainedRegressor(result=result, cross_validation=cv)


@dg.asset_check(
    asset=attractiveness_regressor, automation_condition=CHECKS_FOLLOW_ASSET,
    description="The MLP beats predicting the mean on held-out data.",
)
def regressor_beats_mean_baseline(attractiveness_regressor: LoadedRegressor) -> dg.AssetCheckResult:
    metrics = attractiveness_regressor.metadata["metrics"]
    mlp, mean = metrics["mlp"]["rmse"], metrics["mean_baseline"]["rmse"]
    return dg.AssetCheckResult(
        passed=bool(mlp < mean),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"mlp_rmse": round(mlp, 4), "mean_baseline_rmse": round(mean, 4),
                  "ridge_rmse": round(metrics["ridge"]["rmse"], 4)},
    )


@dg.asset_check(
    asset=attractiveness_regressor, automation_condition=CHECKS_FOLLOW_ASSET,
    description="Warns when the MLP does not beat ridge regression on the same data (k-fold mean RMSE "
    "when cross-validation ran, else the held-out split): then the MLP adds nothing over a linear probe.",
)
def regressor_beats_ridge(attractiveness_regressor: LoadedRegressor) -> dg.AssetCheckResult:
    saved = attractiveness_regressor.metadata
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


@dg.asset(group_name="attractiveness", kinds={"pytorch", "parquet"}, automation_condition=FOLLOW_UPSTREAM)
def attractiveness_scores(
    context: dg.AssetExecutionContext, embeddings_clip: pl.DataFrame, attractiveness_regressor: LoadedRegressor
) -> pl.DataFrame:
    """Raw score (rating scale, 1–5), percentile (mid-rank, ties share it) and decile 1–10 per face."""
    raw = predict_scores(attractiveness_regressor, embedding_matrix(embeddings_clip))
    table = score_table(embeddings_clip["face_id"].to_list(), raw).join(
        embeddings_clip.select("face_id", "image_id", "path"), on="face_id", how="left"
    )
    context.add_output_metadata(
        {
            "faces": table.height,
            "score_mean": round(float(table["attractiveness_raw"].mean() or 0.0), 4),
            "score_std": round(float(table["attractiveness_raw"].std() or 0.0), 4),
            "decile_counts": counts_table(
                {str(d): int(c) for d, c in table["attractiveness_decile"].value_counts().iter_rows()}, key="decile"
            ),
        }
    )
    return table
