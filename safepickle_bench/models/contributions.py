"""Per-row feature contributions for models without a native explainer (random forests, linear models)."""

from __future__ import annotations

from weakref import WeakKeyDictionary

import numpy as np
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier


def _tree_contribution_matrix(tree: object, n_features: int) -> sparse.csr_matrix:
    """Return a (n_nodes, n_features) matrix: the change in P(malicious) each node's parent split made."""
    t = tree.tree_
    n_nodes = t.node_count
    value = t.value[:, 0, :]
    totals = value.sum(axis=1, keepdims=True)
    totals[totals == 0] = 1.0
    p_mal = (value / totals)[:, 1]
    parent = np.full(n_nodes, -1, dtype=np.int64)
    left, right = t.children_left, t.children_right
    internal = np.flatnonzero(left >= 0)
    parent[left[internal]] = internal
    parent[right[internal]] = internal
    rows = np.flatnonzero(parent >= 0)
    feats = t.feature[parent[rows]]
    deltas = p_mal[rows] - p_mal[parent[rows]]
    return sparse.csr_matrix((deltas, (rows, feats)), shape=(n_nodes, n_features))


_FOREST_MATRICES: WeakKeyDictionary[RandomForestClassifier, tuple[int, sparse.csr_matrix]] = WeakKeyDictionary()
"""Per fitted forest: its trees' node contribution matrices stacked in estimator order (built once)."""


def _forest_matrix(forest: RandomForestClassifier, n_features: int) -> sparse.csr_matrix:
    """Return the (total nodes, n_features) contribution matrix of every tree of a forest, cached per forest."""
    hit = _FOREST_MATRICES.get(forest)
    if hit is None or hit[0] != n_features:
        stacked = sparse.vstack([_tree_contribution_matrix(est, n_features) for est in forest.estimators_]).tocsr()
        hit = (n_features, stacked)
        _FOREST_MATRICES[forest] = hit
    return hit[1]


def forest_path_contributions(forest: RandomForestClassifier, X: np.ndarray) -> np.ndarray:
    """Return Saabas-style decision-path contributions of each feature to P(malicious), averaged over trees.

    Walking each tree from root to leaf, the change in the node's malicious share at every split is
    credited to the split's feature; the row's contributions plus the root share give its tree prediction.
    """
    n_features = X.shape[1]
    indicator, _ = forest.decision_path(np.asarray(X, dtype=np.float32))  # every tree's nodes, estimator order
    out = np.asarray((indicator @ _forest_matrix(forest, n_features)).todense())
    return out / max(len(forest.estimators_), 1)


def linear_contributions(coef: np.ndarray, X_scaled: np.ndarray) -> np.ndarray:
    """Return coef_j * x_j per row for a linear model on standardised inputs (its exact logit decomposition)."""
    return X_scaled * np.asarray(coef).ravel()[None, :]
