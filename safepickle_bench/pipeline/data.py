"""A dataset ready for learning: its manifest (built on first use), feature matrix, labels and split groups."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.config import BackendConfig, DatasetRef

log = logging.getLogger(__name__)


@dataclass
class LabelledFeatures:
    """Rows of one dataset, aligned: manifest, features, labels, groups."""

    ref: DatasetRef
    manifest: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    manifest_sha256: str

    @property
    def columns(self) -> list[str]:
        """Return the feature column names."""
        return list(self.X.columns)

    @property
    def paths(self) -> list[str]:
        """Return the absolute file paths, in row order."""
        return list(self.manifest["abspath"].astype(str))


def manifest_hash(manifest: pd.DataFrame) -> str:
    """Return a sha256 over the sorted (path, sha256, label) rows: same files and labels, same hash."""
    cols = [c for c in ("path", "sha256", "label") if c in manifest.columns]
    lines = sorted("\t".join(str(v) for v in row) for row in manifest[cols].itertuples(index=False))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def load_labelled_features(
    ref: DatasetRef,
    data_dir: Path,
    features_cfg: Any,
    backend: BackendConfig,
    limits: Limits | None = None,
) -> LabelledFeatures:
    """Build the dataset when missing, read its manifest and extract the configured feature groups."""
    from safepickle_bench.datasets import ensure_dataset, read_manifest
    from safepickle_bench.features import FeatureConfig
    from safepickle_bench.paths import feature_cache_dir

    ensure_dataset(ref.name, ref.size, data_dir, seed=ref.seed)
    manifest = read_manifest(ref.name, ref.size, data_dir).reset_index(drop=True)
    if manifest.empty:
        raise ValueError(f"dataset {ref.name}/{ref.size} has no files")
    fcfg = FeatureConfig.from_mapping(features_cfg)
    cache_dir = fcfg.cache_dir or str(feature_cache_dir(data_dir))
    paths = manifest["abspath"].astype(str).tolist()
    X = FeatureConfig(
        name=fcfg.name, groups=fcfg.groups, n_jobs=backend.n_jobs, cache=fcfg.cache,
        cache_dir=cache_dir, backend=backend.name,
    ).extract(paths, limits=limits, progress=False)
    X = X.reindex(paths)
    if X.isna().all(axis=1).any():
        raise ValueError("feature extraction lost rows: some manifest files have no feature row")
    groups_col = manifest["group"] if "group" in manifest.columns else manifest["path"]
    log.info("dataset %s/%s: %d files (%d malicious), %d features",
             ref.name, ref.size, len(manifest), int(manifest["label"].sum()), X.shape[1])
    return LabelledFeatures(
        ref=ref,
        manifest=manifest,
        X=X,
        y=manifest["label"].astype(int).to_numpy(),
        groups=groups_col.astype(str).to_numpy(),
        manifest_sha256=manifest_hash(manifest),
    )
