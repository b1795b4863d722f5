"""Detection metrics on hand-checked predictions, the one NaN policy, fold means and stds, and the scanner
benchmark computing its figures with the same code as model evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from safepickle_bench.metrics import (
    METRIC_KEYS,
    detection_metrics,
    f1,
    label_metrics,
    mean_and_std,
    tpr_at_fpr,
)
from safepickle_bench.pipeline.scanner_benchmark import score_records


def test_detection_metrics_match_hand_computed_counts():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.8, 0.4, 0.7, 0.9, 0.95])
    pred = (score >= 0.5).astype(int)  # tn=3 fp=1 fn=1 tp=3
    m = detection_metrics(y, score, pred)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 3, 1)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75) and m["accuracy"] == pytest.approx(0.75)
    assert m["fpr"] == pytest.approx(0.25)
    assert m["roc_auc"] == pytest.approx(14 / 16)  # 14 of 16 malicious/benign pairs ranked right
    # no threshold keeps FPR <= 1 % except above the top benign score (0.8): 0.9 and 0.95 pass
    assert m["tpr_at_1pct_fpr"] == pytest.approx(0.5)


def test_metrics_undefined_on_one_class_are_nan_not_errors():
    y = np.ones(5, dtype=int)
    m = detection_metrics(y, np.linspace(0, 1, 5), np.array([0, 1, 1, 1, 1]))
    assert m["recall"] == pytest.approx(0.8)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["fpr"]) and math.isnan(m["tpr_at_1pct_fpr"])
    assert math.isnan(tpr_at_fpr(np.zeros(3, dtype=int), np.zeros(3)))


def test_mean_and_std_over_folds_ignore_nan_folds():
    folds = [{k: 0.5 for k in METRIC_KEYS}, {k: 1.0 for k in METRIC_KEYS}, {**{k: 1.0 for k in METRIC_KEYS},
                                                                            "roc_auc": math.nan}]
    out = mean_and_std(folds)
    assert out["f1"] == pytest.approx(2.5 / 3) and out["f1_std"] == pytest.approx(np.std([0.5, 1.0, 1.0]))
    assert out["roc_auc"] == pytest.approx(0.75) and out["roc_auc_std"] == pytest.approx(0.25)


def _previous_hand_written(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The scanner benchmark's former formulas, kept as the reference the shared module must reproduce."""
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    return {"f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else math.nan,
            "fpr": fp / (fp + tn) if fp + tn else math.nan, "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def test_label_metrics_are_bit_identical_to_the_former_formulas_when_both_classes_exist():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        pred = rng.integers(0, 2, n) * rng.integers(0, 2)  # some runs flag nothing at all
        assert label_metrics(y, pred) == _previous_hand_written(y, pred)


def test_nan_policy_undefined_needs_a_missing_class_and_nothing_flagged_is_zero_precision():
    benign_only = label_metrics(np.zeros(4, dtype=int), np.array([0, 1, 0, 0]))
    assert math.isnan(benign_only["f1"]) and math.isnan(benign_only["recall"])
    assert benign_only["fpr"] == 0.25 and benign_only["precision"] == 0.0
    malicious_only = label_metrics(np.ones(3, dtype=int), np.zeros(3, dtype=int))
    assert math.isnan(malicious_only["fpr"])
    assert malicious_only["precision"] == 0.0 and malicious_only["f1"] == 0.0 and malicious_only["recall"] == 0.0
    assert math.isnan(f1(np.zeros(3, dtype=int), np.zeros(3, dtype=int)))
    assert math.isnan(detection_metrics(np.zeros(3, dtype=int), np.zeros(3), np.zeros(3, dtype=int))["f1"])


def test_scanner_rows_and_model_rows_come_from_the_same_metric_code():
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    verdict = np.array(["malicious", "error", "benign", "benign", "malicious", "benign", "malicious", "error"])
    records = pd.DataFrame({"label": y, "verdict": verdict, "seconds": 0.001, "skipped": False})
    row = score_records(records, "hf", "x", "in-process")
    closed = ((verdict == "malicious") | (verdict == "error")).astype(int)
    model = detection_metrics(y, closed.astype(float), closed)
    assert (row["f1_fail_closed"], row["precision"], row["recall"], row["fpr"]) == (
        model["f1"], model["precision"], model["recall"], model["fpr"])
    assert row["f1_fail_open"] == f1(y, (verdict == "malicious").astype(int))
