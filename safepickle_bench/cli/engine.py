"""The scan engine behind `scan`: items (files or archive members) in, one verdict per item out, in input order.

The detector is loaded once. Items are analysed (bytes only, nothing is unpickled) and featurised in chunks:
in this process for a handful of items, in a pool of worker processes (`jobs`, default one per core) for
more, or on an existing Dask cluster (`backend="dask"`, `address="tcp://HOST:8786"`); the same function
`analyse_items` runs everywhere. Rows come back in input order and are scored in batches of `batch_size`;
only flagged items are explained (`explain="all"` explains every item, `"none"` none), and a flagged item
carries the analyzer's reasons (the callables it names, where). A file that cannot be read, a worker that
dies and a chunk that overruns its time budget all become `error` verdicts: the scan goes on.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

EXPLAIN_MODES = ("flagged", "all", "none")
BACKENDS = ("local", "dask")
CHUNK_SIZE = 16
"""Items per worker task: small enough to balance two workers, large enough to amortise the round trip."""
POOL_MIN_ITEMS = 256
"""Fewer items than this are analysed in this process: on a few hundred small pickles (the wild corpus: 167
files in about 0.2 s) starting workers and shipping rows back costs as much as it saves."""
ITEM_TIMEOUT = 120.0
"""Seconds an item may take in a worker (the analyzer's own budget is `Limits.max_seconds`, 30 s)."""
TOP_FEATURES = 5


@dataclass(frozen=True)
class ScanItem:
    """One thing to scan: a file on disk (`path`) or the bytes of an archive member (`data`)."""

    display: str
    path: Path | None = None
    data: bytes | None = None


@dataclass
class Verdict:
    """The engine's answer for one item."""

    display: str
    verdict: str
    """`malicious`, `clean` or `error`."""
    score: float | None
    """P(malicious) from the detector; None on error."""
    threshold: float
    reasons: list[dict[str, Any]]
    """The analyzer's reasons (kind, global, category, opcode, offset, location) for a flagged item."""
    top_features: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class ItemResult:
    """What a worker sends back for one item: its feature row and analyzer reasons, or the error."""

    row: np.ndarray | None
    reasons: list[dict[str, Any]]
    error: str | None = None


def _analyse_one(item: ScanItem, groups: tuple[str, ...], limits: Any) -> ItemResult:  # noqa: ANN401
    """Analyse and featurise one item; any failure is an error result."""
    from safepickle_bench.analysis import analyze_bytes, analyze_path
    from safepickle_bench.features import featurize_array
    from safepickle_bench.models.explain import flagged_reasons

    try:
        if item.data is not None:
            analysis = analyze_bytes(item.data, item.display, limits, compute_sha256=False)
        elif item.path is not None:
            analysis = analyze_path(item.path, limits, compute_sha256=False)
        else:
            return ItemResult(None, [], "scan item has neither a path nor data")
        if analysis.error:
            return ItemResult(None, [], analysis.error)
        row, _ = featurize_array(analysis, groups)
        return ItemResult(row, flagged_reasons(analysis))
    except Exception as exc:  # a hostile item is an error verdict, never a lost scan
        return ItemResult(None, [], f"{type(exc).__name__}: {exc}")


def analyse_items(items: Sequence[ScanItem], groups: Sequence[str], limits: dict[str, Any] | None) -> list[ItemResult]:
    """Analyse and featurise a chunk of items (the task a worker process or a Dask worker runs)."""
    from safepickle_bench.analysis.limits import Limits

    bounds = Limits.from_mapping(limits)
    groups = tuple(groups)
    out = []
    collecting = gc.isenabled()
    for item in items:
        # An analysis builds many short-lived containers that die by reference counting: a cyclic
        # collection in the middle would only scan them, so it waits until the item is done.
        gc.disable()
        try:
            out.append(_analyse_one(item, groups, bounds))
        finally:
            if collecting:
                gc.enable()
    return out


Task = Callable[[Sequence[ScanItem]], list[ItemResult]]
Chunks = Iterator[list[ScanItem]]


def _error_results(chunk: Sequence[ScanItem], message: str) -> list[ItemResult]:
    """Return one error result per item of a chunk."""
    return [ItemResult(None, [], message) for _ in chunk]


def _in_process(chunks: Chunks, task: Task) -> Iterator[tuple[list[ScanItem], list[ItemResult]]]:
    """Run every chunk here, in order."""
    for chunk in chunks:
        yield chunk, task(chunk)


class _ProcessPool:
    """Chunks on a pool of worker processes, results in input order.

    Workers are forked where the platform allows it: they start in milliseconds with the analyzer already
    imported, where a spawned interpreter would spend most of a second importing it again. A chunk that
    overruns `len(chunk) * item_timeout`, or whose worker dies, is retried one item per task so that only the
    guilty item becomes an error; the workers are killed and the other chunks resubmitted."""

    def __init__(self, jobs: int, item_timeout: float | None) -> None:
        self.jobs = jobs
        self.item_timeout = item_timeout
        self._pool: Any = None

    def _executor(self) -> Any:  # noqa: ANN401 - a concurrent.futures executor
        """Return the running pool, starting one if needed."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            import safepickle_bench.analysis.analyzer
            import safepickle_bench.features.registry
            import safepickle_bench.models.explain  # noqa: F401 - imported once here, inherited by forked workers

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context(method))
        return self._pool

    def _restart(self) -> Any:  # noqa: ANN401 - a concurrent.futures executor
        """Kill every worker (one may be stuck on a hostile item) and return a fresh pool."""
        pool, self._pool = self._pool, None
        if pool is not None:
            # concurrent.futures has no public call that stops a running task: kill its worker processes.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
        return self._executor()

    def close(self) -> None:
        """Stop the workers (no idle process outlives the scan)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _budget(self, n: int) -> float | None:
        return None if self.item_timeout is None else self.item_timeout * max(n, 1)

    def _one_by_one(self, chunk: list[ScanItem], task: Task) -> list[ItemResult]:
        """Run each item of a failed chunk alone; an item that overruns or kills its worker is an error."""
        from concurrent.futures import TimeoutError as FutureTimeout

        out = []
        for item in chunk:
            future = self._executor().submit(task, [item])
            try:
                out += future.result(timeout=self._budget(1))
            except FutureTimeout:
                self._restart()
                out.append(ItemResult(None, [], f"timed out after {self.item_timeout:g} s in a scan worker"))
            except Exception as exc:  # the worker died on this item (crash, memory)
                self._restart()
                out.append(ItemResult(None, [], f"scan worker failed: {type(exc).__name__}: {exc}"))
        return out

    def run(self, chunks: Chunks, task: Task) -> Iterator[tuple[list[ScanItem], list[ItemResult]]]:
        """Yield (chunk, results) in input order, keeping about two chunks per worker in flight."""
        window = 2 * self.jobs
        pending: deque[tuple[list[ScanItem], Any]] = deque()
        executor = self._executor()
        try:
            for chunk in itertools.islice(chunks, window):
                pending.append((chunk, executor.submit(task, chunk)))
            while pending:
                chunk, future = pending.popleft()
                try:
                    results = future.result(timeout=self._budget(len(chunk)))
                except Exception:  # overran its budget (a time-out), or its worker died
                    future.cancel()
                    self._restart()
                    results = self._one_by_one(chunk, task)
                    executor = self._executor()
                    pending = deque((c, executor.submit(task, c)) for c, _ in pending)
                yield chunk, results
                for nxt in itertools.islice(chunks, 1):
                    pending.append((nxt, executor.submit(task, nxt)))
        finally:
            for _, future in pending:
                future.cancel()
            self.close()


class _DaskCluster:
    """Chunks on an existing Dask cluster (`distributed.Client(address)`), results in order."""

    def __init__(self, address: str, jobs: int, item_timeout: float | None) -> None:
        self.address = address
        self.window = 2 * max(jobs, 1)
        self.item_timeout = item_timeout

    def run(self, chunks: Chunks, task: Task) -> Iterator[tuple[list[ScanItem], list[ItemResult]]]:
        """Yield (chunk, results) in input order; a chunk that fails or overruns gives error results."""
        from distributed import Client

        with Client(self.address, set_as_default=False) as client:
            workers = len(client.scheduler_info().get("workers", {})) or 1
            window = max(self.window, 2 * workers)
            pending: deque[tuple[list[ScanItem], Any]] = deque()
            for chunk in itertools.islice(chunks, window):
                pending.append((chunk, client.submit(task, chunk, pure=False)))
            while pending:
                chunk, future = pending.popleft()
                budget = None if self.item_timeout is None else self.item_timeout * max(len(chunk), 1)
                try:
                    results = future.result(timeout=budget)
                except Exception as exc:  # a task error, a lost worker, or a time-out
                    future.cancel()
                    results = _error_results(chunk, f"Dask task failed: {type(exc).__name__}: {exc}")
                yield chunk, results
                for nxt in itertools.islice(chunks, 1):
                    pending.append((nxt, client.submit(task, nxt, pure=False)))


def _chunked(items: Iterator[ScanItem], size: int) -> Chunks:
    """Yield lists of up to `size` items."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def default_jobs() -> int:
    """Return the number of worker processes used when `jobs` is not given: one per usable core."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


class _Scorer:
    """Turns in-order item results into verdicts: batched scores, explanations for the items asked."""

    def __init__(self, detector: Any, explain: str, top_k: int) -> None:  # noqa: ANN401 - a LoadedDetector
        self.detector = detector
        self.explain = explain
        self.top_k = top_k

    def verdicts(self, batch: list[tuple[ScanItem, ItemResult]]) -> list[Verdict]:
        """Score one batch and return its verdicts in order."""
        d = self.detector
        ok = [i for i, (_, r) in enumerate(batch) if r.row is not None]
        X = d.matrix([batch[i][1].row for i in ok])
        scores = d.scores(X)
        flagged = scores >= d.threshold
        explain = {"flagged": flagged, "all": np.ones(len(ok), bool), "none": np.zeros(len(ok), bool)}[self.explain]
        tops = dict(zip(np.flatnonzero(explain).tolist(), d.top_features(X[explain], self.top_k), strict=True))
        out: list[Verdict] = []
        at = {i: k for k, i in enumerate(ok)}
        for i, (item, result) in enumerate(batch):
            k = at.get(i)
            if k is None:
                out.append(Verdict(item.display, "error", None, d.threshold, [], [], result.error or "no result"))
                continue
            bad = bool(flagged[k])
            reasons = result.reasons if bad or self.explain == "all" else []
            out.append(Verdict(item.display, "malicious" if bad else "clean", float(scores[k]), d.threshold,
                               list(reasons), tops.get(k, [])))
        return out


def scan_items(
    items: Iterable[ScanItem],
    *,
    model_dir: Path | None = None,
    jobs: int | None = None,
    backend: str = "local",
    address: str | None = None,
    explain: str = "flagged",
    batch_size: int = 256,
    top_k: int = TOP_FEATURES,
    item_timeout: float | None = ITEM_TIMEOUT,
    on_warning: Callable[[str], None] | None = None,
) -> Iterator[Verdict]:
    """Scan items with a detector (`model_dir`, default the shipped one) and yield one verdict each, in order.

    Raises ValueError for a bad argument and the loader's error when the detector cannot be loaded; per-item
    failures are `error` verdicts. `on_warning` receives the detector's warnings (default: printed on stderr)."""
    if explain not in EXPLAIN_MODES:
        raise ValueError(f"explain must be one of {EXPLAIN_MODES}, got {explain!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "dask" and not address:
        raise ValueError("backend='dask' needs the scheduler address, e.g. tcp://HOST:8786")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    from functools import partial

    from safepickle_bench.models.detector import load_detector

    detector = load_detector(model_dir)
    for message in detector.warnings:
        (on_warning or _print_warning)(message)
    return _scan(items, jobs, backend, address, batch_size, item_timeout,
                 _Scorer(detector, explain, top_k),
                 partial(analyse_items, groups=tuple(detector.feature_groups), limits=detector.meta.get("limits")))


def _scan(items: Iterable[ScanItem], jobs: int | None, backend: str, address: str | None, batch_size: int,
          item_timeout: float | None, scorer: _Scorer, task: Task) -> Iterator[Verdict]:
    """Run the chunks on the chosen backend and yield verdicts batch by batch."""
    n_jobs = default_jobs() if jobs is None or jobs < 1 else int(jobs)
    it = iter(items)
    head = list(itertools.islice(it, POOL_MIN_ITEMS))
    rest = itertools.chain(head, it)
    if backend == "dask":
        results = _DaskCluster(str(address), n_jobs, item_timeout).run(_chunked(rest, CHUNK_SIZE), task)
    elif n_jobs > 1 and len(head) >= POOL_MIN_ITEMS:
        results = _ProcessPool(n_jobs, item_timeout).run(_chunked(rest, CHUNK_SIZE), task)
    else:
        results = _in_process(_chunked(rest, min(batch_size, 64)), task)
    batch: list[tuple[ScanItem, ItemResult]] = []
    for chunk, chunk_results in results:
        if len(chunk_results) != len(chunk):
            chunk_results = _error_results(chunk, "a worker returned the wrong number of results")
        batch.extend(zip(chunk, chunk_results, strict=True))
        if len(batch) >= batch_size:
            yield from scorer.verdicts(batch)
            batch = []
    if batch:
        yield from scorer.verdicts(batch)
