"""joblib.dump of sklearn/XGBoost/LightGBM/CatBoost models and numpy-heavy objects at every compression method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from safepickle_bench.datasets.carriers import CarrierFile, Producer
from safepickle_bench.datasets.carriers.boosting import fitted_booster
from safepickle_bench.datasets.carriers.sklearn_models import fitted_estimator

COMPRESSIONS = ("none", "zlib", "gzip", "bz2", "lzma", "xz", "lz4")
_SUFFIX = {"none": "", "zlib": ".z", "gzip": ".gz", "bz2": ".bz2", "lzma": ".lzma", "xz": ".xz", "lz4": ".lz4"}


def numpy_heavy(rng: np.random.Generator) -> dict[str, Any]:
    """A dict holding several numpy arrays (joblib writes each as a wrapped raw buffer between pickle opcodes)."""
    n = int(rng.integers(2, 6))
    arrays = {f"layer_{i}": rng.normal(size=(int(rng.integers(2, 64)), int(rng.integers(2, 32)))) for i in range(n)}
    return {"arrays": arrays, "mean": rng.normal(size=8), "classes": np.arange(int(rng.integers(2, 10))),
            "meta": {"created_by": "train.py", "version": int(rng.integers(1, 5))}}


def dump(obj: Any, path: Path, method: str, level: int) -> None:
    """`joblib.dump` with the given compression; the gzip header's wall-clock mtime is zeroed for determinism."""
    joblib.dump(obj, path, compress=0 if method == "none" else (method, level))
    if method == "gzip":
        data = bytearray(path.read_bytes())
        data[4:8] = b"\x00\x00\x00\x00"  # MTIME: not covered by the CRC, so the stream still reads back
        path.write_bytes(bytes(data))


def make_joblib_dump(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """One joblib file: a random object type at a random compression method and level."""
    source = str(rng.choice(["sklearn", "xgboost", "lightgbm", "catboost", "numpy"], p=[0.35, 0.15, 0.15, 0.1, 0.25]))
    if source == "sklearn":
        kind, obj = fitted_estimator(rng)
    elif source == "numpy":
        kind, obj = "array_dict", numpy_heavy(rng)
    else:
        kind, obj = "estimator", fitted_booster(source, rng)
    method = str(rng.choice(COMPRESSIONS))
    level = int(rng.choice([1, 3, 6, 9]))
    name = f"{source}_model.joblib{_SUFFIX[method]}" if rng.random() < 0.7 else f"model.pkl{_SUFFIX[method]}"
    dump(obj, out_dir / name, method, level)
    return [CarrierFile(name, f"{source}.{kind}", "joblib" if method == "none" else f"joblib_{method}", "joblib")]


PRODUCERS = [Producer("joblib.dump", make_joblib_dump)]
