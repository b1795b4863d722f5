"""Score an XGBoost binary classifier saved as XGBoost JSON with numpy alone (no XGBoost, no scikit-learn).

Scanning a handful of files with the shipped detector should cost a Python start-up, not the second it takes
to import XGBoost (which pulls in scikit-learn, pandas and SciPy). The model file is XGBoost's own JSON
format; this module reads its trees into padded arrays and walks every tree of every row at once, following
XGBoost's rules: features compared as float32, `x < split_condition` goes left, the margin is logit(base_score)
plus the leaf values, and the score is its logistic. Input goes through `as_matrix` as for every detector (NaN
and infinities become 0, so no value is ever missing), exactly what the XGBoost detector feeds XGBoost.

Explanations are Saabas path contributions (what XGBoost computes with `approx_contribs=True`): walking a
row's path, the change in the node's cover-weighted mean leaf value at each split is credited to the split's
feature; a row's contributions plus the bias equal its margin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from safepickle_bench.models.matrix import as_matrix

SUPPORTED_OBJECTIVE = "binary:logistic"


class UnsupportedTreeModel(ValueError):
    """The XGBoost JSON model uses something this evaluator does not implement."""


def _base_margin(learner: dict[str, Any]) -> float:
    """Return the margin XGBoost starts every row from: logit(base_score) for `binary:logistic`."""
    raw = str(learner["learner_model_param"]["base_score"]).strip().strip("[]").split(",")[0]
    p = float(raw)
    if not 0.0 < p < 1.0:
        raise UnsupportedTreeModel(f"base_score {p} is not a probability")
    return math.log(p / (1.0 - p))


def _node_means(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """Return every node's cover-weighted mean leaf value (a leaf's own value); children have higher ids."""
    means = leaf.astype(np.float64).copy()
    for node in np.flatnonzero(left >= 0)[::-1]:
        lc, rc = left[node], right[node]
        total = cover[lc] + cover[rc]
        means[node] = (means[lc] * cover[lc] + means[rc] * cover[rc]) / total if total > 0 else 0.0
    return means


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Return the number of splits on the longest root-to-leaf path of one tree (children have higher ids)."""
    depth = np.zeros(len(left), dtype=np.int64)
    for node in np.flatnonzero(left >= 0):
        depth[left[node]] = depth[right[node]] = depth[node] + 1
    return int(depth.max())


class TreeEnsemble:
    """A fitted XGBoost binary classifier (gbtree, numeric splits) evaluated with numpy."""

    supervised: ClassVar[bool] = True
    library: ClassVar[str] = "xgboost"
    contribution_method: ClassVar[str] = "Saabas path contributions (log-odds; XGBoost approx_contribs)"

    def __init__(self, trees: list[dict[str, Any]], n_features: int, base_margin: float) -> None:
        if not trees:
            raise UnsupportedTreeModel("the model has no trees")
        self.n_features_in_ = int(n_features)
        self.base_margin = float(base_margin)
        width = max(len(t["left_children"]) for t in trees)
        n = len(trees)
        self.left = np.full((n, width), -1, dtype=np.int64)
        self.right = np.full((n, width), -1, dtype=np.int64)
        self.feature = np.zeros((n, width), dtype=np.int64)
        self.condition = np.zeros((n, width), dtype=np.float32)
        self.leaf = np.zeros((n, width), dtype=np.float32)
        self.mean = np.zeros((n, width), dtype=np.float64)
        depth = 0
        for i, t in enumerate(trees):
            if any(int(s) != 0 for s in t.get("split_type", [])):
                raise UnsupportedTreeModel("categorical splits are not supported")
            k = len(t["left_children"])
            left = np.asarray(t["left_children"], dtype=np.int64)
            right = np.asarray(t["right_children"], dtype=np.int64)
            feature = np.asarray(t["split_indices"], dtype=np.int64)
            ids = np.arange(k)
            split = left >= 0
            if np.any(split & ((left <= ids) | (right <= ids) | (left >= k) | (right >= k) | (feature < 0)
                               | (feature >= n_features))):
                raise UnsupportedTreeModel(f"tree {i}: a child id not after its parent, or a feature out of range")
            self.left[i, :k], self.right[i, :k], self.feature[i, :k] = left, right, feature
            self.condition[i, :k] = np.asarray(t["split_conditions"], dtype=np.float32)
            is_leaf = left < 0
            self.leaf[i, :k] = np.where(is_leaf, self.condition[i, :k], 0.0)  # a leaf stores its value there
            self.mean[i, :k] = _node_means(left, right, self.leaf[i, :k], np.asarray(t["sum_hessian"], float))
            depth = max(depth, _depth(left, right))
        self.depth = depth
        self.threshold_ = 0.5

    @classmethod
    def from_xgboost_json(cls, path: str | Path) -> TreeEnsemble:
        """Read a model saved by XGBoost as JSON (`save_model("model.json")`)."""
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        try:
            learner = doc["learner"]
            objective = learner["objective"]["name"]
            booster = learner["gradient_booster"]
            if objective != SUPPORTED_OBJECTIVE:
                raise UnsupportedTreeModel(f"objective {objective!r} (only {SUPPORTED_OBJECTIVE})")
            if booster.get("name") != "gbtree":
                raise UnsupportedTreeModel(f"booster {booster.get('name')!r} (only gbtree)")
            model = booster["model"]
            if any(int(c) != 0 for c in model.get("tree_info", [])):
                raise UnsupportedTreeModel("more than one output class")
            n_features = int(learner["learner_model_param"]["num_feature"])
            return cls(model["trees"], n_features, _base_margin(learner))
        except (KeyError, TypeError, IndexError) as exc:
            raise UnsupportedTreeModel(f"{path}: not an XGBoost JSON model ({type(exc).__name__}: {exc})") from None

    def _paths(self, X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return, per depth, each (row, tree)'s current node and whether it is a split, from the root down."""
        X32 = np.asarray(X, dtype=np.float32)
        rows = np.arange(len(X32))[:, None]
        trees = np.arange(self.left.shape[0])[None, :]
        node = np.zeros((len(X32), self.left.shape[0]), dtype=np.int64)
        steps = []
        for _ in range(self.depth + 1):
            split = self.left[trees, node] >= 0
            steps.append((node, split))
            if not split.any():
                break
            value = X32[rows, self.feature[trees, node]]
            go_left = value < self.condition[trees, node]
            node = np.where(split, np.where(go_left, self.left[trees, node], self.right[trees, node]), node)
        return steps

    def _check(self, X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
        """Return X as a matrix with the model's number of columns, or raise."""
        Xm = as_matrix(X)
        if Xm.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {Xm.shape[1]} features, the model expects {self.n_features_in_}")
        return Xm

    def margin(self, X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
        """Return each row's log-odds of being malicious."""
        Xm = self._check(X)
        if not len(Xm):
            return np.zeros(0)
        node, _ = self._paths(Xm)[-1]
        trees = np.arange(self.left.shape[0])[None, :]
        return self.base_margin + self.leaf[trees, node].sum(axis=1, dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
        """Return [P(benign), P(malicious)] per row."""
        s = 0.5 * (1.0 + np.tanh(0.5 * self.margin(X)))
        return np.column_stack([1.0 - s, s])

    def predict(self, X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
        """Return 1 (malicious) where the score reaches `threshold_`, else 0."""
        return (self.predict_proba(X)[:, 1] >= self.threshold_).astype(np.int64)

    def contributions(self, X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
        """Return per-row, per-feature Saabas contributions to the log-odds (bias not included)."""
        Xm = self._check(X)
        n, f = len(Xm), self.n_features_in_
        out = np.zeros(n * f)
        if not n:
            return out.reshape(0, f)
        trees = np.arange(self.left.shape[0])[None, :]
        rows = np.arange(n)[:, None]
        steps = self._paths(Xm)
        for (node, split), (child, _) in zip(steps, steps[1:], strict=False):
            delta = np.where(split, self.mean[trees, child] - self.mean[trees, node], 0.0)
            index = rows * f + self.feature[trees, node]
            out += np.bincount(index[split], weights=delta[split], minlength=n * f)
        return out.reshape(n, f)

    def bias(self) -> float:
        """Return the margin every row starts from before its path contributions."""
        return self.base_margin + float(self.mean[:, 0].sum())

    def feature_importances(self) -> np.ndarray:
        """Return how many splits use each feature (XGBoost's `weight` importance)."""
        used = self.feature[self.left >= 0]
        return np.bincount(used, minlength=self.n_features_in_).astype(np.float64)
