"""Detection metrics of one set of predictions, and their mean and standard deviation over folds."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

METRIC_KEYS: tuple[str, ...] = (
    "f1", "precision", "recall", "accuracy", "roc_auc", "pr_auc", "fpr", "tpr_at_1pct_fpr",
)
LATENCY_KEYS: tuple[str, ...] = (
    "features_ms_median", "features_ms_p95", "inference_ms_median", "inference_ms_p95",
    "inference_batch_ms_per_file", "train_seconds",
)


def tpr_at_fpr(y_true: np.ndarray, y_score: np.ndarray, max_fpr: float = 0.01) -> float:
    """Return the highest true-positive rate reachable with a false-positive rate at most `max_fpr`."""
    if len(np.unique(y_true)) < 2:
        return math.nan
    fpr, tpr, _ = roc_curve(y_true, y_score)
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def detection_metrics(y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return f1, precision, recall, accuracy, roc_auc, pr_auc, fpr, tpr_at_1pct_fpr and the confusion counts.

    Metrics undefined on the given labels (ROC-AUC with one class, FPR without benign files) are NaN.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    two_classes = len(np.unique(y_true)) == 2
    return {
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)) if tp + fn else math.nan,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "roc_auc": float(roc_auc_score(y_true, y_score)) if two_classes else math.nan,
        "pr_auc": float(average_precision_score(y_true, y_score)) if tp + fn else math.nan,
        "fpr": float(fp / (fp + tn)) if fp + tn else math.nan,
        "tpr_at_1pct_fpr": tpr_at_fpr(y_true, y_score, 0.01),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


def mean_and_std(per_fold: list[dict[str, float]], keys: tuple[str, ...] = METRIC_KEYS) -> dict[str, float]:
    """Return each key's mean over folds and its (population) standard deviation as `<key>_std`."""
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([f[key] for f in per_fold if key in f], dtype=float)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if len(finite) else math.nan
        out[f"{key}_std"] = float(finite.std()) if len(finite) else math.nan
    return out
