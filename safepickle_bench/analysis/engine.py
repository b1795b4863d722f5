"""The symbolic pickle machine's loop: reads one stream's opcodes and simulates stack, MARKs and memo.

One loop both tokenizes and simulates: each opcode byte selects its named handler in `handlers.DISPATCH`.
The engine resolves every import (GLOBAL, STACK_GLOBAL, INST, OBJ, EXT) and every call (REDUCE, NEWOBJ,
NEWOBJ_EX, BUILD, INST, OBJ) to `module.qualname` where the values allow it, follows getattr / attrgetter /
methodcaller / partial / __import__ chains, decodes bytes handed to loads-like callables (also base64, hex,
latin-1 or zlib encoded) and reads them as nested streams, and skips the raw array bytes that joblib's
`NumpyArrayWrapper` makes the real loader read from the middle of the stream. Nothing is imported, nothing
is unpickled.

It never raises on bad input: every limit or malformation is an anomaly of the stream, and an internal error
of a handler is an `internal_error` anomaly too; the stream then keeps what was found before it, and the rest
of its opcodes are still tokenized (counted, and their GLOBAL/INST imports and strings recorded).
"""

from __future__ import annotations

import dataclasses
import gc
import time
import traceback
from collections import _count_elements  # type: ignore[attr-defined]
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.call_sites import CallContext
from safepickle_bench.analysis.handlers import DISPATCH
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.machine import MAX_ANOMALIES_PER_STREAM, Halt, Machine, Reloop
from safepickle_bench.analysis.result import ImportRecord, Stream
from safepickle_bench.analysis.values import UNKNOWN, drop_big_references, nesting

CHECK_EVERY = 1024
"""Opcodes between two checks of the deadline, the opcode limit and the stack limit."""

_STREAM_FIELDS = [
    "location",
    "start",
    "end",
    "protocol",
    "has_proto",
    "complete",
    "n_opcodes",
    "opcode_counts",
    "opcode_seq",
    "imports",
    "calls",
    "strings",
    "n_strings",
    "anomalies",
    "max_stack_depth",
    "max_container_nesting",
    "memo_puts",
    "memo_gets",
    "nested_depth",
    "skipped_bytes",
]
if [f.name for f in dataclasses.fields(Stream)][: len(_STREAM_FIELDS)] != _STREAM_FIELDS:  # pragma: no cover
    raise ImportError("Stream fields changed order: update the positional Stream(...) call in engine.py")
_CONTAINERS = frozenset({tuple, list, set, frozenset, dict})
_PROTO_OF = ops.OPCODE_PROTO
_NAMES = ops.OPCODE_NAME
_C = ops.NAME_TO_CODE
_TEXT_IMPORT_CODES = (_C["GLOBAL"], _C["INST"])
_STRING_CODES = frozenset(
    _C[n]
    for n in (
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    )
)
_MEMO_PUT_CODES = (_C["PUT"], _C["BINPUT"], _C["LONG_BINPUT"], _C["MEMOIZE"])
_MEMO_GET_CODES = (_C["GET"], _C["BINGET"], _C["LONG_BINGET"])


def _tally_table() -> bytes:
    """Return opcode byte -> 1 string literal, 2 memo put, 3 memo get, 0 other (a bytes.translate table)."""
    kinds = [0] * 256
    for codes, kind in ((_STRING_CODES, 1), (_MEMO_PUT_CODES, 2), (_MEMO_GET_CODES, 3)):
        for c in codes:
            kinds[c] = kind
    return bytes(kinds)


_TALLY_TABLE = _tally_table()


@dataclass(slots=True)
class StreamRun:
    """One simulated stream plus what callers need beyond the `Stream` record."""

    stream: Stream
    value: Any = None
    """Top of the stack at STOP (the unpickled object, symbolically), UNKNOWN if STOP was not reached."""
    persistent_ids: list[Any] = field(default_factory=list)
    """Persistent ids (PERSID/BINPERSID) in order, e.g. legacy torch storage tuples."""
    extra_streams: list[Stream] = field(default_factory=list)
    """Streams found inside this one: nested pickles (`>nestedK`) and joblib object arrays (`>objarrayK`)."""
    file_end: int = 0
    """Offset a file-reading loader stands at after this stream (after STOP, or after its frame)."""
    joblib_arrays: int = 0
    """Number of joblib NumpyArrayWrapper arrays whose data was read (skipped or parsed)."""


def describe_error(exc: BaseException) -> str:
    """Return the exception type, message and innermost frame, for an `internal_error` anomaly."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def simulate_stream(
    data: bytes,
    start: int,
    location: str,
    limits: Limits = DEFAULT_LIMITS,
    *,
    end: int | None = None,
    nested_depth: int = 0,
    deadline: float | None = None,
    decode_budget: list[int] | None = None,
) -> StreamRun:
    """Read and simulate one pickle stream of `data` from `start` to its STOP; never raises on bad input.

    `decode_budget` is a one-item list holding how many bytes decoding calls inside pickles (zlib.decompress,
    base64...) may still produce; it is shared with nested streams and decremented in place (default: a
    fresh budget of `limits.max_decompressed_bytes`: everything decoded inside one region counts as one
    decompression).
    """
    if decode_budget is None:
        decode_budget = [limits.max_decompressed_bytes]
    if not isinstance(data, bytes):
        data = bytes(data)
    end = len(data) if end is None else min(end, len(data))
    if deadline is None:
        deadline = time.monotonic() + limits.max_seconds
    m = _MACHINES.pop() if _MACHINES else Machine(simulate_stream)
    # The simulation allocates many long-lived containers: no collections while a large stream runs
    # (a small one allocates too little for a collection to matter, and toggling has its own cost).
    gc_was_on = end - start > 4096 and gc.isenabled()
    if gc_was_on:
        gc.disable()
    try:
        m.reset(data, start, end, location, limits, nested_depth, deadline, decode_budget)
        return _run(m)
    finally:
        if gc_was_on:
            gc.enable()
        m.clear()
        _MACHINES.append(m)


_MACHINES: list[Machine] = []
"""Idle machines, reused (their containers are allocated once); a stream read inside another (nested pickle,
joblib object array) takes another machine. list.pop and list.append are atomic: threads never share one."""


def _check_limits(m: Machine, pos: int, n_opcodes: int) -> None:
    """Halt the stream at `pos` once it has used its opcode, time or stack budget."""
    limits = m.limits
    if n_opcodes >= limits.max_opcodes:
        raise Halt("limit_opcodes", pos, f"max_opcodes={limits.max_opcodes}")
    if time.monotonic() > m.deadline:
        raise Halt("limit_time", pos, "max_seconds reached")
    if len(m.stack) > limits.max_stack_depth:
        raise Halt("limit_stack", pos, f"stack deeper than max_stack_depth={limits.max_stack_depth}")


def _run(m: Machine) -> StreamRun:
    """Read the machine's stream from `m.start` to its STOP (or a limit, or an error) and build its record."""
    max_ops = m.limits.max_opcodes
    data = m.data
    n_data = len(data)
    stack = m.stack
    seq = m.seq
    seq_append = seq.append
    handlers = DISPATCH
    pos = m.start
    halt: Halt | None = None
    failure: BaseException | None = None
    stop_value: Any = UNKNOWN
    while halt is None:
        lim = m.jump_at if m.jump_at >= 0 else m.end
        try:
            if lim == n_data:
                # No bound check per opcode: reading past the data raises IndexError at `data[pos]`
                # (every handler checks the bounds of its own argument).
                while True:
                    n = len(seq)
                    _check_limits(m, pos, n)
                    if len(stack) > m.maxd:
                        m.maxd = len(stack)
                    for _ in range(min(CHECK_EVERY, max_ops - n)):
                        code = data[pos]
                        seq_append(code)
                        pos = handlers[code](m, pos + 1)
            else:
                while pos < lim:
                    n = len(seq)
                    if not n & (CHECK_EVERY - 1):
                        _check_limits(m, pos, n)
                    elif n >= max_ops:
                        raise Halt("limit_opcodes", pos, f"max_opcodes={max_ops}")
                    code = data[pos]
                    seq_append(code)
                    pos = handlers[code](m, pos + 1)
        except Halt as h:
            halt = h
            if h.kind is None:
                stop_value = m.pop(h.offset)
            elif h.kind == "unknown_opcode":
                del seq[-1:]
            pos = h.pos
            break
        except Reloop as r:
            pos = r.pos
            continue
        except Exception as exc:  # a bug of a handler must not cost what the stream showed so far
            if not (type(exc) is IndexError and pos >= n_data):  # else: the stream ran off the end
                failure = exc
                break
        if m.jump_at >= 0 and pos == m.jump_at:
            pos, m.jump_at, m.jump_to = m.jump_to, -1, -1
            continue
        break
    return _finish(m, pos, halt, failure, stop_value)


def _finish(
    m: Machine, pos: int, halt: Halt | None, failure: BaseException | None, stop_value: Any
) -> StreamRun:  # noqa: ANN401
    """Record how reading ended, tokenize what was left unsimulated, and build the stream's record."""
    seq = m.seq
    if failure is not None:
        m.anomaly("internal_error", pos, describe_error(failure))
        del seq[-1:]  # the failing opcode is read again by the tokenizer
        complete, pos = _tokenize_rest(m, pos)
    elif halt is None:
        complete = False
        m.anomaly("no_stop", pos, "stream ends without STOP")
    elif halt.kind is None:
        complete = True
    else:
        complete = False
        m.anomaly(halt.kind, halt.offset, halt.detail)
        if halt.kind == "limit_stack":  # too deep to simulate: the rest as plain opcodes
            complete, pos = _tokenize_rest(m, pos)
    if len(m.stack) > m.maxd:
        m.maxd = len(m.stack)
    opcode_counts, n_strings, puts, gets, top_proto = _tally(seq, m.first_proto < 0)
    first_proto = m.first_proto
    depth = max(
        m.max_marks,
        len(m.marks),
        nesting(stop_value) if complete and type(stop_value) in _CONTAINERS else 0,
    )
    # Positional arguments (checked against the field order at import): half the cost of keywords.
    stream = Stream(
        m.location,
        m.start,
        pos,
        first_proto if first_proto >= 0 else top_proto,
        first_proto >= 0,
        complete,
        len(seq),
        opcode_counts,
        bytes(seq),
        m.imports,
        m.calls,
        m.strings,
        n_strings,
        m.anomalies,
        m.maxd,
        depth,
        puts,
        gets,
        m.nested_depth,
        m.skipped,
    )
    if m.calls:
        context = CallContext(stop_value if complete else UNKNOWN, m.decoded)
        stream.context = context
        if m.big_seen:  # resolve now: the object graph holds big literals that must not outlive the stream
            context.release(m.calls)
            drop_big_references(m.calls)
    file_end = max(pos, m.frame_end) if complete else pos
    return StreamRun(stream, stop_value, m.persistent_ids, m.extra_streams, file_end, m.joblib_arrays)


def _tokenize_rest(m: Machine, pos: int) -> tuple[bool, int]:
    """Read the rest of the stream as plain opcodes (counted; GLOBAL/INST imports and strings recorded);
    return whether it reached STOP and where it stopped."""
    seq_append = m.seq.append

    def on_token(off: int, code: int, arg: Any) -> None:  # noqa: ANN401
        seq_append(code)
        if code in _TEXT_IMPORT_CODES and type(arg) is tuple:
            module, name = m.find_class(*arg)
            m.imports.append(ImportRecord(module, name, _NAMES[code], off))  # type: ignore[arg-type]
        elif code in _STRING_CODES and type(arg) in (str, bytes):
            m.note_str(arg)

    rest = ops.tokenize(
        m.data,
        pos,
        m.end,
        location=m.location,
        deadline=m.deadline,
        limits=dataclasses.replace(m.limits, max_opcodes=max(m.limits.max_opcodes - len(m.seq), 0)),
        on_token=on_token,  # streamed: millions of leftover opcodes are never held as tuples
    )
    m.anomalies.extend(rest.anomalies[: MAX_ANOMALIES_PER_STREAM - len(m.anomalies)])
    return rest.complete, rest.end


def _count_codes(seq: bytearray) -> dict[int, int]:
    """Return opcode byte -> count for a sequence of opcode bytes (first-seen order below 4096 opcodes)."""
    if len(seq) < 4096:
        counts: dict[int, int] = {}
        _count_elements(counts, seq)  # Counter's C helper, without building a Counter
        return counts
    import numpy as np  # only long streams need it: `analyze` on a small file starts without numpy

    hist = np.bincount(np.frombuffer(seq, dtype=np.uint8), minlength=256)
    return {int(c): int(hist[c]) for c in np.flatnonzero(hist)}


def _tally(seq: bytearray, want_protocol: bool) -> tuple[dict[str, int], int, int, int, int]:
    """Return opcode name -> count (first-seen order below 4096 opcodes, else by code), the string literal,
    memo put and memo get counts, and the highest protocol of any opcode (0 unless `want_protocol`)."""
    counts = _count_codes(seq)
    names = _NAMES
    opcode_counts: dict[str, int] = {}
    for c, n in counts.items():  # a plain loop: a 3.11 comprehension builds a function per call
        opcode_counts[names[c]] = n  # type: ignore[index]
    top = max(map(_PROTO_OF.__getitem__, counts), default=0) if want_protocol else 0
    if len(seq) < 4096:
        kinds = seq.translate(_TALLY_TABLE)
        return opcode_counts, kinds.count(1), kinds.count(2), kinds.count(3), top
    tallies = [0, 0, 0, 0]  # other, string literals, memo puts, memo gets
    for c, n in counts.items():
        tallies[_TALLY_TABLE[c]] += n
    return opcode_counts, tallies[1], tallies[2], tallies[3], top
