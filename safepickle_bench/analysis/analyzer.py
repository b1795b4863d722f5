"""Top-level static analyzer: a file's bytes in, an `Analysis` out, without executing any of it."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import mmap
import os
import stat
import time
from pathlib import Path

from safepickle_bench.analysis.containers import ContainerWalker, Region, Searchable
from safepickle_bench.analysis.engine import describe_error
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import Analysis, Anomaly
from safepickle_bench.analysis.streams import read_streams

_PLAIN_REGION_KINDS = frozenset({"", "raw", "pickle"})
"""Region kinds reported by the stream reader that are not a container layout of their own."""


def analyze_bytes(
    data: bytes | bytearray | memoryview,
    name: str,
    limits: Limits | None = None,
    *,
    compute_sha256: bool = True,
) -> Analysis:
    """Analyse an in-memory file named `name` (used as the root of every location).

    With `compute_sha256=False` the digest is not computed and `Analysis.sha256` is left empty.
    """
    start = time.perf_counter()
    buf = bytes(data) if not isinstance(data, bytes) else data
    digest = hashlib.sha256(buf).hexdigest() if compute_sha256 else ""
    analysis = Analysis(path=name, size=len(buf), sha256=digest)
    _analyse_buffer(analysis, buf, name, limits or DEFAULT_LIMITS, start)
    return analysis


def analyze_path(
    path: str | os.PathLike[str], limits: Limits | None = None, *, compute_sha256: bool = True
) -> Analysis:
    """Analyse the file at `path`; a missing or unreadable file gives an Analysis with `error` set.

    The analysis itself reads only the pickle parts of the file (zip entries that hold pickles, not tensor
    data). `compute_sha256=True` also hashes every byte of the file for `Analysis.sha256`, which costs time
    proportional to the whole file; pass False (e.g. when the caller hashes the file itself) to keep the
    cost proportional to the pickles, with `sha256` left empty.
    """
    start = time.perf_counter()
    limits = limits or DEFAULT_LIMITS
    where = os.fspath(path)
    analysis = Analysis(path=where, size=0, sha256="")
    try:
        mode = os.stat(where).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(where)
        if not stat.S_ISREG(mode):  # never opened: a FIFO or device would block or never end
            analysis.error = f"not a regular file: {where}"
            return analysis
        fd = os.open(where, _OPEN_FLAGS)
        try:
            _analyse_descriptor(analysis, fd, _file_name(where), limits, compute_sha256, start)
        finally:
            os.close(fd)
    except IsADirectoryError:
        analysis.error = f"is a directory: {where}"
    except OSError as exc:
        analysis.error = f"cannot read {where}: {exc.strerror or exc}"
    return analysis


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
SMALL_FILE_BYTES = 256 << 10
"""Files up to this size are read whole (one system call); larger ones are mapped, and only the parts the
analysis needs (a zip's central directory and pickle entries, not its tensor data) are ever read."""


def _file_name(where: str) -> str:
    """Return the last component of a path, as `Path(where).name` spells it."""
    name = os.path.basename(where)
    return name if name and name != "." else Path(where).name


def _analyse_descriptor(
    analysis: Analysis, fd: int, name: str, limits: Limits, compute_sha256: bool, start: float
) -> None:
    """Analyse the open regular file `fd` (named `name` in locations) into `analysis`."""
    size = os.fstat(fd).st_size
    analysis.size = size
    if size > limits.max_file_bytes:
        analysis.anomalies.append(
            Anomaly(
                "limit_bytes",
                0,
                name,
                f"file of {size} bytes is over max_file_bytes={limits.max_file_bytes}: not analysed",
            )
        )
        analysis.timings["total"] = time.perf_counter() - start
        return
    if size <= SMALL_FILE_BYTES:
        data = _read_all(fd, size)
        if compute_sha256:
            t_hash = time.perf_counter()
            analysis.sha256 = hashlib.sha256(data).hexdigest()
            analysis.timings["hash"] = time.perf_counter() - t_hash
        _analyse_buffer(analysis, data, name, limits, start)
        return
    if compute_sha256:
        t_hash = time.perf_counter()
        with open(fd, "rb", closefd=False) as f:
            analysis.sha256 = hashlib.file_digest(f, "sha256").hexdigest()
        analysis.timings["hash"] = time.perf_counter() - t_hash
    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        _analyse_buffer(analysis, mm, name, limits, start)
    finally:
        _close_quietly(mm)


def _read_all(fd: int, size: int) -> bytes:
    """Return the file's bytes from offset 0 (at most `size`: a file that grew is read as it was sized)."""
    data = os.read(fd, size) if size else b""
    if len(data) < size:  # a short read: keep reading until the end or `size`
        parts = [data]
        got = len(data)
        while got < size:
            more = os.read(fd, size - got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        data = b"".join(parts)
    return data


def _close_quietly(mm: mmap.mmap) -> None:
    """Close a map; when a view on it is still alive, leave the closing to garbage collection."""
    with contextlib.suppress(BufferError):
        mm.close()


def _analyse_buffer(analysis: Analysis, buf: Searchable, name: str, limits: Limits, start: float) -> None:
    """Walk containers, read the pickle streams of every region and fill `analysis` in place."""
    deadline = time.monotonic() + limits.max_seconds - (time.perf_counter() - start)
    walker = ContainerWalker(limits, deadline)
    region_kinds: list[str] = []
    t_containers = 0.0
    t_opcodes = 0.0
    regions = walker.walk(buf, name)
    t0 = time.perf_counter()  # the walker's time runs from here to each region it yields, and to its end
    try:
        for region in regions:
            t1 = time.perf_counter()
            t_containers += t1 - t0
            # Decoding calls inside a region's pickles (zlib.decompress...) count as one decompression, and
            # against the file's total budget.
            room = max(
                0,
                min(
                    limits.max_decompressed_bytes,
                    limits.max_total_decompressed_bytes - walker.decompressed_bytes,
                ),
            )
            budget = [room]
            _read_region(analysis, region, limits, deadline, region_kinds, budget)
            walker.decompressed_bytes += room - budget[0]
            t0 = time.perf_counter()
            t_opcodes += t0 - t1
        t_containers += time.perf_counter() - t0
    except Exception as exc:  # the analyzer must never raise on hostile input: record what broke
        analysis.anomalies.append(Anomaly("internal_error", 0, name, describe_error(exc)))
    finally:
        regions.close()
    analysis.anomalies[:0] = walker.anomalies
    analysis.containers = [*walker.kinds, *(k for k in region_kinds if k not in walker.kinds)]
    analysis.timings["containers"] = t_containers
    analysis.timings["opcodes"] = t_opcodes
    analysis.timings["total"] = time.perf_counter() - start


def _read_region(
    analysis: Analysis,
    region: Region,
    limits: Limits,
    deadline: float,
    region_kinds: list[str],
    decode_budget: list[int],
) -> None:
    """Hand one region to the stream reader and merge what it found."""
    region_limits = dataclasses.replace(limits, max_streams=1) if region.first_stream_only else limits
    analysis.pickle_bytes += len(region.data)
    try:
        read = read_streams(
            region.data, region.location, region_limits, deadline=deadline, decode_budget=decode_budget
        )
    finally:
        if isinstance(region.data, memoryview):
            with contextlib.suppress(BufferError):
                region.data.release()
    analysis.streams.extend(read.streams)
    if region.first_stream_only:
        analysis.anomalies.extend(a for a in read.anomalies if a.kind != "limit_streams")
    else:
        analysis.anomalies.extend(read.anomalies)
    if read.kind not in _PLAIN_REGION_KINDS and read.kind not in region_kinds:
        region_kinds.append(read.kind)
    for s in read.streams:
        if s.n_opcodes:
            return
    if not any(
        a.kind == "not_pickle" for a in (*read.anomalies, *(a for s in read.streams for a in s.anomalies))
    ):
        analysis.anomalies.append(Anomaly("not_pickle", 0, region.location, "no pickle opcode could be read"))
