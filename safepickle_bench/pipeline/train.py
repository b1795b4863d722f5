"""The `train` task: features -> cross-validation or train-on-A/test-on-B -> metrics, latency, MLflow, export."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from hydra.utils import instantiate
from joblib import Parallel, delayed
from omegaconf import OmegaConf

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.config import RunConfig, build_model
from safepickle_bench.metrics import METRIC_KEYS
from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.detector import export_detector
from safepickle_bench.models.explain import path_reasons_json
from safepickle_bench.models.threshold import DEFAULT_TARGET_FPR, ThresholdChoice, choose_threshold
from safepickle_bench.pipeline.data import LabelledFeatures, load_labelled_features
from safepickle_bench.pipeline.evaluate import (
    Evaluation,
    evaluate_group_kfold,
    evaluate_train_test,
    out_of_fold_scores,
)
from safepickle_bench.pipeline.latency import feature_latency, inference_latency, sample_indices
from safepickle_bench.pipeline.tracking import (
    config_params,
    git_commit,
    log_metrics,
    log_model_flavour,
    setup_mlflow,
    ui_hint,
)
from safepickle_bench.reporting.figures import confusion_matrix_png, feature_importance_png, roc_pr_png
from safepickle_bench.reporting.tables import console_summary

log = logging.getLogger(__name__)

MANIFEST_COLUMNS: tuple[str, ...] = (
    "path", "label", "group", "producer", "kind", "container", "payload_family", "injection",
    "evasion_technique",
)


def build_estimator(cfg: RunConfig) -> BaseDetector:
    """Instantiate the configured detector (`model._target_`), with its YAML fast preset when `fast` is set."""
    estimator = build_model(cfg.model, fast=cfg.fast)
    if not isinstance(estimator, BaseDetector):
        raise TypeError(f"model._target_ must build a BaseDetector, got {type(estimator).__name__}")
    return estimator


def predictions_frame(
    data: LabelledFeatures,
    scores: np.ndarray,
    preds: np.ndarray,
    folds: np.ndarray,
    top_features: list[str],
    threshold: float,
    limits: Limits,
    with_analyzer: bool,
) -> pd.DataFrame:
    """Return the per-file predictions: manifest columns, score, verdict, fold and the reasons (JSON)."""
    m = data.manifest
    frame = pd.DataFrame({c: m[c].to_numpy() for c in MANIFEST_COLUMNS if c in m.columns})
    frame.insert(0, "dataset", data.ref.name)
    frame["fold"] = folds
    frame["score"] = scores
    frame["threshold"] = threshold
    frame["pred"] = preds
    frame["verdict"] = np.where(preds == 1, "malicious", "benign")
    if with_analyzer:
        out = Parallel()(delayed(path_reasons_json)(p, limits) for p in data.paths)
        analyzer = [r for r, _ in out]
        frame["analysis_error"] = [e or "" for _, e in out]
    else:
        analyzer = ["[]"] * len(frame)
    frame["reasons"] = [json.dumps(json.loads(a) + json.loads(t)) for a, t in zip(analyzer, top_features, strict=True)]
    return frame


def _log_figures(frame: pd.DataFrame, counts: dict[str, float], estimator: BaseDetector, columns: list[str],
                 name: str, workdir: Path) -> None:
    """Write and log the confusion matrix, ROC/PR and (where the model has one) feature-importance PNGs."""
    figs = workdir / "figures"
    figs.mkdir(exist_ok=True)
    confusion_matrix_png(int(counts["tn"]), int(counts["fp"]), int(counts["fn"]), int(counts["tp"]),
                         figs / "confusion_matrix.png", title=name)
    roc_pr_png(frame["label"].to_numpy(), frame["score"].to_numpy(), figs / "roc_pr.png", title=name)
    importances = estimator.feature_importances()
    if importances is not None:
        feature_importance_png(columns, importances, figs / "feature_importance.png", title=f"{name}: top features")
    mlflow.log_artifacts(str(figs), "figures")


def run_tags(cfg: RunConfig, estimator: BaseDetector, train_data: LabelledFeatures,
             test_data: LabelledFeatures | None, feature_version: str) -> dict[str, str]:
    """Return the MLflow tags of a run: commit, datasets and manifest hashes, feature version, model."""
    tags = {
        "task": "train",
        "git_commit": git_commit(cfg.paths.root_dir),
        "dataset": train_data.ref.name,
        "dataset.size": train_data.ref.size,
        "dataset.manifest_sha256": train_data.manifest_sha256,
        "feature_version": feature_version,
        "feature_groups": ",".join(cfg.feature_groups),
        "model_class": type(estimator).__name__,
        "model_kind": "supervised" if estimator.supervised else "unsupervised",
        "protocol": "train_test" if test_data is not None else "group_kfold",
        "backend": cfg.backend.name,
    }
    if test_data is not None:
        tags |= {"test_dataset": test_data.ref.name, "test_dataset.size": test_data.ref.size,
                 "test_dataset.manifest_sha256": test_data.manifest_sha256}
    return tags


def target_fpr(cfg: RunConfig) -> float:
    """Return the false-positive rate the exported threshold aims for (`threshold.target_fpr`)."""
    node = cfg.raw.get("threshold")
    value = node.get("target_fpr") if node is not None else None
    return DEFAULT_TARGET_FPR if value is None else float(value)


def select_threshold(cfg: RunConfig, estimator: BaseDetector, ev: Evaluation, X: np.ndarray, y: np.ndarray,
                     groups: np.ndarray, splitter: object, cross_validated: bool) -> ThresholdChoice:
    """Choose the final model's threshold on out-of-fold scores of the training files and set it on the model.

    Under group k-fold those are the evaluation's own out-of-fold scores; under train-on-A / test-on-B the
    training files get an inner cross-validation with the same splitter (the test set is never looked at)."""
    if cross_validated:
        scores, method = ev.scores, "out-of-fold scores of the training files (the evaluation's group k-fold)"
    else:
        scores = out_of_fold_scores(estimator, X, y, groups, splitter, n_jobs=cfg.backend.n_jobs)
        method = "out-of-fold scores of the training files (inner cross-validation)"
    choice = choose_threshold(scores, y, target_fpr(cfg), method=method)
    ev.final.threshold_ = choice.threshold
    return choice


def train(cfg: RunConfig) -> dict[str, float]:
    """Run one training experiment end to end and return its metrics (also logged to MLflow)."""
    from safepickle_bench.features import FEATURE_VERSION
    from safepickle_bench.pipeline.backend import joblib_backend

    estimator = build_estimator(cfg)
    splitter = instantiate(cfg.split)
    limits = Limits.from_mapping(cfg.limits)
    top_k = cfg.evaluation.top_features
    setup_mlflow(cfg.tracking)
    with joblib_backend(cfg.backend):
        features_cfg = cfg.raw.get("features")
        train_data = load_labelled_features(cfg.dataset, cfg.paths.data_dir, features_cfg, cfg.backend, limits)
        test_data = None
        if cfg.test_dataset is not None:
            test_data = load_labelled_features(cfg.test_dataset, cfg.paths.data_dir, features_cfg, cfg.backend,
                                               limits)
        columns = train_data.columns
        X, y = train_data.X.to_numpy(dtype=np.float64), train_data.y
        # Not a context manager: on a crash the run stays active so that the task wrapper
        # (pipeline.app.run_task) records the traceback and marks it FAILED.
        run = mlflow.start_run(run_name=cfg.name)
        mlflow.set_tags(run_tags(cfg, estimator, train_data, test_data, str(FEATURE_VERSION)))
        mlflow.log_params(config_params(cfg.raw))
        if test_data is None:
            ev = evaluate_group_kfold(estimator, X, y, train_data.groups, splitter, columns,
                                      n_jobs=cfg.backend.n_jobs, top_k=top_k)
            eval_data = train_data
        else:
            ev = evaluate_train_test(estimator, X, y, test_data.X.to_numpy(dtype=np.float64), test_data.y,
                                     columns, top_k=top_k)
            eval_data = test_data
        for f in ev.fold_results:
            with mlflow.start_run(run_name=f"{cfg.name}/fold{f.fold}", nested=True):
                mlflow.set_tags({"fold": str(f.fold), "parent": run.info.run_id})
                log_metrics(f.metrics)
        fold_threshold = float(ev.final.threshold_)  # what the evaluated predictions were cut at
        choice = select_threshold(cfg, estimator, ev, X, y, train_data.groups, splitter, test_data is None)
        final, metrics = ev.final, dict(ev.metrics)
        metrics |= {"threshold": choice.threshold, "threshold_validation_fpr": choice.validation_fpr,
                    "threshold_validation_recall": choice.validation_recall,
                    "threshold_n_benign": float(choice.n_benign)}
        metrics["n_train_files"] = float(len(y))
        metrics["n_eval_files"] = float(len(eval_data.y))
        idx = sample_indices(len(eval_data.y), cfg.latency.n_files, cfg.seed)
        metrics |= feature_latency([eval_data.paths[i] for i in idx], cfg.feature_groups, limits)
        metrics |= inference_latency(final, eval_data.X.to_numpy(dtype=np.float64)[idx], cfg.latency.batch_size)
        log_metrics(metrics)

        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            frame = predictions_frame(eval_data, ev.scores, ev.preds, ev.folds, ev.top_features,
                                      fold_threshold, limits, cfg.evaluation.analyzer_reasons)
            frame.to_csv(workdir / "predictions.csv", index=False)
            mlflow.log_artifact(str(workdir / "predictions.csv"))
            _log_figures(frame, metrics, final, columns, cfg.name, workdir)

        export_dir = cfg.paths.models_dir / cfg.name
        if cfg.export_enabled:
            export_detector(
                final, export_dir,
                feature_groups=list(cfg.feature_groups), feature_columns=columns,
                feature_version=str(FEATURE_VERSION),
                training={"dataset": train_data.ref.name, "size": train_data.ref.size,
                          "seed": train_data.ref.seed, "manifest_sha256": train_data.manifest_sha256,
                          "n_files": int(len(y)), "n_malicious": int(y.sum()), "run_id": run.info.run_id,
                          "experiment": cfg.name, "fast": cfg.fast, "run_seed": cfg.seed,
                          "split": OmegaConf.to_container(cfg.split, resolve=True),
                          "target_fpr": choice.target_fpr},
                metrics={k: v for k, v in metrics.items() if k in METRIC_KEYS or k.endswith("_std")},
                limits=cfg.limits,
                threshold_selection=choice.to_dict(),
            )
            mlflow.log_artifacts(str(export_dir), "detector")
            mlflow.set_tag("export_dir", str(export_dir))
        if cfg.tracking.log_models:
            flavour = log_model_flavour(final)
            mlflow.set_tag("model_flavour", flavour or "skops-artifact")
        mlflow.end_run()
    where = f"run {run.info.run_id} ({cfg.tracking.experiment_name}); {ui_hint(cfg.tracking.uri)}"
    if cfg.export_enabled:
        where += f"\nmodel exported to {export_dir}"
    print(console_summary(cfg.name, metrics, where), flush=True)
    return metrics
