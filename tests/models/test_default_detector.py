"""The detector shipped in the package: present, small, non-pickle, trained on generated data with a validated
threshold, matching the package's features; its numpy scorer agrees with XGBoost; loading it stays light."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

from safepickle_bench.features import FEATURE_VERSION, feature_columns
from safepickle_bench.models.detector import DEFAULT_DETECTOR_DIR, DETECTOR_JSON, load_detector

MAX_BYTES = 5 * 1024**2
HEAVY = ("sklearn", "xgboost", "lightgbm", "catboost", "torch", "dask", "distributed", "mlflow", "pandas", "scipy",
         "skops")


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((DEFAULT_DETECTOR_DIR / DETECTOR_JSON).read_text(encoding="utf-8"))


def test_shipped_detector_matches_the_package_feature_version_and_columns(meta):
    assert str(meta["feature_version"]) == str(FEATURE_VERSION), (
        "the shipped detector was trained on another feature version: run python experiments/train_default_detector.py"
    )
    assert meta["feature_columns"] == feature_columns(meta["feature_groups"]), (
        "the shipped detector's columns differ from the features': run python experiments/train_default_detector.py"
    )


def test_shipped_detector_is_small_non_pickle_and_records_its_training(meta):
    files = sorted(p.name for p in DEFAULT_DETECTOR_DIR.iterdir() if p.is_file())
    assert files == sorted([DETECTOR_JSON, *meta["files"]])
    assert sum((DEFAULT_DETECTOR_DIR / f).stat().st_size for f in files) <= MAX_BYTES
    for name in meta["files"]:
        json.loads((DEFAULT_DETECTOR_DIR / name).read_text(encoding="utf-8"))  # JSON, not a pickle
    training = meta["training"]
    assert training["dataset"] == "generalization" and training["size"] == "full" and len(training["manifest_sha256"]) == 64
    assert not training["fast"]
    selection = meta["threshold_selection"]
    assert meta["threshold"] == selection["threshold"] and selection["validation_fpr"] <= selection["target_fpr"]
    assert {"f1", "roc_auc"} <= set(meta["metrics"]) and meta["regenerate"].startswith("python experiments/")


def test_shipped_detector_loads_without_warnings_and_tells_payload_from_data():
    from safepickle_bench.analysis import analyze_bytes

    detector = load_detector()
    assert detector.warnings == []
    benign = analyze_bytes(pickle.dumps({"weights": [0.1, 0.2], "epochs": 3}), "benign.pkl")
    payload = analyze_bytes(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echoq\x00\x85R.", "payload.pkl")
    scores = detector.scores(detector.features([benign, payload]))
    assert scores[0] < detector.threshold <= scores[1]


def test_numpy_scorer_agrees_with_xgboost_on_the_shipped_model(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    from safepickle_bench.analysis import analyze_bytes

    detector = load_detector()
    blobs = [pickle.dumps(obj, protocol=p) for p in range(6) for obj in ({"a": 1}, [1.5] * 9, ("x", b"y"))]
    blobs.append(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echoq\x00\x85R.")
    X = detector.features([analyze_bytes(b, f"f{i}.pkl") for i, b in enumerate(blobs)])
    rng = np.random.default_rng(0)
    X = np.vstack([X, np.abs(rng.normal(size=(20, X.shape[1]))) * (rng.random((20, X.shape[1])) < 0.1)])
    booster = xgboost.Booster(model_file=str(DEFAULT_DETECTOR_DIR / "model.json"))
    expected = booster.predict(xgboost.DMatrix(X))
    assert np.allclose(detector.scores(X), expected, atol=1e-6)
    contribs = booster.predict(xgboost.DMatrix(X), pred_contribs=True, approx_contribs=True)[:, :-1]
    assert np.allclose(detector.estimator.contributions(X), contribs, atol=1e-4)


def test_loading_and_scoring_with_the_shipped_detector_imports_no_heavy_library():
    code = (
        "import sys, pickle\n"
        "from safepickle_bench.analysis import analyze_bytes\n"
        "from safepickle_bench.models.detector import load_detector\n"
        "d = load_detector()\n"
        "d.top_features(d.features([analyze_bytes(pickle.dumps([1]), 'x.pkl')]))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
