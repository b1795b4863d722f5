"""Gradient-boosting models (XGBoost, LightGBM, CatBoost sklearn wrappers) fitted on random data and pickled."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from safepickle_bench.datasets.carriers import CarrierFile, Producer
from safepickle_bench.datasets.carriers.sklearn_models import random_xy


def fitted_booster(library: str, rng: np.random.Generator) -> Any:
    """Fit a tiny XGBoost/LightGBM/CatBoost sklearn-wrapper model, single-threaded and seeded."""
    seed = int(rng.integers(2**31))
    classification = rng.random() < 0.7
    x, y = random_xy(rng, classification)
    n_estimators = int(rng.integers(2, 10))
    if library == "xgboost":
        import xgboost

        cls = xgboost.XGBClassifier if classification else xgboost.XGBRegressor
        model = cls(n_estimators=n_estimators, max_depth=3, n_jobs=1, random_state=seed)
    elif library == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classification else lightgbm.LGBMRegressor
        model = cls(n_estimators=n_estimators, num_leaves=7, n_jobs=1, random_state=seed, verbose=-1, deterministic=True)
    else:
        import catboost

        cls = catboost.CatBoostClassifier if classification else catboost.CatBoostRegressor
        model = cls(iterations=n_estimators, depth=3, thread_count=1, random_seed=seed, verbose=False, allow_writing_files=False)
    model.fit(x, y)
    if library == "catboost":  # CatBoost stamps the wall clock and a random GUID into the model: pin both
        metadata = model.get_metadata()
        day = int(rng.integers(1, 28))
        metadata["train_finish_time"] = f"2024-{int(rng.integers(1, 13)):02d}-{day:02d}T{int(rng.integers(24)):02d}:00:00Z"
        metadata["model_guid"] = "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, size=4))
    return model


def _boosting_producer(library: str) -> Producer:
    def make(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
        model = fitted_booster(library, rng)
        name = str(rng.choice(["model.pkl", f"{library}_model.pkl", "model.joblib"]))
        if name.endswith(".joblib"):
            joblib.dump(model, out_dir / name)
            return [CarrierFile(name, "estimator", "joblib", "joblib")]
        (out_dir / name).write_bytes(pickle.dumps(model, protocol=int(rng.integers(2, 6))))
        return [CarrierFile(name, "estimator", "pickle", "pickle")]

    make.__doc__ = f"Pickle or joblib-dump a fitted {library} sklearn-wrapper model."
    return Producer(f"{library}.sklearn", make, weight=1.0)


PRODUCERS = [_boosting_producer(lib) for lib in ("xgboost", "lightgbm", "catboost")]
