"""Unsupervised detectors: trained on benign rows only, threshold set on held-out benign rows at a target FPR.

Every one follows the same recipe: standardise signed-log features, fit the novelty model on a benign
training part, compute raw anomaly scores (higher = more anomalous) on a benign validation part, take the
threshold as the (1 - target_fpr) quantile of those scores, and report `logistic((raw - threshold) / scale)`
as the malicious score, so 0.5 is exactly the chosen threshold. Class imbalance does not arise: the
malicious rows are never seen in training.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.neural_network import MLPRegressor
from sklearn.svm import OneClassSVM

from safepickle_bench.models.base import sigmoid
from safepickle_bench.models.supervised import _ScaledLinearDetector


class _AnomalyDetector(_ScaledLinearDetector):
    """Shared fit/threshold logic of the novelty detectors."""

    supervised: ClassVar[bool] = False
    target_fpr: float
    validation_fraction: float
    random_state: int

    def _fit_raw(self, Xs: np.ndarray) -> None:
        raise NotImplementedError

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        benign = X[y == 0]
        if len(benign) < 4:
            raise ValueError(f"an unsupervised detector needs at least 4 benign rows, got {len(benign)}")
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(benign))
        n_val = min(max(2, int(round(self.validation_fraction * len(benign)))), len(benign) - 2)
        val, train = benign[order[:n_val]], benign[order[n_val:]]
        self.scaler_ = None
        Xs_train = self._scale_fit(train)
        self._fit_raw(Xs_train)
        val_raw = self._raw(self._scale(val))
        self.raw_threshold_ = float(np.quantile(val_raw, 1.0 - self.target_fpr, method="higher"))
        spread = float(np.std(np.concatenate([val_raw, self._raw(Xs_train)])))
        self.raw_scale_ = spread if spread > 1e-12 else 1.0
        self.threshold_ = 0.5

    def _score(self, X: np.ndarray) -> np.ndarray:
        raw = self._raw(self._scale(X))
        return sigmoid((raw - self.raw_threshold_) / self.raw_scale_)

    def anomaly_scores(self, X: Any) -> np.ndarray:
        """Return the raw anomaly score of each row (higher = more anomalous)."""
        return self._raw(self._scale(np.asarray(X, dtype=np.float64)))

    def _state(self) -> dict[str, Any]:
        return {
            "scaler_": self.scaler_,
            "model_": self.model_,
            "raw_threshold_": self.raw_threshold_,
            "raw_scale_": self.raw_scale_,
        }


class IsolationForestDetector(_AnomalyDetector):
    """IsolationForest novelty detector (raw score = -score_samples)."""


    def __init__(
        self,
        n_estimators: int = 200,
        max_samples: str | int | float = "auto",
        target_fpr: float = 0.01,
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.target_fpr = target_fpr
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _fit_raw(self, Xs: np.ndarray) -> None:
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.random_state
        ).fit(Xs)

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(Xs)


class LOFDetector(_AnomalyDetector):
    """LocalOutlierFactor in novelty mode (raw score = -score_samples, the local outlier factor)."""

    def __init__(
        self,
        n_neighbors: int = 20,
        target_fpr: float = 0.01,
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.target_fpr = target_fpr
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _fit_raw(self, Xs: np.ndarray) -> None:
        k = max(1, min(self.n_neighbors, len(Xs) - 1))
        self.model_ = LocalOutlierFactor(n_neighbors=k, novelty=True).fit(Xs)

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return -self.model_.score_samples(Xs)


class OneClassSVMDetector(_AnomalyDetector):
    """One-class SVM with an RBF kernel (raw score = -decision_function)."""

    def __init__(
        self,
        nu: float = 0.05,
        gamma: str | float = "scale",
        kernel: str = "rbf",
        target_fpr: float = 0.01,
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.nu = nu
        self.gamma = gamma
        self.kernel = kernel
        self.target_fpr = target_fpr
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _fit_raw(self, Xs: np.ndarray) -> None:
        self.model_ = OneClassSVM(nu=self.nu, gamma=self.gamma, kernel=self.kernel).fit(Xs)

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return -self.model_.decision_function(Xs)


class AutoencoderDetector(_AnomalyDetector):
    """Autoencoder (an MLPRegressor trained to reproduce its standardised input through a bottleneck);
    raw score = mean squared reconstruction error; explanations: per-feature squared error."""

    contribution_method: ClassVar[str | None] = "per-feature squared reconstruction error"

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] | list[int] = (64, 16, 64),
        alpha: float = 1e-4,
        max_iter: int = 400,
        target_fpr: float = 0.01,
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.max_iter = max_iter
        self.target_fpr = target_fpr
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def _fit_raw(self, Xs: np.ndarray) -> None:
        self.model_ = MLPRegressor(
            hidden_layer_sizes=tuple(self.hidden_layer_sizes),
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.random_state,
        ).fit(Xs, Xs)

    def _errors(self, Xs: np.ndarray) -> np.ndarray:
        recon = self.model_.predict(Xs).reshape(Xs.shape)
        return (recon - Xs) ** 2

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return self._errors(Xs).mean(axis=1)

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return each feature's squared reconstruction error."""
        return self._errors(self._scale(np.asarray(X, dtype=np.float64)))
