"""Detection metrics, computed one way for models, scanners and attacked files (scikit-learn underneath).

Labels are 1 = malicious (the positive class), 0 = benign. One NaN policy for every figure:

- a metric whose definition needs a class the labels do not contain is NaN, never 0: recall, F1, PR-AUC and
  the TPR at 1 % FPR need at least one malicious file, the false-positive rate at least one benign file,
  ROC-AUC both;
- precision with nothing flagged malicious is 0.0 (scikit-learn's `zero_division=0`): the detector found
  nothing, which is a figure, not a missing one.

Fold means skip NaN folds (`mean_and_std`). Confusion counts are ints from `confusion_counts`;
`detection_metrics` reports them as floats beside the other metrics of a run.
"""

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
"""Metrics of a scored model run (threshold-free ones included)."""
COUNT_KEYS: tuple[str, ...] = ("tp", "fp", "tn", "fn")
"""The confusion counts, reported beside the metrics."""
LATENCY_KEYS: tuple[str, ...] = (
    "features_ms_median", "features_ms_p95", "inference_ms_median", "inference_ms_p95",
    "inference_batch_ms_per_file", "train_seconds",
)
"""Timing figures of a model run."""


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Return the confusion counts tp, fp, tn, fn of binary predictions."""
    tn, fp, fn, tp = confusion_matrix(np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int),
                                      labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def label_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | int]:
    """Return f1, precision, recall, fpr and the confusion counts of binary predictions (NaN policy above)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    counts = confusion_counts(y_true, y_pred)
    has_malicious = counts["tp"] + counts["fn"] > 0
    has_benign = counts["fp"] + counts["tn"] > 0
    return {
        "f1": float(f1_score(y_true, y_pred, zero_division=0)) if has_malicious else math.nan,
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)) if has_malicious else math.nan,
        "fpr": counts["fp"] / (counts["fp"] + counts["tn"]) if has_benign else math.nan,
        **counts,
    }


def f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Return the F1 of binary predictions (NaN without a malicious file)."""
    return float(label_metrics(y_true, y_pred)["f1"])


def tpr_at_fpr(y_true: np.ndarray, y_score: np.ndarray, max_fpr: float = 0.01) -> float:
    """Return the highest true-positive rate reachable with a false-positive rate at most `max_fpr`."""
    if len(np.unique(y_true)) < 2:
        return math.nan
    fpr, tpr, _ = roc_curve(y_true, y_score)
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def detection_metrics(y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return every METRIC_KEYS figure and the confusion counts of scored predictions (NaN policy above)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    base = label_metrics(y_true, y_pred)
    has_malicious = base["tp"] + base["fn"] > 0
    two_classes = has_malicious and base["fp"] + base["tn"] > 0
    return {
        "f1": base["f1"],
        "precision": base["precision"],
        "recall": base["recall"],
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "roc_auc": float(roc_auc_score(y_true, y_score)) if two_classes else math.nan,
        "pr_auc": float(average_precision_score(y_true, y_score)) if has_malicious else math.nan,
        "fpr": base["fpr"],
        "tpr_at_1pct_fpr": tpr_at_fpr(y_true, y_score, 0.01),
        **{k: float(base[k]) for k in COUNT_KEYS},
    }


def mean_and_std(per_fold: list[dict[str, float]], keys: tuple[str, ...] = METRIC_KEYS) -> dict[str, float]:
    """Return each key's mean over folds and its (population) standard deviation as `<key>_std`, NaN folds
    left out."""
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([f[key] for f in per_fold if key in f], dtype=float)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if len(finite) else math.nan
        out[f"{key}_std"] = float(finite.std()) if len(finite) else math.nan
    return out
