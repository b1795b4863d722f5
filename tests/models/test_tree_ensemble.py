"""The numpy scorer of XGBoost JSON models: same scores and Saabas contributions as XGBoost on what every
detector feeds it (NaN as 0), rows on split boundaries included; models it cannot score exactly are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from safepickle_bench.models.tree_ensemble import TreeEnsemble, UnsupportedTreeModel

xgboost = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 12))
    X[:, 3] = rng.integers(0, 4, 600)
    y = ((X[:, 0] + X[:, 1] ** 2 + X[:, 3]) > 2).astype(int)
    model = xgboost.XGBClassifier(n_estimators=40, max_depth=5, scale_pos_weight=3.0, tree_method="hist").fit(X, y)
    path = tmp_path_factory.mktemp("xgb") / "model.json"
    model.save_model(str(path))
    return model, path, rng


def test_scores_and_contributions_equal_xgboost(fitted):
    model, path, rng = fitted
    ensemble = TreeEnsemble.from_xgboost_json(path)
    X = rng.normal(size=(200, 12))
    X[:20, 3] = np.arange(20) % 4  # values equal to split conditions
    X[20:30, 0] = np.nan  # a detector's input: NaN becomes 0 (as_matrix), never a missing value
    fed = np.nan_to_num(X, nan=0.0)
    assert np.allclose(ensemble.predict_proba(X)[:, 1], model.get_booster().predict(xgboost.DMatrix(fed)), atol=1e-6)
    expected = model.get_booster().predict(xgboost.DMatrix(fed), pred_contribs=True, approx_contribs=True)
    got = ensemble.contributions(X)
    assert np.allclose(got, expected[:, :-1], atol=1e-4)
    assert np.allclose(expected[:, -1], ensemble.bias(), atol=1e-4)
    assert np.allclose(got.sum(axis=1) + ensemble.bias(), ensemble.margin(X), atol=1e-4)
    assert np.array_equal(ensemble.predict(X), (ensemble.predict_proba(X)[:, 1] >= 0.5).astype(int))


def test_wrong_width_and_empty_input(fitted):
    _, path, _ = fitted
    ensemble = TreeEnsemble.from_xgboost_json(path)
    with pytest.raises(ValueError, match="features"):
        ensemble.predict_proba(np.zeros((2, 5)))
    assert ensemble.predict_proba(np.zeros((0, 12))).shape == (0, 2)
    assert ensemble.contributions(np.zeros((0, 12))).shape == (0, 12)


def test_unsupported_or_malformed_models_are_refused(fitted, tmp_path):
    _, path, _ = fitted
    doc = json.loads(path.read_text())
    other = json.loads(path.read_text())
    other["learner"]["objective"]["name"] = "reg:squarederror"
    (tmp_path / "objective.json").write_text(json.dumps(other))
    with pytest.raises(UnsupportedTreeModel, match="objective"):
        TreeEnsemble.from_xgboost_json(tmp_path / "objective.json")
    looped = json.loads(json.dumps(doc))
    looped["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 0  # a node its own child
    (tmp_path / "looped.json").write_text(json.dumps(looped))
    with pytest.raises(UnsupportedTreeModel, match="child"):
        TreeEnsemble.from_xgboost_json(tmp_path / "looped.json")
    (tmp_path / "other.json").write_text(json.dumps({"not": "a model"}))
    with pytest.raises(UnsupportedTreeModel, match="not an XGBoost JSON model"):
        TreeEnsemble.from_xgboost_json(tmp_path / "other.json")
