"""Per-file feature cache: rows keyed by sha256 in parquet shards under <data>/feature_cache/."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from safepickle_bench import paths
from safepickle_bench.analysis.limits import Limits

SHA_COLUMN = "sha256"
MAX_SHARDS = 16
"""Shards of one cache key beyond which a writer merges them into one file."""


@dataclass
class CacheStats:
    """Counters of what extract() did in this process (for tests and progress reports)."""

    parsed: int = 0
    """Files handed to the analyzer (cache misses, or every file when the cache is off)."""
    cache_hits: int = 0
    hashed: int = 0
    written: int = 0

    def reset(self) -> None:
        """Set every counter back to 0."""
        self.parsed = self.cache_hits = self.hashed = self.written = 0


STATS = CacheStats()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str | None:
    """Return the sha256 hex digest of a file read in chunks, or None when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def cache_key(feature_version: int | str, limits: Limits | None, analyzer_version: str) -> str:
    """Return the short key of a cache: feature version, analyzer version and the limits in force."""
    payload = json.dumps(
        {"features": feature_version, "analyzer": analyzer_version, "limits": (limits or Limits()).to_dict()},
        sort_keys=True,
    )
    return f"v{feature_version}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


class FeatureCache:
    """Rows of every group for files already analysed, read from and appended to parquet shards.

    Each writer adds its own shard (temp file, then os.replace), so concurrent writers never clobber each
    other; past MAX_SHARDS a writer merges the shards it read into one and removes only those."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None, key: str, columns: list[str]) -> None:
        """Open (lazily) the cache of `key` in `cache_dir` for rows with `columns`."""
        self.dir = Path(cache_dir) if cache_dir is not None else paths.feature_cache_dir()
        self.key = key
        self.columns = list(columns)
        self._shards: list[Path] = []

    def _pattern(self) -> str:
        """Return the glob of this key's shards."""
        return f"features-{self.key}-*.parquet"

    def load(self) -> dict[str, np.ndarray]:
        """Return {sha256: row} of every cached file (rows in `columns` order); unreadable shards are skipped."""
        rows: dict[str, np.ndarray] = {}
        self._shards = sorted(self.dir.glob(self._pattern())) if self.dir.is_dir() else []
        for shard in self._shards:
            try:
                df = pd.read_parquet(shard)
            except Exception:  # a torn or foreign file is ignored, never fatal
                continue
            if SHA_COLUMN not in df.columns or not set(self.columns) <= set(df.columns):
                continue
            values = df[self.columns].to_numpy(dtype=np.float64)
            for sha, row in zip(df[SHA_COLUMN].tolist(), values, strict=True):
                rows[sha] = row
        return rows

    def _write(self, frame: pd.DataFrame, name: str) -> Path:
        """Write `frame` atomically as shard `name` and return its path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / name
        tmp = self.dir / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        return final

    def add(self, shas: Iterable[str], rows: np.ndarray) -> None:
        """Append rows for `shas` as a new shard, then merge shards when there are too many."""
        shas = list(shas)
        if not shas:
            return
        frame = pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(len(shas), len(self.columns)),
                             columns=self.columns)
        frame.insert(0, SHA_COLUMN, shas)
        shard = self._write(frame, f"features-{self.key}-{uuid.uuid4().hex}.parquet")
        STATS.written += len(shas)
        self._shards.append(shard)
        if len(self._shards) > MAX_SHARDS:
            self._compact()

    def _compact(self) -> None:
        """Merge the shards this cache has seen into one, then delete them (other writers' shards stay)."""
        frames = []
        merged_from = []
        for shard in self._shards:
            try:
                frames.append(pd.read_parquet(shard))
                merged_from.append(shard)
            except Exception:  # vanished (another process merged it) or torn: leave it alone
                continue
        if not frames:
            return
        merged = pd.concat(frames, ignore_index=True).drop_duplicates(SHA_COLUMN, keep="last")
        out = self._write(merged, f"features-{self.key}-{uuid.uuid4().hex}.parquet")
        for shard in merged_from:
            shard.unlink(missing_ok=True)
        self._shards = [out]
