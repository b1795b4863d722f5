"""Detection metrics on hand-checked predictions, undefined metrics as NaN, fold means and stds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from safepickle_bench.pipeline.metrics import METRIC_KEYS, detection_metrics, mean_and_std, tpr_at_fpr


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
