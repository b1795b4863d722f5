"""The feature groups, their columns in fixed order, and the per-file featurizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features import calls, imports, ngrams, opcode_frequency, strings, structure

FEATURE_VERSION = 6
"""Bump when any column's definition, the taxonomy, the call allow-list or the column set of the groups changes
(part of the feature cache key and of every exported model's metadata)."""


@dataclass(frozen=True)
class FeatureGroup:
    """One selectable group: its name, columns in order, descriptions and per-file function."""

    name: str
    columns: tuple[str, ...]
    descriptions: dict[str, str]
    compute: Callable[[Analysis], Sequence[float] | np.ndarray]


def _group(module: ModuleType) -> FeatureGroup:
    """Wrap a group module as a FeatureGroup."""
    return FeatureGroup(module.NAME, tuple(module.COLUMNS), dict(module.DESCRIPTIONS), module.compute)


REGISTRY: dict[str, FeatureGroup] = {
    g.name: g for g in map(_group, (opcode_frequency, structure, imports, strings, ngrams, calls))
}
GROUPS: tuple[str, ...] = ("opcodes", "structure", "imports", "strings", "ngrams", "calls")
"""Every group, in the canonical column order (None or "all" selects them all)."""
if set(REGISTRY) != set(GROUPS):  # pragma: no cover - a registered group must be placed in the order
    raise ImportError("feature groups changed: update GROUPS")
ERROR_COLUMN = "structure__error"


def resolve_groups(groups: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """Return the requested groups in canonical order; None or "all" means every group of `all`."""
    if groups is None:
        return GROUPS
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",") if g.strip()]
    wanted = set()
    for g in groups:
        if g == "all":
            wanted.update(GROUPS)
        elif g in REGISTRY:
            wanted.add(g)
        else:
            raise ValueError(f"unknown feature group {g!r}; known: {', '.join(GROUPS)}")
    if not wanted:
        raise ValueError("no feature group selected")
    return tuple(g for g in GROUPS if g in wanted)


@lru_cache(maxsize=64)
def _columns_of(resolved: tuple[str, ...]) -> tuple[str, ...]:
    """Return the columns of already-resolved groups (memoised for single-file scanning)."""
    return tuple(c for g in resolved for c in REGISTRY[g].columns)


def feature_columns(groups: str | Iterable[str] | None = None) -> list[str]:
    """Return the column names of the selected groups, in the order extract() produces them."""
    return list(_columns_of(resolve_groups(groups)))


def feature_groups(groups: str | Iterable[str] | None = None) -> dict[str, list[str]]:
    """Return {group: [columns]} for the selected groups."""
    return {g: list(REGISTRY[g].columns) for g in resolve_groups(groups)}


def column_descriptions() -> dict[str, str]:
    """Return a one-line description of every column of every group."""
    return {c: REGISTRY[g].descriptions[c] for g in GROUPS for c in REGISTRY[g].columns}


@lru_cache(maxsize=64)
def _resolve_hashable(groups: str | tuple[str, ...] | frozenset[str] | None) -> tuple[str, ...]:
    """Return resolve_groups(groups) for a hashable selection (memoised: featurize_array runs once per file)."""
    return resolve_groups(groups)


def _resolve(groups: str | Iterable[str] | None) -> tuple[str, ...]:
    """Return resolve_groups(groups), memoised when the selection is hashable."""
    try:
        return _resolve_hashable(groups)  # type: ignore[arg-type]
    except TypeError:  # a list or another unhashable selection
        return resolve_groups(groups)


@lru_cache(maxsize=64)
def _layout(resolved: tuple[str, ...]) -> tuple[tuple[tuple[Callable[[Analysis], Any], int, int], ...], int, int]:
    """Return each group's (compute, first column, end column), the row width and the error column (-1: none)."""
    spans = []
    width = 0
    error_at = -1
    for g in resolved:
        group = REGISTRY[g]
        if g == "structure":
            error_at = width + group.columns.index(ERROR_COLUMN)
        spans.append((group.compute, width, width + len(group.columns)))
        width += len(group.columns)
    return tuple(spans), width, error_at


def featurize_array(analysis: Analysis, groups: str | Iterable[str] | None = None) -> tuple[np.ndarray, bool]:
    """Return one row (float64, columns of feature_columns(groups)) and whether every group succeeded.

    A group that raises on a hostile analysis gives zeros and sets `structure__error` (when selected)."""
    spans, width, error_at = _layout(_resolve(groups))
    row = np.zeros(width, dtype=np.float64)
    ok = True
    for compute, a, b in spans:
        try:
            values = compute(analysis)
            if len(values) != b - a:
                raise ValueError(f"a group returned {len(values)} values for {b - a} columns")
            row[a:b] = values  # converted to float64 as np.asarray would
        except Exception:  # a per-file failure is a flagged row, never a crash
            ok = False
            row[a:b] = 0.0
    if (not ok or analysis.error) and error_at >= 0:
        row[error_at] = 1.0
    return row, ok


def featurize(analysis: Analysis, groups: str | Iterable[str] | None = None) -> dict[str, float]:
    """Return the features of one analysed file as {column: value} (single-file scanning)."""
    row, _ = featurize_array(analysis, groups)
    return dict(zip(_columns_of(_resolve(groups)), row.tolist(), strict=True))
