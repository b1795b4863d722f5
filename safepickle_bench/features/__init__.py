"""Features: turn an `Analysis` into one fixed-length numeric row with named columns in named groups.

Groups (`GROUPS`, canonical column order): `opcodes` (the paper's normalised opcode-frequency vector),
`structure`, `imports` (taxonomy in import_taxonomy.yaml), `strings`, `ngrams`. Columns are named
`<group>__<name>`; COLUMNS.md lists and describes every one."""

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

__all__ = [
    "FEATURE_VERSION",
    "GROUPS",
    "STATS",
    "FeatureConfig",
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
