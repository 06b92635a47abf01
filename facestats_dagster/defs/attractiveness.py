"""Stage 5, attractiveness: an MLP regressor on embeddings trained on human ratings, and scores."""

import os
from typing import Any

import dagster as dg
import polars as pl

from facestats_core.analysis.scores import SCORE_SCHEMA, score_table
from facestats_core.attractiveness.domain import fit_domain, out_of_domain, outside_rated_ethnicities
from facestats_core.attractiveness.estimator import AttractivenessRegressor
from facestats_core.attractiveness.evaluation import CrossValidation
from facestats_core.attractiveness.model_file import load_regressor
from facestats_core.attractiveness.training import MLPConfig
from facestats_core.attractiveness.training_data import assemble_training_data
from facestats_core.embedding.vectors import embedding_matrix
from facestats_core.labels.ratings import RatingIssue, read_ratings
from facestats_core.models.fingerprint import regressor_fingerprint
from facestats_core.models.out_of_fold import cross_validated_scores, out_of_fold_scores
from facestats_core.models.store import ModelIntegrityError
from facestats_dagster.bundles import run_models
from facestats_dagster.checks import SCORES_CHECKS, check_spec, checked, scores_cover_embeddings
from facestats_dagster.conditions import FOLLOW_UPSTREAM
from facestats_dagster.markdown import cross_validation_markdown, regressor_metrics_markdown
from facestats_dagster.metadata import count_values, counts_table, log_issues
from facestats_dagster.resources import AnalysisResource, ClipResource, FacesResource, ModelsResource, PathsResource

SCORES_SCHEMA: dict[str, Any] = {
    **SCORE_SCHEMA, "image_id": pl.String, "path": pl.String, "attractiveness_source": pl.String,
    "attractiveness_outside_rated_groups": pl.Boolean, "domain_distance": pl.Float64,
    "attractiveness_out_of_domain": pl.Boolean,
}


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


REGRESSOR_CHECKS = [
    check_spec("regressor_beats_mean_baseline", "attractiveness_regressor",
               "The MLP beats predicting the mean on held-out data."),
    check_spec("regressor_beats_ridge", "attractiveness_regressor",
               "Warns when the MLP does not beat ridge regression on the same data (k-fold mean RMSE when "
               "cross-validation ran, else the held-out split): then the MLP adds nothing over a linear probe."),
]


@dg.asset(
    group_name="attractiveness", kinds={"pytorch"}, io_manager_key="model_store",
    automation_condition=FOLLOW_UPSTREAM, check_specs=REGRESSOR_CHECKS,
)
def attractiveness_regressor(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    reference_embeddings: pl.DataFrame,
    dataset_labels: pl.DataFrame,
    clip: ClipResource,
    faces: FacesResource,
    models: ModelsResource,
    analysis: AnalysisResource,
    paths: PathsResource,
):
    """A torch MLP (embedding → 256 → 64 → 1, dropout) trained on SCUT-FBP5500-format mean
    ratings (1–5) with early stopping, compared with the mean and ridge baselines on held-out
    test rows that no model saw, and by k-fold cross-validation (`attractiveness_cv_folds`).
    Where it comes from is `facestats_core.models.model_source`'s decision (metadata
    `model_source`, `model_source_reason`): a bundle's regressor (`FACESTATS_MODELS`), else
    trained on the reference set's ratings, else on the analysed set's own.

    No ratings and no bundle regressor: no model (stored as `attractiveness_regressor.absent.json`;
    one log line and the `skipped` metadata say why), so `attractiveness_scores` is empty and the
    master table's attractiveness columns are null; the run stays green. Stored by the model store
    as `<model_root>/attractiveness_regressor.pt` + `.json`; `regressor_beats_mean_baseline` and
    `regressor_beats_ridge` check it in this step. When the training embeddings, ratings and
    settings are those the stored regressor was trained with (`training_fingerprint` in its json),
    it is reused instead of trained again (`reused` in the metadata)."""
    run = run_models(models, clip, faces, embeddings_clip, reference_embeddings, dataset_labels)
    decision = run.sources.attractiveness
    context.add_asset_metadata(decision.metadata())
    if decision.source == "bundle":
        context.add_asset_metadata({"source": f"bundle {models.bundle}"})
        return _checked_regressor(run.bundle.regressor)
    if not decision.trains:
        return _skipped(context, decision.reason)
    trained_on, rated = decision.source, run.sets.rows(decision)
    data = assemble_training_data(rated, rated.select("face_id", "score"))
    config = MLPConfig(
        input_dim=int(data.X.shape[1]),
        hidden=tuple(analysis.mlp_hidden),
        dropout=analysis.mlp_dropout,
        max_epochs=analysis.mlp_max_epochs,
        patience=analysis.mlp_patience,
        seed=analysis.seed,
    )
    folds = analysis.attractiveness_cv_folds
    fingerprint = regressor_fingerprint(data.X, data.y, config, folds, trained_on)
    stored = _stored_regressor(paths)
    if stored is not None and stored.fingerprint == fingerprint:
        context.log.info("training data and settings unchanged: the stored regressor is reused, not retrained")
        context.add_asset_metadata({"source": f"trained on the {trained_on} set's ratings", "reused": True,
                                    "training_fingerprint": fingerprint, **_model_metadata(stored)})
        return _checked_regressor(stored)
    if 2 <= folds and len(data.y) < 3 * folds:
        context.log.warning(f"{len(data.y)} rated faces are too few for {folds}-fold cross-validation; "
                            "reporting the held-out split only.")
        folds = 0
    model = AttractivenessRegressor(config, cv_folds=folds, trained_on=trained_on, fingerprint=fingerprint,
                                    workers=os.cpu_count() or 1)
    model.fit(data.X, data.y)
    context.add_asset_metadata({
        "source": f"trained on the {trained_on} set's ratings",
        **_model_metadata(model),
        "train_seconds": round(model.train_seconds_, 2),
        "reused": False,
        "training_fingerprint": fingerprint,
    })
    return _checked_regressor(model)


def _stored_regressor(paths: PathsResource) -> AttractivenessRegressor | None:
    """The regressor the model store holds, or None (none yet, absent, or unreadable: then train)."""
    try:
        return load_regressor(paths.layout().model_root, "attractiveness_regressor")
    except (ModelIntegrityError, OSError, KeyError, RuntimeError):
        return None


def _model_metadata(model: AttractivenessRegressor) -> dict[str, Any]:
    """The regressor's figures for the UI: held-out metrics (and their table), split sizes, epochs,
    data hash and, when it ran, the cross-validation."""
    if model.evaluation is None:
        raise ValueError("an unfitted regressor has no figures")
    m = model.evaluation.held_out
    cv = model.evaluation.cross_validation
    return {
        **(_cv_metadata(cv) if cv is not None else {}),
        "metrics": dg.MetadataValue.md(regressor_metrics_markdown(m)),
        "pearson_r": round(m.mlp.pearson_r, 4),
        "mae": round(m.mlp.mae, 4),
        "rmse": round(m.mlp.rmse, 4),
        "baseline_mean_rmse": round(m.mean_baseline.rmse, 4),
        "baseline_ridge_rmse": round(m.ridge.rmse, 4),
        "n_train": m.n_train,
        "n_val": m.n_val,
        "n_test": m.n_test,
        "epochs": model.epochs_run_,
        "data_hash": model.data_hash_,
    }


def _skipped(context: dg.AssetExecutionContext, reason: str) -> dg.MaterializeResult:
    """No regressor: say why once, in the log and the UI."""
    context.log.warning(f"Attractiveness skipped: {reason}.")
    context.add_asset_metadata({"skipped": reason})
    return _checked_regressor(None)


def _checked_regressor(model: AttractivenessRegressor | None) -> dg.MaterializeResult:
    """The regressor (None: no model) with the results of its two checks."""
    return checked(model, regressor_beats_mean_baseline(model), regressor_beats_ridge(model))


def regressor_beats_mean_baseline(model: AttractivenessRegressor | None) -> dg.AssetCheckResult:
    if model is None or model.evaluation is None:
        return _no_regressor("regressor_beats_mean_baseline", dg.AssetCheckSeverity.ERROR)
    m = model.evaluation.held_out
    return dg.AssetCheckResult(
        check_name="regressor_beats_mean_baseline",
        passed=bool(m.mlp.rmse < m.mean_baseline.rmse),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"mlp_rmse": round(m.mlp.rmse, 4), "mean_baseline_rmse": round(m.mean_baseline.rmse, 4),
                  "ridge_rmse": round(m.ridge.rmse, 4)},
    )


def regressor_beats_ridge(model: AttractivenessRegressor | None) -> dg.AssetCheckResult:
    if model is None or model.evaluation is None:
        return _no_regressor("regressor_beats_ridge", dg.AssetCheckSeverity.WARN)
    mlp, ridge, protocol = model.evaluation.mlp_and_ridge_rmse()
    extra: dict[str, Any] = {"protocol": protocol}
    cv = model.evaluation.cross_validation
    if cv is not None:
        extra.update({"mlp_wins_folds": f"{cv.mlp_wins('ridge')}/{cv.k}",
                      "difference_standard_error": round(cv.mlp_minus_ridge_rmse().std, 4)})
    return dg.AssetCheckResult(
        check_name="regressor_beats_ridge",
        passed=bool(mlp < ridge),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"mlp_rmse": round(mlp, 4), "ridge_rmse": round(ridge, 4), **extra},
    )


@dg.asset(group_name="attractiveness", kinds={"pytorch", "parquet"}, automation_condition=FOLLOW_UPSTREAM,
          check_specs=SCORES_CHECKS)
def attractiveness_scores(
    context: dg.AssetExecutionContext,
    embeddings_clip: pl.DataFrame,
    attractiveness_regressor: AttractivenessRegressor | None,
    attributes: pl.DataFrame,
    reference_embeddings: pl.DataFrame,
    dataset_labels: pl.DataFrame,
    clip: ClipResource,
    faces: FacesResource,
    models: ModelsResource,
    analysis: AnalysisResource,
):
    """Raw score (rating scale, 1–5), percentile (mid-rank, ties share it) and decile 1–10 per face.

    Faces whose ratings trained the regressor are scored out of fold (`attractiveness_source`): by
    the fold models of the regressor's own cross-validation when it has one and was trained on
    these very ratings, else by `oof_folds` regressors fitted here (`out_of_fold_from`).
    Out-of-domain flags: `attractiveness_out_of_domain` when a face's embedding is farther from
    every rated training face than the training set's own 99th-percentile nearest-neighbour
    distance (`domain_distance`), `attractiveness_outside_rated_groups` when its ethnicity is
    outside the groups SCUT-FBP5500's raters rated (East Asian, White). `scores_cover_embeddings`
    checks the table in this step."""
    if attractiveness_regressor is None:
        context.log.warning("No attractiveness regressor (no ratings): no scores.")
        context.add_asset_metadata({"faces": 0, "skipped": "no attractiveness regressor (no ratings, no bundle)"})
        empty = pl.DataFrame(schema=SCORES_SCHEMA)
        return checked(empty, scores_cover_embeddings(empty, embeddings_clip))
    X = embedding_matrix(embeddings_clip)
    run = run_models(models, clip, faces, embeddings_clip, reference_embeddings, dataset_labels)
    decision = run.sources.attractiveness
    training = run.sets.rows(decision) if decision.trains else None
    raw = attractiveness_regressor.predict(X)
    source, out_of_fold_from = ["model"] * len(raw), "none"
    if attractiveness_regressor.trained_on == "analysed":
        oof = None
        if training is not None:
            data = assemble_training_data(training, training.select("face_id", "score"))
            oof = cross_validated_scores(embeddings_clip["face_id"].to_list(), X, attractiveness_regressor, data)
            out_of_fold_from = "the regressor's cross-validation"
        if oof is None:
            rated = embeddings_clip.select("face_id").join(dataset_labels.select("face_id", "score"), on="face_id",
                                                           how="left")
            oof = out_of_fold_scores(X, rated["score"].to_list(), k=models.oof_folds, seed=analysis.seed,
                                     config=attractiveness_regressor.config_, final_model=attractiveness_regressor)
            out_of_fold_from = f"{models.oof_folds} regressors fitted here"
        raw, source = oof.values, oof.source.tolist()
    domain = None
    if decision.source == "bundle":
        domain = run.bundle.domain
    elif training is not None and training.height >= 2:
        domain = fit_domain(embedding_matrix(training))
    table = score_table(embeddings_clip["face_id"].to_list(), raw).join(
        embeddings_clip.select("face_id", "image_id", "path"), on="face_id", how="left"
    )
    ethnicity = table.select("face_id").join(attributes.select("face_id", "ethnicity_pred"), on="face_id", how="left")
    columns = [
        pl.Series("attractiveness_source", source, dtype=pl.String),
        pl.Series("attractiveness_outside_rated_groups", outside_rated_ethnicities(
            ethnicity["ethnicity_pred"].to_list()), dtype=pl.Boolean),
    ]
    if domain is not None:
        distance, flag = out_of_domain(X, domain)
        columns += [pl.Series("domain_distance", distance, dtype=pl.Float64),
                    pl.Series("attractiveness_out_of_domain", flag, dtype=pl.Boolean)]
    table = table.with_columns(columns)
    context.add_asset_metadata(
        {
            "faces": table.height,
            "out_of_fold": sum(1 for s in source if s == "out_of_fold"),
            "out_of_fold_from": out_of_fold_from,
            "out_of_domain": int(table["attractiveness_out_of_domain"].sum()) if domain is not None else 0,
            "domain_threshold": round(domain.threshold, 4) if domain is not None else 0.0,
            "outside_rated_groups": int(table["attractiveness_outside_rated_groups"].sum()),
            "score_mean": round(float(table["attractiveness_raw"].mean() or 0.0), 4),
            "score_std": round(float(table["attractiveness_raw"].std() or 0.0), 4),
            "decile_counts": counts_table(
                {str(d): int(c) for d, c in table["attractiveness_decile"].value_counts().iter_rows()}, key="decile"
            ),
        }
    )
    return checked(table, scores_cover_embeddings(table, embeddings_clip))


def _no_regressor(name: str, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    """Nothing to compare: the regressor was skipped (no ratings); its metadata says why."""
    return dg.AssetCheckResult(check_name=name, passed=True, severity=severity,
                               description="no regressor (no ratings): not checked", metadata={"regressor": "none"})
