"""The one interface every detector follows: fit, scores in [0, 1], a threshold, export, explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from safepickle_bench.models.matrix import as_matrix

__all__ = ["BaseDetector", "as_matrix", "sigmoid", "signed_log1p"]


def signed_log1p(X: np.ndarray) -> np.ndarray:
    """Compress heavy-tailed counts (bytes, opcodes) as sign(x) * log1p(|x|); shares stay almost unchanged."""
    return np.sign(X) * np.log1p(np.abs(X))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return the logistic function of z, overflow-safe."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


class BaseDetector(ClassifierMixin, BaseEstimator):
    """A scikit-learn classifier whose `predict_proba[:, 1]` is a malicious score compared to `threshold_`.

    Subclasses set `supervised`, `library` (which native/export format applies) and implement `_fit`,
    `_score`, `save_native`, `load_native`; `feature_importances` and `contributions` are optional (None when the model has none).
    """

    supervised: ClassVar[bool] = True
    library: ClassVar[str] = "sklearn"
    contribution_method: ClassVar[str | None] = None

    def fit(self, X: Any, y: Any) -> BaseDetector:
        """Fit on X, y (0 benign, 1 malicious); unsupervised detectors use the benign rows only."""
        Xm = as_matrix(X)
        ym = np.asarray(y, dtype=np.int64).ravel()
        if len(Xm) != len(ym):
            raise ValueError(f"X has {len(Xm)} rows but y has {len(ym)}")
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = Xm.shape[1]
        if self.supervised and len(np.unique(ym)) < 2:
            raise ValueError("a supervised detector needs benign and malicious training rows")
        self._fit(Xm, ym)
        if not hasattr(self, "threshold_"):
            self.threshold_ = 0.5
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:
        """Return the malicious score in [0, 1] of each row."""
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return [P(benign), P(malicious)] per row (for unsupervised models a squashed anomaly score)."""
        s = np.clip(self._score(as_matrix(X)), 0.0, 1.0)
        return np.column_stack([1.0 - s, s])

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the malicious score minus the threshold (> 0 means malicious)."""
        return self._score(as_matrix(X)) - self.threshold_

    def predict(self, X: Any) -> np.ndarray:
        """Return 1 (malicious) where the score reaches the threshold, else 0."""
        return (self._score(as_matrix(X)) >= self.threshold_).astype(np.int64)

    def feature_importances(self) -> np.ndarray | None:
        """Return one global importance per feature, or None when the model has none."""
        return None

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return per-row, per-feature contributions to the score (see `contribution_method`), or None."""
        return None

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write the fitted model into `directory` in a non-pickle format; return metadata to reload it."""
        raise NotImplementedError

    @classmethod
    def load_native(cls, directory: Path, meta: dict[str, Any]) -> BaseDetector:
        """Rebuild a fitted detector from what `save_native` wrote."""
        raise NotImplementedError

    def _restore_common(self, meta: dict[str, Any]) -> None:
        """Set the fitted attributes every detector shares from export metadata."""
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = int(meta["n_features"])
        self.threshold_ = float(meta["threshold"])

    def _common_meta(self) -> dict[str, Any]:
        """Return the fitted attributes every detector shares, for export metadata."""
        return {"n_features": int(self.n_features_in_), "threshold": float(self.threshold_)}
