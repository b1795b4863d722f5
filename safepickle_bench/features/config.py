"""Typed view of a `conf/features/*.yaml` option: which groups, and how extraction runs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.features.extraction import extract
from safepickle_bench.features.registry import resolve_groups


@dataclass(frozen=True)
class FeatureConfig:
    """The feature set of an experiment and the extraction settings."""

    name: str = "all"
    groups: tuple[str, ...] = field(default_factory=lambda: resolve_groups(None))
    n_jobs: int = -1
    cache: bool = True
    cache_dir: str | None = None
    backend: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FeatureConfig:
        """Build a config from a mapping (e.g. a Hydra `features` node), validating the group names."""
        values = dict(values or {})
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        groups = known.get("groups")
        known["groups"] = resolve_groups(list(groups) if groups is not None and not isinstance(groups, str) else groups)
        return cls(**known)

    def extract(self, paths: Iterable[str | os.PathLike[str]], limits: Limits | None = None,
                progress: bool | None = None) -> pd.DataFrame:
        """Extract this config's feature groups for `paths`."""
        return extract(paths, groups=self.groups, n_jobs=self.n_jobs, cache=self.cache, limits=limits,
                       backend=self.backend, cache_dir=self.cache_dir, progress=progress)
