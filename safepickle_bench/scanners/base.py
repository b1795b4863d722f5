"""The one interface every scanner sits behind: `Scanner.scan(path) -> ScanResult`, plus a name registry.

A scanner turns one file into a normalised verdict (`malicious`, `benign` or `error`), a score in
[0, 1] (higher = more likely malicious), human-readable findings, the error text when it failed and
the seconds it spent. Whether a scanner can run at all on this machine (tool installed, signature
database present, API key set) is a separate question, answered by `Scanner.available()`: an
unavailable scanner is never scored as if it had said "benign".

`Scanner.scan` never raises for a bad file: any exception inside a wrapper becomes `verdict="error"`
with the reason, so a benchmark always goes on to the next file.
"""

from __future__ import annotations

import importlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

Verdict = Literal["malicious", "benign", "error"]
VERDICTS: tuple[str, ...] = ("malicious", "benign", "error")
MODES: tuple[str, ...] = ("in-process", "cli", "subprocess")
"""How a scanner runs: `in-process` = the tool's Python API (inside an isolated worker process, timed
around the API call only), `cli` = one tool process per file (timed as the whole process),
`subprocess` = our own throwaway process per file (timed as the whole process)."""


@dataclass(slots=True)
class ScanResult:
    """A scanner's normalised answer for one file."""

    verdict: Verdict
    score: float
    findings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    skipped: bool = False
    """True when the tool did not look at the file's content at all (e.g. modelscan's extension filter)."""

    def __post_init__(self) -> None:
        """Check the verdict and clamp the score into [0, 1]."""
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        self.score = min(1.0, max(0.0, float(self.score)))

    @property
    def detected(self) -> bool:
        """Return True when the verdict is malicious."""
        return self.verdict == "malicious"

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanResult:
        """Build a result from a dict (as sent back by a worker process), ignoring unknown keys."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["findings"] = [str(f) for f in known.get("findings") or []]
        return cls(**known)

    @classmethod
    def failed(cls, reason: str, seconds: float = 0.0) -> ScanResult:
        """Return an error result carrying its reason."""
        return cls(verdict="error", score=0.0, findings=[], error=reason, seconds=seconds)


class ScannerUnavailable(RuntimeError):
    """Raised when a scanner is asked to scan but cannot run here (reason in the message)."""


class Scanner(ABC):
    """Base class of every scanner wrapper: subclasses implement `_scan` and usually `available`."""

    name: ClassVar[str] = "scanner"
    modes: ClassVar[tuple[str, ...]] = ("in-process",)
    """Modes the wrapper supports; the first is the default."""
    learns: ClassVar[bool] = False
    """True for scanners that learn from training files (`fit`); benchmarks then fit them per split."""
    process_per_file: ClassVar[bool] = False
    """True when every `scan` runs in its own child process and shares no state, so several files may be
    scanned at once (used where timings are not reported)."""

    def __init__(self, timeout: float = 60.0, mode: str | None = None) -> None:
        """Set the per-file timeout (seconds) and the run mode (one of `self.modes`)."""
        self.timeout = float(timeout)
        self.mode = mode or self.modes[0]
        if self.mode not in self.modes:
            raise ValueError(f"{self.name}: mode {self.mode!r} not supported, choose from {self.modes}")

    def available(self) -> tuple[bool, str]:
        """Return (True, version/details) when the scanner can run here, else (False, reason)."""
        return True, ""

    @abstractmethod
    def _scan(self, path: Path) -> ScanResult:
        """Scan one existing file; may raise, `scan` turns exceptions into error results."""

    def scan(self, path: str | Path) -> ScanResult:
        """Scan one file and return a normalised result; never raises for a bad or hostile file."""
        p = Path(path)
        start = time.perf_counter()
        try:
            if not p.is_file():
                return ScanResult.failed(f"not a readable file: {p}", time.perf_counter() - start)
            result = self._scan(p)
        except ScannerUnavailable:
            raise
        except Exception as exc:  # a wrapper bug or a tool exception must not stop a benchmark
            return ScanResult.failed(f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        if not result.seconds:
            result.seconds = time.perf_counter() - start
        return result

    def scan_many(self, paths: Iterable[str | Path]) -> list[ScanResult]:
        """Scan several files one by one."""
        return [self.scan(p) for p in paths]

    def fit(self, manifest: Any) -> Scanner:
        """Learn from a training manifest (only scanners with `learns = True` implement it)."""
        raise NotImplementedError(f"{self.name} does not learn")

    def prepare(self, manifest: Any) -> None:
        """Receive the manifest of the files about to be scanned (e.g. their producers); no-op by default."""
        return None

    def close(self) -> None:
        """Release worker processes or clients (no-op by default)."""
        return None

    def describe(self) -> dict[str, Any]:
        """Return name, mode, timeout and availability, for logs and tables."""
        ok, detail = self.available()
        return {"scanner": self.name, "mode": self.mode, "timeout": self.timeout, "available": ok, "detail": detail}

    def __enter__(self) -> Scanner:
        """Enter a context that closes the scanner on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the scanner."""
        self.close()


# --------------------------------------------------------------------------------------------- registry

SCANNER_REGISTRY: dict[str, type[Scanner]] = {}
"""Scanner name -> class. Filled when the scanner modules are imported (see `load_all`)."""

SCANNER_MODULES: tuple[str, ...] = (
    "safepickle_bench.scanners.picklescan_scanner",
    "safepickle_bench.scanners.modelscan_scanner",
    "safepickle_bench.scanners.fickling_scanner",
    "safepickle_bench.scanners.pickleguard_scanner",
    "safepickle_bench.scanners.modelaudit_scanner",
    "safepickle_bench.scanners.weights_only",
    "safepickle_bench.scanners.clamav",
    "safepickle_bench.scanners.virustotal",
    "safepickle_bench.scanners.policy_loader",
    "safepickle_bench.scanners.ours",
)


def register(name: str) -> Callable[[type[Scanner]], type[Scanner]]:
    """Class decorator that registers a scanner class under `name`."""

    def deco(cls: type[Scanner]) -> type[Scanner]:
        cls.name = name
        SCANNER_REGISTRY[name] = cls
        return cls

    return deco


def load_all() -> dict[str, type[Scanner]]:
    """Import every scanner module (they import their tools lazily) and return the registry."""
    for module in SCANNER_MODULES:
        importlib.import_module(module)
    return dict(SCANNER_REGISTRY)


def build_scanner(name: str, **kwargs: Any) -> Scanner:
    """Instantiate the registered scanner `name` with keyword arguments."""
    registry = SCANNER_REGISTRY if name in SCANNER_REGISTRY else load_all()
    if name not in registry:
        raise KeyError(f"unknown scanner {name!r}; known: {sorted(registry)}")
    return registry[name](**kwargs)
