"""Protocols: stratified group k-fold on one dataset, and train-on-A / test-on-B."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone

from safepickle_bench.metrics import COUNT_KEYS, METRIC_KEYS, detection_metrics, mean_and_std
from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.explain import top_feature_reasons
from safepickle_bench.splits import effective_splits, split_indices


@dataclass
class FoldResult:
    """One fitted-and-scored split: test rows, their scores and predictions, metrics, fit time."""

    fold: int
    test_index: np.ndarray
    scores: np.ndarray
    preds: np.ndarray
    metrics: dict[str, float]
    train_seconds: float
    top_features: list[str] = field(default_factory=list)
    """JSON list of top-feature reasons per test row."""


def fit_and_score(
    estimator: BaseDetector,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    columns: list[str],
    fold: int = 0,
    test_index: np.ndarray | None = None,
    top_k: int = 5,
) -> tuple[FoldResult, BaseDetector]:
    """Fit a clone of `estimator` on the training rows and score the test rows."""
    model = clone(estimator)
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    train_seconds = time.perf_counter() - t0
    scores = model.predict_proba(X_test)[:, 1]
    preds = model.predict(X_test)
    contribs = model.contributions(X_test) if top_k > 0 else None
    tops = [
        json.dumps(top_feature_reasons(None if contribs is None else contribs[i], X_test[i], columns,
                                       model.contribution_method, top_k))
        for i in range(len(X_test))
    ]
    result = FoldResult(
        fold=fold,
        test_index=np.arange(len(X_test)) if test_index is None else test_index,
        scores=scores,
        preds=preds,
        metrics={**detection_metrics(y_test, scores, preds), "train_seconds": train_seconds},
        train_seconds=train_seconds,
        top_features=tops,
    )
    return result, model


def _score_fold(*args: Any) -> FoldResult:
    """Run fit_and_score and keep only the result (the fitted fold model is not sent back)."""
    return fit_and_score(*args)[0]


def cross_validate(
    estimator: BaseDetector,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    splitter: Any,
    columns: list[str],
    n_jobs: int = 1,
    top_k: int = 5,
) -> list[FoldResult]:
    """Run every fold (in parallel on the active joblib backend) and return the per-fold results."""
    if len(np.unique(y)) < 2:
        raise ValueError("cross-validation needs benign and malicious files")
    splits = split_indices(effective_splits(splitter, y, groups), y, groups)
    jobs = (
        delayed(_score_fold)(estimator, X[tr], y[tr], X[te], y[te], columns, k, te, top_k)
        for k, (tr, te) in enumerate(splits)
    )
    results = Parallel(n_jobs=min(n_jobs if n_jobs > 0 else len(splits), len(splits)))(jobs)
    return list(results)


@dataclass
class Evaluation:
    """What a protocol produced: metrics, per-file scores over the evaluated files, and the final model."""

    metrics: dict[str, float]
    scores: np.ndarray
    preds: np.ndarray
    folds: np.ndarray
    top_features: list[str]
    final: BaseDetector
    fold_results: list[FoldResult] = field(default_factory=list)


def evaluate_group_kfold(
    estimator: BaseDetector,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    splitter: Any,
    columns: list[str],
    n_jobs: int = 1,
    top_k: int = 5,
) -> Evaluation:
    """Cross-validate (fold means and stds, out-of-fold scores), then fit the final model on every row."""
    folds = cross_validate(estimator, X, y, groups, splitter, columns, n_jobs=n_jobs, top_k=top_k)
    metrics = mean_and_std([f.metrics for f in folds])
    metrics["n_folds"] = float(len(folds))
    metrics |= {k: float(sum(f.metrics[k] for f in folds)) for k in COUNT_KEYS}
    n = len(y)
    scores, preds, fold_ids, tops = np.zeros(n), np.zeros(n, dtype=int), np.full(n, -1), ["[]"] * n
    for f in folds:
        scores[f.test_index], preds[f.test_index], fold_ids[f.test_index] = f.scores, f.preds, f.fold
        for i, t in zip(f.test_index, f.top_features, strict=True):
            tops[i] = t
    t0 = time.perf_counter()
    final = clone(estimator).fit(X, y)
    metrics["train_seconds"] = time.perf_counter() - t0
    return Evaluation(metrics, scores, preds, fold_ids, tops, final, folds)


def out_of_fold_scores(
    estimator: BaseDetector,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    splitter: Any,
    n_jobs: int = 1,
) -> np.ndarray:
    """Return every row's score from a model that did not train on it (the folds of `splitter`)."""
    folds = cross_validate(estimator, X, y, groups, splitter, [], n_jobs=n_jobs, top_k=0)
    scores = np.full(len(y), np.nan)
    for f in folds:
        scores[f.test_index] = f.scores
    return scores


def evaluate_train_test(
    estimator: BaseDetector,
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    columns: list[str],
    top_k: int = 5,
) -> Evaluation:
    """Fit on dataset A, score dataset B: test-set metrics (no std) and the fitted model."""
    result, final = fit_and_score(estimator, X, y, X_test, y_test, columns, top_k=top_k)
    metrics = {k: result.metrics[k] for k in (*METRIC_KEYS, *COUNT_KEYS, "train_seconds")}
    return Evaluation(metrics, result.scores, result.preds, np.full(len(y_test), -1), result.top_features, final)
