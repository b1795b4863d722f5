"""Result types of the static analyzer: what was found in a file's pickle streams, JSON-serialisable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Anomaly kinds used across the analyzer. Features count anomalies by these names;
# add new kinds here (and only here) so the feature columns stay stable.
ANOMALY_KINDS: tuple[str, ...] = (
    "unknown_opcode",  # a byte that no protocol defines where an opcode was expected
    "truncated",  # an argument or the stream ends before its declared length
    "bad_argument",  # an argument that the real loader rejects (bad int text, bad utf-8...)
    "stack_underflow",  # an opcode pops more than the stack holds
    "mark_missing",  # an opcode needs a MARK that is not there
    "memo_missing",  # GET of a memo key never PUT
    "no_stop",  # the stream ends without STOP
    "trailing_bytes",  # bytes after the last STOP that are not another stream
    "multiple_streams",  # more than one pickle stream back to back
    "unresolved_global",  # STACK_GLOBAL/INST whose module or name is not a known string
    "nested_pickle",  # bytes passed to a loads-like callable were parsed as a pickle
    "limit_bytes",  # max_file_bytes / max_pickle_bytes hit
    "limit_decompressed",  # max_decompressed_bytes / max_total_decompressed_bytes hit
    "limit_opcodes",  # max_opcodes hit
    "limit_streams",  # max_streams hit
    "limit_depth",  # container or nested-pickle depth limit hit
    "limit_stack",  # max_stack_depth hit
    "limit_time",  # max_seconds hit
    "container_corrupt",  # zip central directory broken, bad header, bad CRC, bad compressed data
    "container_prepended",  # bytes before a container's start (polyglot)
    "container_appended",  # bytes after a container's end (polyglot)
    "unsupported_container",  # recognised container that cannot be opened here (with reason)
    "not_pickle",  # a region reached that holds no pickle opcode at all
    "internal_error",  # the analyzer itself failed on this input (a bug to fix, recorded, never raised)
)


@dataclass(slots=True)
class Anomaly:
    """Something malformed, unusual or limit-hitting, with where it happened."""

    kind: str
    offset: int
    location: str
    detail: str = ""


@dataclass(slots=True)
class ImportRecord:
    """A global the stream imports (GLOBAL, STACK_GLOBAL, INST), resolved to module and name."""

    module: str
    name: str
    opcode: str
    offset: int

    @property
    def qualname(self) -> str:
        """Return `module.name`."""
        return f"{self.module}.{self.name}"


@dataclass(slots=True)
class CallRecord:
    """A call the loader would make (REDUCE, NEWOBJ, NEWOBJ_EX, BUILD, INST, OBJ)."""

    callable: str
    """`module.qualname` of what is called; for BUILD, the class whose state is set; `?` when unknown."""
    opcode: str
    offset: int
    args: str = ""
    """Short, truncated summary of the literal arguments (strings, numbers, nested tuples)."""


@dataclass(slots=True)
class Stream:
    """One pickle stream: where it lives, what it imports and calls, and how it is shaped."""

    location: str
    """Container path of the region plus stream index, e.g. `model.pt!archive/data.pkl#0`."""
    start: int
    end: int
    """Byte offsets of the stream inside its region (end is after STOP, or where reading stopped)."""
    protocol: int
    """Protocol from PROTO, or the highest protocol of any opcode seen when there is no PROTO."""
    has_proto: bool
    complete: bool
    """True when STOP was reached."""
    n_opcodes: int
    opcode_counts: dict[str, int]
    """Opcode name (pickletools spelling) -> count."""
    opcode_seq: bytes
    """One byte per opcode read (its code), for n-gram features; capped by max_opcodes."""
    imports: list[ImportRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    """String literals (unicode and bytes decoded latin-1), each truncated to max_string_chars."""
    n_strings: int = 0
    """Exact count of string literals, even when `strings` is capped."""
    anomalies: list[Anomaly] = field(default_factory=list)
    max_stack_depth: int = 0
    max_container_nesting: int = 0
    """Deepest nesting of MARK / lists / tuples / dicts built by the stream."""
    memo_puts: int = 0
    memo_gets: int = 0
    nested_depth: int = 0
    """0 for a stream of the file, n for a pickle found inside a pickle n levels down."""
    skipped_bytes: int = 0
    """Raw bytes the loader reads without parsing as opcodes (joblib array data, legacy torch storages)."""
    context: Any = field(default=None, repr=False, compare=False)
    """What `analysis.call_sites` needs beyond the records (the value at STOP, the decoded values), set on
    streams with calls; not part of the JSON, None on a stream rebuilt from JSON."""

    def to_dict(self, with_seq: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict (the opcode sequence only when asked; never the call context)."""
        d: dict[str, Any] = {}
        for name in _STREAM_JSON_FIELDS:
            value = getattr(self, name)
            if name == "opcode_seq":
                if with_seq:
                    d[name] = value.hex()
                continue
            if type(value) is list:
                value = [asdict(x) if hasattr(x, "__dataclass_fields__") else x for x in value]
            elif type(value) is dict:
                value = dict(value)
            d[name] = value
        return d


_STREAM_JSON_FIELDS: tuple[str, ...] = tuple(f for f in Stream.__dataclass_fields__ if f != "context")


@dataclass(slots=True)
class Analysis:
    """Everything the static analyzer learnt about one file, without executing any of it."""

    path: str
    size: int
    sha256: str
    containers: list[str] = field(default_factory=list)
    """Container kinds met, outermost first, e.g. `['zip', 'torch_zip']` or `['gzip', 'joblib']`."""
    streams: list[Stream] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    """File- and container-level anomalies (stream anomalies stay on their stream)."""
    pickle_bytes: int = 0
    """Bytes of pickle regions handed to the opcode reader."""
    error: str | None = None
    """Set only when the file could not be read at all (missing, unreadable)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per phase (`containers`, `opcodes`, `total`)."""

    def all_anomalies(self) -> list[Anomaly]:
        """Return file-level and stream-level anomalies together."""
        return [*self.anomalies, *(a for s in self.streams for a in s.anomalies)]

    def all_imports(self) -> list[ImportRecord]:
        """Return the imports of every stream, in order."""
        return [i for s in self.streams for i in s.imports]

    def all_calls(self) -> list[CallRecord]:
        """Return the calls of every stream, in order."""
        return [c for s in self.streams for c in s.calls]

    def to_dict(self, with_seq: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "containers": list(self.containers),
            "streams": [s.to_dict(with_seq) for s in self.streams],
            "anomalies": [asdict(a) for a in self.anomalies],
            "pickle_bytes": self.pickle_bytes,
            "error": self.error,
            "timings": dict(self.timings),
        }

    def to_json(self) -> str:
        """Return the analysis as one line of JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
