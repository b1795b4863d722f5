"""Supervised detectors: tree ensembles, linear models, k-NN and an MLP, each with explicit class balancing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight

from safepickle_bench.models.base import BaseDetector, sigmoid, signed_log1p
from safepickle_bench.models.contributions import forest_path_contributions, linear_contributions
from safepickle_bench.models.skops_io import load_skops, save_skops


def balance_ratio(y: np.ndarray) -> float:
    """Return n_benign / n_malicious (XGBoost's scale_pos_weight for balanced classes)."""
    pos = int((y == 1).sum())
    return float((y == 0).sum()) / pos if pos else 1.0


class _SkopsDetector(BaseDetector):
    """A detector whose fitted state is a dict of sklearn objects saved with skops."""

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write the fitted sklearn objects as `model.skops`."""
        save_skops(self._state(), directory / "model.skops")
        return {**self._common_meta(), "files": ["model.skops"], "format": "skops"}

    @classmethod
    def load_native(cls, directory: Path, meta: dict[str, Any]) -> BaseDetector:
        """Load `model.skops` (allow-listed types only) and rebuild the detector."""
        det = cls(**meta.get("params", {}))
        det._set_state(load_skops(directory / "model.skops"))
        det._restore_common(meta)
        return det


class RandomForestDetector(_SkopsDetector):
    """RandomForestClassifier; imbalance: class_weight='balanced'; explanations: decision-path contributions."""

    contribution_method: ClassVar[str | None] = "decision-path contributions (Saabas) to P(malicious)"

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: str | float | None = "sqrt",
        class_weight: str | None = "balanced",
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.model_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(X, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1]

    def _state(self) -> dict[str, Any]:
        return {"model_": self.model_}

    def feature_importances(self) -> np.ndarray | None:
        """Return the forest's mean decrease in impurity."""
        return np.asarray(self.model_.feature_importances_)

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return decision-path contributions to P(malicious)."""
        return forest_path_contributions(self.model_, np.asarray(X, dtype=np.float64))


class _ScaledLinearDetector(_SkopsDetector):
    """Shared parts of detectors that standardise signed-log features before a linear/distance model."""

    def _scale_fit(self, X: np.ndarray) -> np.ndarray:
        self.scaler_ = StandardScaler().fit(signed_log1p(X))
        return self.scaler_.transform(signed_log1p(X))

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return self.scaler_.transform(signed_log1p(X))

    def _state(self) -> dict[str, Any]:
        return {"scaler_": self.scaler_, "model_": self.model_}


class LogisticRegressionDetector(_ScaledLinearDetector):
    """L2 logistic regression on standardised signed-log features; imbalance: class_weight='balanced'."""

    contribution_method: ClassVar[str | None] = "coefficient x standardised value (logit terms)"

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 2000) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        Xs = self._scale_fit(X)
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        self.model_.fit(Xs, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(self._scale(X))[:, 1]

    def feature_importances(self) -> np.ndarray | None:
        """Return |coefficient| on standardised features."""
        return np.abs(self.model_.coef_).ravel()

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return coefficient x standardised value per feature."""
        return linear_contributions(self.model_.coef_, self._scale(np.asarray(X, dtype=np.float64)))


class LinearSVMDetector(_ScaledLinearDetector):
    """Linear SVM (LinearSVC); score = logistic(decision_function) so 0.5 is the margin; class_weight='balanced'."""

    contribution_method: ClassVar[str | None] = "coefficient x standardised value (margin terms)"

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 10000) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        Xs = self._scale_fit(X)
        self.model_ = LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter).fit(Xs, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.model_.decision_function(self._scale(X)))

    def feature_importances(self) -> np.ndarray | None:
        """Return |coefficient| on standardised features."""
        return np.abs(self.model_.coef_).ravel()

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return coefficient x standardised value per feature."""
        return linear_contributions(self.model_.coef_, self._scale(np.asarray(X, dtype=np.float64)))


class KNNDetector(_ScaledLinearDetector):
    """k-nearest neighbours on standardised signed-log features.

    k-NN has no class weights: imbalance is handled by distance weighting (a near malicious neighbour
    outweighs far benign ones); the threshold stays 0.5.
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "distance") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        Xs = self._scale_fit(X)
        k = max(1, min(self.n_neighbors, len(Xs)))
        self.model_ = KNeighborsClassifier(n_neighbors=k, weights=self.weights).fit(Xs, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(self._scale(X))[:, 1]


class MLPDetector(_ScaledLinearDetector):
    """Multi-layer perceptron; imbalance: 'balanced' sample weights passed to fit."""


    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] | list[int] = (64, 32),
        alpha: float = 1e-4,
        max_iter: int = 300,
        balanced: bool = True,
        random_state: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.balanced = balanced
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        Xs = self._scale_fit(X)
        self.model_ = MLPClassifier(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        weights = compute_sample_weight("balanced", y) if self.balanced else None
        self.model_.fit(Xs, y, sample_weight=weights)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(self._scale(X))[:, 1]
