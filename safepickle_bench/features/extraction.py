"""Corpus-scale feature extraction: hashing, cache look-up, parallel analysis, one row per path."""

from __future__ import annotations

import gc
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features.cache import STATS, FeatureCache, cache_key, file_sha256
from safepickle_bench.features.call_allowlist import ALLOWLIST_PATH
from safepickle_bench.features.registry import (
    FEATURE_VERSION,
    GROUPS,
    feature_columns,
    feature_groups,
    featurize_array,
    resolve_groups,
)
from safepickle_bench.features.taxonomy import TAXONOMY_PATH

Analyzer = Callable[[str, Limits | None], Analysis]
FLUSH_ROWS = 2048
"""New rows written to the cache at least this often during a long extraction."""
MAX_CHUNK = 256
"""Most files one worker task handles (keeps the progress bar moving and memory flat)."""


@lru_cache(maxsize=1)
def _analyzer_version() -> str:
    """Return the analyzer's ANALYZER_VERSION when it declares one, else a digest of its source files, plus a
    digest of the feature modules, the import taxonomy and the call allow-list (all part of the cache key, so a
    changed column definition never serves stale rows, even when FEATURE_VERSION was not bumped)."""
    import safepickle_bench.analysis as analysis_pkg

    declared = getattr(analysis_pkg, "ANALYZER_VERSION", None)
    h = hashlib.sha256(TAXONOMY_PATH.read_bytes())
    h.update(ALLOWLIST_PATH.read_bytes())
    for src in sorted(Path(__file__).parent.glob("*.py")):  # the feature groups' own code
        h.update(src.name.encode())
        h.update(src.read_bytes())
    if declared is None:
        folder = Path(analysis_pkg.__file__).parent
        for src in sorted(folder.rglob("*.py")):  # every module of the analyzer, subpackages included
            h.update(src.relative_to(folder).as_posix().encode())
            h.update(src.read_bytes())
    return f"{declared or 'src'}-{h.hexdigest()[:16]}"


def _default_analyzer(path: str, limits: Limits | None) -> Analysis:
    """Analyse one file with the package's static analyzer (no sha256: the cache hashes files itself)."""
    from safepickle_bench.analysis import analyze_path

    return analyze_path(path, limits=limits, compute_sha256=False)


def _analyse_safely(analyzer: Analyzer, path: str, limits: Limits | None) -> Analysis:
    """Return the analysis of `path`; an analyzer exception becomes an Analysis with `error` set."""
    try:
        return analyzer(path, limits)
    except Exception as exc:  # the analyzer must not crash, but a lost row is worse than a flagged one
        return Analysis(path=path, size=0, sha256="", error=f"analyzer raised {type(exc).__name__}: {exc}")


def _timed_out(analysis: Analysis) -> bool:
    """Return whether the analysis stopped on its wall-clock budget."""
    return any(a.kind == "limit_time" for a in analysis.all_anomalies())


class gc_paused:  # lower case, as contextlib.suppress: used as `with gc_paused():`
    """Pause the cyclic garbage collector for the duration of one file's analysis and featurization.

    Analysing a file builds thousands of small containers that live until its row is computed and then die by
    reference counting; a collection in between would only scan them. Freed before the pause ends, they leave
    nothing for the collector; cyclic garbage a hostile file may leave is collected after the pause as usual.
    (A class rather than a generator-based context manager: it runs once per file, and costs a fifth.)
    """

    __slots__ = ("_was_on",)

    def __enter__(self) -> None:
        """Disable the collector, remembering whether it was on."""
        self._was_on = gc.isenabled()
        if self._was_on:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        """Enable the collector again if it was on."""
        if self._was_on:
            gc.enable()


def analyze_row(
    path: str, groups: Iterable[str] | None = None, limits: Limits | None = None, analyzer: Analyzer | None = None
) -> tuple[np.ndarray, bool]:
    """Return one file's feature row and whether it may be cached (what `extract` does per file)."""
    with gc_paused():
        analysis = _analyse_safely(analyzer or _default_analyzer, path, limits)
        row, ok = featurize_array(analysis, groups)
        # an unreadable file may become readable, and a time-limit hit depends on the machine's load:
        # neither is a property of the bytes, so neither is cached
        ok = ok and analysis.error is None and not _timed_out(analysis)
        del analysis  # freed by reference counting while the collector is paused: nothing left to scan
    return row, ok


def _featurize_chunk(
    paths: Sequence[str], groups: tuple[str, ...], limits: Limits | None, analyzer: Analyzer | None
) -> tuple[np.ndarray, list[bool]]:
    """Analyse and featurize a chunk of files in a worker; return the rows and which are cacheable."""
    rows = np.zeros((len(paths), len(feature_columns(groups))), dtype=np.float64)
    cacheable: list[bool] = []
    for i, path in enumerate(paths):
        rows[i], ok = analyze_row(path, groups, limits, analyzer)
        cacheable.append(ok)
    return rows, cacheable


def _chunks(n_items: int, n_workers: int) -> list[list[int]]:
    """Split item indices into about four chunks per worker (each at most MAX_CHUNK), strided so that
    runs of big files (a corpus sorted by kind) spread over the workers instead of landing in one chunk."""
    if n_items <= 0:
        return []
    n_chunks = max(math.ceil(n_items / MAX_CHUNK), min(n_items, 4 * max(n_workers, 1)))
    return [list(range(k, n_items, n_chunks)) for k in range(n_chunks)]


def _iter_rows(
    paths: Sequence[str],
    groups: tuple[str, ...],
    limits: Limits | None,
    analyzer: Analyzer | None,
    n_jobs: int,
    backend: str | None,
    progress: bool | None,
) -> Iterator[tuple[list[int], np.ndarray, list[bool]]]:
    """Featurize `paths` (sequentially or through joblib); yield (indices, rows, cacheable) per finished chunk."""
    if not paths:
        return
    with joblib.parallel_config(backend=backend) if backend else nullcontext():
        n_workers = joblib.effective_n_jobs(n_jobs)
        chunks = _chunks(len(paths), n_workers)
        jobs = ([paths[i] for i in chunk] for chunk in chunks)
        if n_workers <= 1 or len(paths) <= 1:
            results: Iterable[tuple[np.ndarray, list[bool]]] = (
                _featurize_chunk(c, groups, limits, analyzer) for c in jobs
            )
        else:
            results = joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
                joblib.delayed(_featurize_chunk)(c, groups, limits, analyzer) for c in jobs
            )
        with tqdm(total=len(paths), desc="features", unit="file", leave=False,
                  disable=None if progress is None else not progress) as bar:
            for chunk, (rows, ok) in zip(chunks, results, strict=True):
                STATS.parsed += len(chunk)
                bar.update(len(chunk))
                yield chunk, rows, ok


def extract(
    paths: Iterable[str | os.PathLike[str]],
    groups: str | Iterable[str] | None = None,
    n_jobs: int = -1,
    cache: bool = True,
    limits: Limits | None = None,
    backend: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    analyzer: Analyzer | None = None,
) -> pd.DataFrame:
    """Return one feature row per path (input order, indexed by path) for the selected groups.

    `n_jobs` workers (-1: one per core) analyse the files through joblib, under `backend` when given
    ('loky', 'dask' with an active distributed Client...). With `cache`, rows are looked up by sha256
    and the selection's feature version in `cache_dir` (default data/feature_cache) and new rows written back; with
    `cache=False` nothing is read or written. A file that cannot be read or analysed still gets a row,
    with `structure__error` set (when `structure` is selected). `analyzer` replaces analyze_path (tests,
    other analyzers). The frame's attrs hold `feature_groups`, `feature_version`, `n_parsed`, `n_cached`."""
    path_strs = [os.fspath(p) for p in paths]
    path_strs = [p if isinstance(p, str) else p.decode() for p in path_strs]
    resolved = resolve_groups(groups)
    columns = feature_columns(resolved)
    n = len(path_strs)
    out = np.zeros((n, len(columns)), dtype=np.float64)
    parsed_before = STATS.parsed
    n_cached = 0

    if cache:
        # every group is cached, so any selection reuses the rows
        all_columns = feature_columns(GROUPS)
        select = np.array([all_columns.index(c) for c in columns], dtype=np.intp)
        store = FeatureCache(cache_dir, cache_key(FEATURE_VERSION, limits, _analyzer_version()), all_columns)
        cached = store.load()
        shas = []
        for p in path_strs:
            shas.append(file_sha256(p))
            STATS.hashed += 1
        todo_by_sha: dict[str, str] = {}
        todo_unhashed: list[int] = []
        for i, sha in enumerate(shas):
            if sha is None:
                todo_unhashed.append(i)
            elif sha in cached:
                out[i] = cached[sha][select]
                n_cached += 1
            else:
                todo_by_sha.setdefault(sha, path_strs[i])
        STATS.cache_hits += n_cached
        todo_shas = list(todo_by_sha)
        todo_paths = [todo_by_sha[h] for h in todo_shas] + [path_strs[i] for i in todo_unhashed]
        k = len(todo_shas)
        targets: list[list[int]] = [[] for _ in todo_shas]
        sha_pos = {h: j for j, h in enumerate(todo_shas)}
        for i, sha in enumerate(shas):
            if sha is not None and sha in sha_pos:
                targets[sha_pos[sha]].append(i)
        targets += [[i] for i in todo_unhashed]
        pending_shas: list[str] = []
        pending_rows: list[np.ndarray] = []
        for chunk, rows, ok in _iter_rows(todo_paths, GROUPS, limits, analyzer, n_jobs, backend, progress):
            for j, row, good in zip(chunk, rows, ok, strict=True):
                out[targets[j]] = row[select]
                if good and j < k:
                    pending_shas.append(todo_shas[j])
                    pending_rows.append(row)
            if len(pending_shas) >= FLUSH_ROWS:  # write as we go: an interrupted run keeps its work
                store.add(pending_shas, np.vstack(pending_rows))
                pending_shas, pending_rows = [], []
        if pending_shas:
            store.add(pending_shas, np.vstack(pending_rows))
    else:
        for chunk, rows, _ in _iter_rows(path_strs, resolved, limits, analyzer, n_jobs, backend, progress):
            out[chunk] = rows

    df = pd.DataFrame(out, index=pd.Index(path_strs, name="path"), columns=columns)
    df.attrs["feature_groups"] = feature_groups(resolved)
    df.attrs["feature_version"] = FEATURE_VERSION
    df.attrs["n_parsed"] = STATS.parsed - parsed_before
    df.attrs["n_cached"] = n_cached
    return df
