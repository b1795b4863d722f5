"""Features: turn an `Analysis` into one fixed-length numeric row with named columns in named groups.

Groups of `all` (`GROUPS`, canonical column order): `opcodes` (the paper's normalised opcode-frequency vector),
`structure`, `imports` (taxonomy in import_taxonomy.yaml), `strings`, `ngrams`, `calls` (what each call does,
never which name it has; allow-list in call_allowlist.yaml). Columns are named
`<group>__<name>`; COLUMNS.md lists and describes every one.

Names are imported on first use: scoring one file needs the featurizer, not the corpus extraction (pandas,
joblib, the progress bar) nor the cache."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from safepickle_bench.features.cache import STATS, file_sha256
    from safepickle_bench.features.config import FeatureConfig
    from safepickle_bench.features.extraction import extract
    from safepickle_bench.features.imports import dangerous_findings
    from safepickle_bench.features.registry import (
        FEATURE_VERSION,
        GROUPS,
        column_descriptions,
        feature_columns,
        feature_groups,
        featurize,
        featurize_array,
        resolve_groups,
    )
    from safepickle_bench.features.taxonomy import Taxonomy, load_taxonomy

_HOMES: dict[str, str] = {
    "STATS": "cache",
    "file_sha256": "cache",
    "FeatureConfig": "config",
    "extract": "extraction",
    "dangerous_findings": "imports",
    "FEATURE_VERSION": "registry",
    "GROUPS": "registry",
    "column_descriptions": "registry",
    "feature_columns": "registry",
    "feature_groups": "registry",
    "featurize": "registry",
    "featurize_array": "registry",
    "resolve_groups": "registry",
    "Taxonomy": "taxonomy",
    "load_taxonomy": "taxonomy",
}
"""Public name -> the submodule that defines it."""

__all__ = [
    "FEATURE_VERSION",
    "FeatureConfig",
    "GROUPS",
    "STATS",
    "Taxonomy",
    "column_descriptions",
    "dangerous_findings",
    "extract",
    "feature_columns",
    "feature_groups",
    "featurize",
    "featurize_array",
    "file_sha256",
    "load_taxonomy",
    "resolve_groups",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attribute of any type
    """Import the submodule defining `name` on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
