"""Gradient-boosted detectors (CatBoost, XGBoost, LightGBM) with native non-pickle formats and SHAP values."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.supervised import balance_ratio


class CatBoostDetector(BaseDetector):
    """CatBoostClassifier; imbalance: auto_class_weights='Balanced'; export `.cbm`; explanations: ShapValues."""

    library: ClassVar[str] = "catboost"
    contribution_method: ClassVar[str | None] = "CatBoost ShapValues (log-odds)"

    def __init__(
        self,
        iterations: int = 500,
        depth: int = 6,
        learning_rate: float | None = None,
        auto_class_weights: str | None = "Balanced",
        thread_count: int = 1,
        random_seed: int = 0,
    ) -> None:
        self.iterations = iterations
        self.depth = depth
        self.learning_rate = learning_rate
        self.auto_class_weights = auto_class_weights
        self.thread_count = thread_count
        self.random_seed = random_seed

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from catboost import CatBoostClassifier

        self.model_ = CatBoostClassifier(
            iterations=self.iterations,
            depth=self.depth,
            learning_rate=self.learning_rate,
            auto_class_weights=self.auto_class_weights,
            thread_count=self.thread_count,
            random_seed=self.random_seed,
            verbose=False,
            allow_writing_files=False,
        ).fit(X, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1]

    def feature_importances(self) -> np.ndarray | None:
        """Return CatBoost's PredictionValuesChange importances."""
        return np.asarray(self.model_.get_feature_importance())

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return SHAP values (without the bias column)."""
        from catboost import Pool

        shap = self.model_.get_feature_importance(Pool(np.asarray(X, dtype=np.float64)), type="ShapValues")
        return np.asarray(shap)[:, :-1]

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write `model.cbm` (CatBoost's binary format)."""
        self.model_.save_model(str(directory / "model.cbm"), format="cbm")
        return {**self._common_meta(), "files": ["model.cbm"], "format": "cbm"}

    @classmethod
    def load_native(cls, directory: Path, meta: dict[str, Any]) -> BaseDetector:
        """Load `model.cbm`."""
        from catboost import CatBoostClassifier

        det = cls(**meta.get("params", {}))
        det.model_ = CatBoostClassifier()
        det.model_.load_model(str(directory / "model.cbm"), format="cbm")
        det._restore_common(meta)
        return det


class XGBoostDetector(BaseDetector):
    """XGBClassifier; imbalance: scale_pos_weight = n_benign / n_malicious of the training rows
    (`scale_pos_weight: balanced`, or a number); export XGBoost JSON; explanations: pred_contribs (SHAP)."""

    library: ClassVar[str] = "xgboost"
    contribution_method: ClassVar[str | None] = "XGBoost pred_contribs (SHAP, log-odds)"

    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 6,
        learning_rate: float = 0.1,
        scale_pos_weight: str | float = "balanced",
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.scale_pos_weight = scale_pos_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from xgboost import XGBClassifier

        spw = balance_ratio(y) if self.scale_pos_weight == "balanced" else float(self.scale_pos_weight)
        self.model_ = XGBClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            scale_pos_weight=spw,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            tree_method="hist",
            eval_metric="logloss",
        ).fit(X, y)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)[:, 1]

    def feature_importances(self) -> np.ndarray | None:
        """Return XGBoost's gain-based importances."""
        return np.asarray(self.model_.feature_importances_)

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return SHAP contributions (without the bias column)."""
        from xgboost import DMatrix

        contribs = self.model_.get_booster().predict(DMatrix(np.asarray(X, dtype=np.float64)), pred_contribs=True)
        return np.asarray(contribs)[:, :-1]

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write `model.json` (XGBoost's JSON model format, which `models.tree_ensemble` scores without XGBoost)."""
        self.model_.save_model(str(directory / "model.json"))
        return {**self._common_meta(), "files": ["model.json"], "format": "json"}

    @classmethod
    def load_native(cls, directory: Path, meta: dict[str, Any]) -> BaseDetector:
        """Load the model file `save_native` listed (`model.json`, or `model.ubj` from older exports)."""
        from xgboost import XGBClassifier

        name = (meta.get("files") or ["model.ubj"])[0]
        if name not in ("model.json", "model.ubj"):
            raise ValueError(f"unexpected XGBoost model file {name!r}")
        det = cls(**meta.get("params", {}))
        det.model_ = XGBClassifier()
        det.model_.load_model(str(directory / name))
        det._restore_common(meta)
        return det


class LightGBMDetector(BaseDetector):
    """LightGBM gradient boosting; imbalance: class_weight='balanced'; export `.txt`; explanations: pred_contrib."""

    library: ClassVar[str] = "lightgbm"
    contribution_method: ClassVar[str | None] = "LightGBM pred_contrib (SHAP, log-odds)"

    def __init__(
        self,
        n_estimators: int = 300,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_child_samples: int = 5,
        class_weight: str | None = "balanced",
        n_jobs: int = 1,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from lightgbm import LGBMClassifier

        clf = LGBMClassifier(
            n_estimators=self.n_estimators,
            num_leaves=self.num_leaves,
            learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=-1,
        ).fit(X, y)
        self.booster_ = clf.booster_

    def _score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.predict(X))

    def feature_importances(self) -> np.ndarray | None:
        """Return LightGBM's gain importances."""
        return np.asarray(self.booster_.feature_importance(importance_type="gain"), dtype=np.float64)

    def contributions(self, X: Any) -> np.ndarray | None:
        """Return SHAP contributions (without the bias column)."""
        return np.asarray(self.booster_.predict(np.asarray(X, dtype=np.float64), pred_contrib=True))[:, :-1]

    def save_native(self, directory: Path) -> dict[str, Any]:
        """Write `model.txt` (LightGBM's text model format)."""
        self.booster_.save_model(str(directory / "model.txt"))
        return {**self._common_meta(), "files": ["model.txt"], "format": "lightgbm-text"}

    @classmethod
    def load_native(cls, directory: Path, meta: dict[str, Any]) -> BaseDetector:
        """Load `model.txt`."""
        from lightgbm import Booster

        det = cls(**meta.get("params", {}))
        det.booster_ = Booster(model_file=str(directory / "model.txt"))
        det._restore_common(meta)
        return det
