"""Datasets: benign carriers, the label oracle, manifests and the builds that combine them with `craft`.

Public API: `DATASETS`, `ensure_dataset`, `build_dataset`, `read_manifest` (heavy libraries load lazily).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from safepickle_bench.datasets.manifest import MANIFEST_NAME, load_manifest

DATASETS: tuple[str, ...] = ("hf", "pickleball_ood", "hide_and_seek", "joblib", "wild")
"""Datasets every install can build; `pickleball` (the real artifact) needs a download and `dataset.root`."""
NEEDS_SOURCE: tuple[str, ...] = ("pickleball", "hf_hub")
"""Datasets built from user-supplied input: `pickleball` (artifact folder), `hf_hub` (a list of Hub files)."""
PROTOCOL_DATASETS: tuple[str, ...] = ("generalization",)
"""Generated datasets of the generalisation protocols (pipeline.generalization), not of the reproduction tables."""


def manifest_path(name: str, size: str, data_dir: Path) -> Path:
    """Where the manifest of dataset `name` at `size` lives."""
    return Path(data_dir) / name / size / MANIFEST_NAME


def build_dataset(name: str, size: str, data_dir: Path, seed: int = 0, n_jobs: int | None = None) -> Path:
    """Build (or rebuild) a dataset and return its manifest path."""
    from safepickle_bench.datasets.build import build_dataset as _build

    if name not in (*DATASETS, *NEEDS_SOURCE, *PROTOCOL_DATASETS):
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return _build(name, size, Path(data_dir), seed=seed, n_jobs=n_jobs)


def ensure_dataset(name: str, size: str, data_dir: Path, seed: int = 0) -> Path:
    """Return the manifest path of a dataset, building it first when it is missing."""
    path = manifest_path(name, size, data_dir)
    return path if path.is_file() else build_dataset(name, size, data_dir, seed=seed)


def read_manifest(name: str, size: str, data_dir: Path) -> pd.DataFrame:
    """The manifest of a built dataset plus an `abspath` column (wild paths resolve against its corpus root)."""
    path = manifest_path(name, size, data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no manifest at {path}: build it with `task=build_data dataset={name} dataset.size={size}`")
    frame, meta = load_manifest(path)
    root = Path(meta["root"]) if meta.get("root") else path.parent
    frame["abspath"] = [str((root / rel).resolve()) for rel in frame["path"]]
    return frame


__all__ = ["DATASETS", "NEEDS_SOURCE", "PROTOCOL_DATASETS", "build_dataset", "ensure_dataset", "manifest_path", "read_manifest"]
