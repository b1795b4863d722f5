"""The state of the symbolic pickle machine while it reads one stream, and the operations handlers share.

One `Machine` holds everything the opcode handlers read and change: the stream's bytes and bounds, the stack,
the MARK positions, the memo, and the records found so far. Machines are reused from stream to stream (see
`engine.py`), so the containers that are emptied between streams are allocated once.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Callable
from typing import Any

from safepickle_bench.analysis import opcodes as ops
from safepickle_bench.analysis.limits import DEFAULT_LIMITS, Limits
from safepickle_bench.analysis.result import Anomaly, CallRecord, ImportRecord, Stream
from safepickle_bench.analysis.values import UNKNOWN, Global, Obj

MAX_ANOMALIES_PER_STREAM = 10_000
"""Anomalies kept per stream (a stream of a million bad POPs must not cost a million records)."""

_NAME_MAPPING = _compat_pickle.NAME_MAPPING
_IMPORT_MAPPING = _compat_pickle.IMPORT_MAPPING
_OPCODE_NAME = ops.OPCODE_NAME


class Halt(Exception):
    """Stops the opcode loop: `kind` None for STOP, else an anomaly kind; `pos` where reading stopped."""

    def __init__(self, kind: str | None, offset: int, detail: str = "", pos: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.offset = offset
        self.detail = detail
        self.pos = offset if pos is None else pos


class Reloop(Exception):
    """Asks the loop to re-read its bounds (a joblib array read inside an unfinished frame)."""

    def __init__(self, pos: int) -> None:
        super().__init__()
        self.pos = pos


def truncated(offset: int, detail: str) -> Halt:
    """Return the halt of an opcode whose argument runs past the end of the stream."""
    return Halt("truncated", offset, detail)


class Machine:
    """One stream's reading state: bytes, bounds, stack, MARKs, memo, and the records found so far."""

    __slots__ = (
        "data",
        "start",
        "end",
        "location",
        "limits",
        "nested_depth",
        "deadline",
        "budget",
        "max_int_digits",
        "max_lits",
        "max_chars",
        "stack",
        "push",
        "spop",
        "marks",
        "memo",
        "seq",
        "anomalies",
        "imports",
        "calls",
        "strings",
        "persistent_ids",
        "overrides",
        "extra_streams",
        "fence",
        "maxd",
        "max_marks",
        "proto",
        "first_proto",
        "frame_end",
        "jump_at",
        "jump_to",
        "nested_count",
        "joblib_arrays",
        "skipped",
        "big_seen",
        "decoded",
        "simulate",
    )

    def __init__(self, simulate: Callable[..., Any]) -> None:
        """Allocate the reusable containers; `simulate` reads a stream found inside this one."""
        self.stack: list[Any] = []
        self.push = self.stack.append
        self.spop = self.stack.pop
        self.marks: list[int] = []
        self.memo: dict[Any, Any] = {}
        self.seq = bytearray()
        self.overrides: dict[str, Any] = {}
        self.simulate = simulate
        self.reset(b"", 0, 0, "", DEFAULT_LIMITS, 0, 0.0, [0])

    def reset(
        self,
        data: bytes,
        start: int,
        end: int,
        location: str,
        limits: Limits,
        nested_depth: int,
        deadline: float,
        budget: list[int],
    ) -> None:
        """Prepare to read the stream of `data[start:end]` (the reusable containers are already empty)."""
        self.data = data
        self.start = start
        self.end = end
        self.location = location
        self.limits = limits
        self.nested_depth = nested_depth
        self.deadline = deadline
        self.budget = budget
        self.max_int_digits = limits.max_int_digits
        self.max_lits = limits.max_string_literals
        self.max_chars = limits.max_string_chars
        self.anomalies: list[Anomaly] = []
        self.imports: list[ImportRecord] = []
        self.calls: list[CallRecord] = []
        self.strings: list[str] = []
        self.persistent_ids: list[Any] = []
        self.extra_streams: list[Stream] = []
        self.fence = self.maxd = self.max_marks = self.proto = self.frame_end = 0
        self.nested_count = self.joblib_arrays = self.skipped = 0
        self.first_proto = self.jump_at = self.jump_to = -1
        self.big_seen = False  # a literal over BIG_LITERAL bytes was read: records drop references early
        self.decoded: dict[int, tuple[Any, int]] | None = None
        """id of a value a decoding call produced -> (the value, decoding layers behind it)."""

    def clear(self) -> None:
        """Drop every reference to the stream's bytes and values (the machine waits idle in the pool)."""
        self.data = b""
        self.stack.clear()
        self.memo.clear()
        self.marks.clear()
        self.overrides.clear()
        self.seq.clear()
        self.decoded = None

    # ---- operations the handlers share ----------------------------------------------------------------

    def anomaly(self, kind: str, offset: int, detail: str = "") -> None:
        """Record an anomaly of this stream (at most MAX_ANOMALIES_PER_STREAM)."""
        if len(self.anomalies) < MAX_ANOMALIES_PER_STREAM:
            self.anomalies.append(Anomaly(kind, offset, self.location, detail))

    def underflow(self, offset: int) -> Any:  # noqa: ANN401
        """Record a pop from an empty stack (above the last MARK) and return the unknown value it gives."""
        self.anomaly(
            "stack_underflow", offset, f"{_OPCODE_NAME[self.data[offset]]} on an empty stack (above MARK)"
        )
        return UNKNOWN

    def pop(self, offset: int) -> Any:  # noqa: ANN401
        """Pop the top of the stack (UNKNOWN and an anomaly when only a MARK is left)."""
        n = len(self.stack)
        if n > self.fence:
            if n > self.maxd:
                self.maxd = n
            return self.spop()
        return self.underflow(offset)

    def top(self, offset: int) -> Any:  # noqa: ANN401
        """Return the top of the stack without popping it (UNKNOWN and an anomaly when there is none)."""
        if len(self.stack) > self.fence:
            return self.stack[-1]
        return self.underflow(offset)

    def popmark(self, offset: int) -> list[Any]:
        """Pop everything above the last MARK and the MARK itself; return the items."""
        stack = self.stack
        n = len(stack)
        if n > self.maxd:
            self.maxd = n
        marks = self.marks
        if len(marks) > self.max_marks:
            self.max_marks = len(marks)
        if not marks:
            self.anomaly("mark_missing", offset, f"{_OPCODE_NAME[self.data[offset]]} without MARK")
            return []
        k = marks.pop()
        self.fence = marks[-1] if marks else 0
        items = stack[k:]
        del stack[k:]
        return items

    def note_str(self, s: Any) -> None:  # noqa: ANN401
        """Keep a string literal (bytes as latin-1 text), truncated, while fewer than max_string_literals."""
        if len(self.strings) < self.max_lits:
            c = self.max_chars
            self.strings.append(s[:c] if type(s) is str else bytes(s[:c]).decode("latin-1"))

    def find_class(self, module: str, name: str) -> tuple[str, str]:
        """Return the (module, name) the loader imports, with the Python 2 renames of protocols < 3."""
        if self.proto < 3:
            if (module, name) in _NAME_MAPPING:
                return _NAME_MAPPING[(module, name)]  # type: ignore[no-any-return]
            if module in _IMPORT_MAPPING:
                return _IMPORT_MAPPING[module], name
        return module, name

    def imported(self, module: str, name: str, opname: str, offset: int) -> Any:  # noqa: ANN401
        """Record an import and return its value (what an earlier BUILD put there, if it overwrote it)."""
        module, name = self.find_class(module, name)
        self.imports.append(ImportRecord(module, name, opname, offset))
        g = Global(module, name)
        overrides = self.overrides
        if overrides and g.qual in overrides:
            # An earlier BUILD replaced this module/class attribute: the loader now gets that value.
            self.anomaly(
                "unresolved_global", offset, f"{g.qual} was overwritten by BUILD earlier in the stream"
            )
            return overrides[g.qual]
        return g

    def getattr_value(self, base: Any, name: str, opname: str, offset: int) -> Any:  # noqa: ANN401
        """Return attribute `name` of a value: of a module or class, an import of the dotted name."""
        if isinstance(base, Global):
            g = Global(base.module, f"{base.name}.{name}" if base.name else name)
            self.imports.append(ImportRecord(g.module, g.name, opname, offset))
            return g
        return Obj("?", (), "attr", (base, name))

    def nested(self, raw: bytes, offset: int, via: str) -> Any:  # noqa: ANN401
        """Read bytes a call unpickles as a nested stream; return its value at STOP."""
        limits = self.limits
        if self.nested_depth + 1 > limits.max_nested_pickle_depth:
            self.anomaly(
                "limit_depth", offset, f"nested pickle via {via} deeper than max_nested_pickle_depth"
            )
            return UNKNOWN
        self.nested_count += 1
        loc = f"{self.location}>nested{self.nested_count}"
        sub = self.simulate(
            raw,
            0,
            loc,
            limits,
            nested_depth=self.nested_depth + 1,
            deadline=self.deadline,
            decode_budget=self.budget,
        )
        self.anomaly("nested_pickle", offset, f"{len(raw)} bytes via {via} read as {loc}")
        self.extra_streams.append(sub.stream)
        self.extra_streams.extend(sub.extra_streams)
        return sub.value
