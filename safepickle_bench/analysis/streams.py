"""Reads every pickle stream a loader would run in one byte region: back-to-back streams, legacy PyTorch
files (magic, protocol, sys-info, data and storage-key pickles, then raw storages that are skipped) and
joblib files (raw array bytes after each `NumpyArrayWrapper`, skipped exactly as joblib reads them).

This is the entry point the container layer calls on each region it extracts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.engine import StreamRun, simulate_stream
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import Anomaly, Stream
from safepickle_bench.analysis.values import Global

TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
"""First pickle of a legacy (non-zip) `torch.save` file."""
TORCH_LEGACY_PICKLES = 5
"""Magic, protocol version, sys info, data, storage keys."""

TORCH_STORAGE_ELEMENT_SIZE: dict[str, int] = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
    "UInt16Storage": 2,
    "UInt32Storage": 4,
    "UInt64Storage": 8,
    "Int8Storage": 1,
    "Float8_e5m2Storage": 1,
    "Float8_e4m3fnStorage": 1,
    "Float8_e5m2fnuzStorage": 1,
    "Float8_e4m3fnuzStorage": 1,
}
"""Legacy torch storage class name -> bytes per element (the file stores element counts)."""


@dataclass(slots=True)
class RegionRead:
    """Every stream read from one byte region, the region-level anomalies and the raw bytes skipped."""

    streams: list[Stream] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    skipped_bytes: int = 0
    """Raw bytes a loader reads without parsing them as opcodes (joblib arrays, legacy torch storages)."""
    kind: str = "pickle"
    """'pickle', 'torch_legacy' or 'joblib' (decided by content), 'empty' when there was nothing to read."""
    end: int = 0
    """Offset where reading stopped (after the last stream, storage or array read)."""


def read_stream(
    data: bytes | bytearray | memoryview,
    start: int,
    location: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    nested_depth: int = 0,
    deadline: float | None = None,
) -> Stream:
    """Read the single pickle stream starting at `start` (as `pickle.loads` would) and return its record."""
    return simulate_stream(
        _as_bytes(data), start, location, limits, nested_depth=nested_depth, deadline=deadline
    ).stream


def read_streams(
    data: bytes | bytearray | memoryview,
    location: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    nested_depth: int = 0,
    deadline: float | None = None,
    decode_budget: list[int] | None = None,
) -> RegionRead:
    """Read every pickle stream of a byte region from offset 0, back to back, recording anomalies (never raises).

    `decode_budget` (a one-item list, decremented in place) bounds what decoding calls inside the pickles
    (zlib.decompress, base64...) may produce over all its streams; default `limits.max_decompressed_bytes`.
    """
    out = RegionRead([], [])
    n = len(data)
    if n == 0 or data[0] not in ops.VALID_OPCODES:  # decided before any copy of a large region
        out.kind = "empty" if n == 0 else out.kind
        detail = "empty region" if n == 0 else f"first byte 0x{data[0]:02x} is no opcode"
        out.anomalies.append(Anomaly("not_pickle", 0, location, detail))
        return out
    buf = data if isinstance(data, bytes) else bytes(data)
    if deadline is None:
        deadline = time.monotonic() + limits.max_seconds
    if decode_budget is None:
        decode_budget = [limits.max_decompressed_bytes]
    runs: list[StreamRun] = []
    pos = 0
    torch_legacy = False
    max_streams = limits.max_streams
    max_pickle_bytes = limits.max_pickle_bytes
    while pos < n:
        index = len(runs)
        if index >= max_streams:
            out.anomalies.append(Anomaly("limit_streams", pos, location, f"max_streams={max_streams}"))
            break
        if time.monotonic() > deadline:
            out.anomalies.append(Anomaly("limit_time", pos, location, "max_seconds reached between streams"))
            break
        end = pos + max_pickle_bytes
        if end > n:
            end = n
        stream_location = f"{location}#{index}"
        run = simulate_stream(
            buf,
            pos,
            stream_location,
            limits,
            end=end,
            nested_depth=nested_depth,
            deadline=deadline,
            decode_budget=decode_budget,
        )
        st = run.stream
        if index > 0 and not _counts_as_stream(buf, pos, run):
            out.anomalies.append(
                Anomaly("trailing_bytes", pos, location, f"{n - pos} bytes after the last STOP")
            )
            break
        runs.append(run)
        out.streams.append(st)
        out.streams.extend(run.extra_streams)
        if not st.complete:
            if end < n and st.anomalies and st.anomalies[-1].kind in ("truncated", "no_stop"):
                out.anomalies.append(
                    Anomaly(
                        "limit_bytes",
                        pos,
                        location,
                        f"stream longer than max_pickle_bytes={limits.max_pickle_bytes}",
                    )
                )
            pos = st.end
            break
        pos = st.end
        if index == 0 and run.value == TORCH_LEGACY_MAGIC and type(run.value) is int:
            torch_legacy = True
        if torch_legacy and index == TORCH_LEGACY_PICKLES - 1:
            pos = _skip_torch_storages(buf, pos, runs, out, location)
            if pos < 0:
                pos = n
                break
    out.end = pos
    top_level = len(runs) - (TORCH_LEGACY_PICKLES - 1 if torch_legacy else 0)
    if top_level > 1:
        out.anomalies.append(
            Anomaly(
                "multiple_streams",
                runs[-top_level + 1].stream.start,
                location,
                f"{len(runs)} streams back to back",
            )
        )
    if torch_legacy:
        out.kind = "torch_legacy"
    elif len(runs) == 1:
        if runs[0].joblib_arrays:
            out.kind = "joblib"
    elif any(r.joblib_arrays for r in runs):
        out.kind = "joblib"
    if len(out.streams) == 1:
        out.skipped_bytes += out.streams[0].skipped_bytes
    else:
        out.skipped_bytes += sum(s.skipped_bytes for s in out.streams)
    return out


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


def _counts_as_stream(buf: bytes, start: int, run: StreamRun) -> bool:
    """Decide whether bytes after a STOP are another stream (reaches STOP, or shows imports/calls) or junk."""
    st = run.stream
    if buf[start] not in ops.VALID_OPCODES or st.n_opcodes == 0:
        return False
    return st.complete or bool(st.imports) or bool(st.calls)


def _skip_torch_storages(buf: bytes, pos: int, runs: list[StreamRun], out: RegionRead, location: str) -> int:
    """Skip the raw storages after a legacy torch file's storage-key pickle; return where they end (-1: give up)."""
    keys = runs[TORCH_LEGACY_PICKLES - 1].value
    if type(keys) is not list or not all(type(k) is str for k in keys):
        out.anomalies.append(
            Anomaly("bad_argument", pos, location, "legacy torch storage keys are not a list of str")
        )
        return pos
    element_size: dict[str, int | None] = {}
    for pid in runs[3].persistent_ids:
        if type(pid) is tuple and len(pid) >= 5 and pid[0] == "storage" and type(pid[2]) is str:
            stype = pid[1]
            size = (
                TORCH_STORAGE_ELEMENT_SIZE.get(stype.name.rsplit(".", 1)[-1])
                if isinstance(stype, Global)
                else None
            )
            element_size.setdefault(pid[2], size)
    n = len(buf)
    skipped_from = pos
    stream = runs[TORCH_LEGACY_PICKLES - 1].stream
    for key in keys:
        esize = element_size.get(key)
        if esize is None:
            out.anomalies.append(
                Anomaly(
                    "bad_argument", pos, location, f"legacy torch storage {key!r} has no known element size"
                )
            )
            break
        if pos + 8 > n:
            out.anomalies.append(
                Anomaly("truncated", pos, location, f"legacy torch storage {key!r} header missing")
            )
            break
        count = int.from_bytes(buf[pos : pos + 8], "little", signed=True)
        nbytes = count * esize
        if count < 0 or pos + 8 + nbytes > n:
            out.anomalies.append(
                Anomaly(
                    "truncated",
                    pos,
                    location,
                    f"legacy torch storage {key!r} of {count} elements past the end",
                )
            )
            stream.skipped_bytes += n - skipped_from
            return -1
        pos += 8 + nbytes
    stream.skipped_bytes += pos - skipped_from
    return pos
