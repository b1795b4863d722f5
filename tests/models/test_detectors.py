"""Every detector: one interface, sensible scores, explanations, and a non-pickle export that reloads exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.metrics import roc_auc_score

from safepickle_bench.config import fast_presets
from safepickle_bench.models.registry import DETECTOR_CLASSES, detector_class
from safepickle_bench.models.skops_io import UntrustedSkopsFile, load_skops


@pytest.fixture(scope="module")
def toy_data():
    """Benign rows near the origin, malicious rows shifted on two columns, one heavy-tailed count column."""
    rng = np.random.default_rng(0)
    n_benign, n_mal = 160, 40
    X = rng.normal(0.0, 1.0, size=(n_benign + n_mal, 8))
    X[n_benign:, :2] += 4.0
    X[:, 5] = np.abs(X[:, 5]) * 10_000
    y = np.r_[np.zeros(n_benign, int), np.ones(n_mal, int)]
    return X, y


@pytest.mark.parametrize("name", sorted(DETECTOR_CLASSES))
def test_detector_scores_separate_classes_and_export_reloads_identically(name, toy_data, tmp_path):
    X, y = toy_data
    cls = DETECTOR_CLASSES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = cls(**fast_presets()[name]).fit(X, y)
    proba = det.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y, proba[:, 1]) > 0.9
    assert np.array_equal(det.predict(X), (proba[:, 1] >= det.threshold_).astype(int))
    if not cls.supervised:
        # threshold chosen on held-out benign rows at target_fpr: most benign rows stay benign
        assert det.predict(X[y == 0]).mean() < 0.2

    meta = det.save_native(tmp_path)
    meta["params"] = det.get_params()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == meta["files"]
    assert not any(f.endswith((".pkl", ".pickle", ".joblib")) for f in files)
    again = cls.load_native(tmp_path, meta)
    assert np.allclose(again.predict_proba(X), proba)
    assert again.threshold_ == det.threshold_


@pytest.mark.parametrize(
    "name", ["RandomForestDetector", "CatBoostDetector", "XGBoostDetector", "LightGBMDetector"]
)
def test_tree_detectors_explain_with_per_feature_contributions(name, toy_data):
    X, y = toy_data
    cls = DETECTOR_CLASSES[name]
    det = cls(**fast_presets()[name]).fit(X, y)
    contrib = det.contributions(X[y == 1][:5])
    assert contrib.shape == (5, X.shape[1])
    assert cls.contribution_method
    # the two shifted columns drive the malicious score
    assert set(np.argsort(-contrib.mean(axis=0))[:2]) <= {0, 1, 5} and contrib[:, :2].sum() > 0
    assert det.feature_importances().shape == (X.shape[1],)


def test_random_forest_path_contributions_sum_to_prediction(toy_data):
    X, y = toy_data
    det = DETECTOR_CLASSES["RandomForestDetector"](n_estimators=10).fit(X, y)
    contrib = det.contributions(X[:20])
    bias = np.mean([t.tree_.value[0, 0, 1] / t.tree_.value[0, 0].sum() for t in det.model_.estimators_])
    assert np.allclose(contrib.sum(axis=1) + bias, det.predict_proba(X[:20])[:, 1])


def test_unsupervised_detectors_ignore_malicious_rows(toy_data):
    X, y = toy_data
    cls = DETECTOR_CLASSES["IsolationForestDetector"]
    a = cls(n_estimators=20).fit(X, y)
    b = cls(n_estimators=20).fit(X[y == 0], y[y == 0])
    assert np.allclose(a.predict_proba(X), b.predict_proba(X))


def test_skops_loader_refuses_types_outside_the_allow_list(tmp_path):
    path = tmp_path / "model.skops"
    sio.dump({"f": np.ones(2), "callable": np.add.reduce}, path)  # a function: not on the allow-list
    assert sio.get_untrusted_types(file=path)
    with pytest.raises(UntrustedSkopsFile):
        load_skops(path)


def test_unknown_detector_class_is_refused():
    with pytest.raises(ValueError, match="unknown detector class"):
        detector_class("os.system")
