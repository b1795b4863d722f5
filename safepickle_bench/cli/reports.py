"""What `scan` prints: the text report, JSON Lines, and a SARIF 2.1.0 log for code-scanning tools.

Every string in a verdict may come from a hostile file (member names, callables, arguments): the text
report escapes control and line-separator characters so they cannot move the terminal or forge a line, and
JSON is written ASCII-only, so each record stays on one line for every consumer (`str.splitlines()` also
splits on U+2028, U+2029, U+0085, U+001C-U+001E...).
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TextIO
from urllib.parse import quote

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "safepickle-bench"
TOOL_URI = "https://pypi.org/project/safepickle_bench/"
RULE_ID = "SPB001"
RULES: tuple[dict[str, Any], ...] = (
    {
        "id": RULE_ID,
        "name": "MaliciousPickleModel",
        "shortDescription": {"text": "Pickle-based model file that runs code when it is loaded"},
        "fullDescription": {
            "text": "The detector scored this file at or above its threshold: loading it with pickle, torch.load, "
            "joblib.load or numpy.load (allow_pickle) would likely import and call something dangerous. "
            "The file was analysed statically and never loaded."
        },
        "help": {
            "text": "Do not load this file. Check the reasons (callable, container location, opcode offset); "
            "prefer a safe format (safetensors, skops, ONNX) or load with torch.load(weights_only=True)."
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "pickle", "machine-learning"]},
    },
)
_SEPARATORS = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


class VerdictLike(Protocol):
    """What a report needs of one verdict (the engine's `Verdict`)."""

    display: str
    verdict: str
    score: float | None
    threshold: float
    reasons: list[dict[str, Any]]
    top_features: list[dict[str, Any]]
    error: str | None


# ------------------------------------------------------------------------------------------ helpers
def printable(text: object) -> str:
    """Return `text` with control, format and line-separator characters escaped (safe on a terminal)."""
    s = str(text)
    if s.isprintable():
        return s
    out = []
    for ch in s:
        if ch != " " and unicodedata.category(ch) in _SEPARATORS:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _finite(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    """Return `value` with NaN/inf floats as None and numpy scalars as Python numbers, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _finite(value.item())
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def json_line(obj: Any) -> str:  # noqa: ANN401 - any JSON-ready value
    """Return one JSON record on one line, ASCII only (no character any consumer treats as a line break)."""
    return json.dumps(_finite(obj), ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def record(v: VerdictLike) -> dict[str, Any]:
    """Return the JSON record of one verdict."""
    return {
        "path": v.display,
        "verdict": v.verdict,
        "score": v.score,
        "threshold": v.threshold,
        "reasons": v.reasons,
        "top_features": v.top_features,
        "error": v.error,
    }


def main_finding(v: VerdictLike) -> dict[str, Any] | None:
    """Return the reason that best names what runs: the first call, else the first import, else None."""
    for kind in ("call", "import"):
        for r in v.reasons:
            if r.get("kind") == kind and r.get("global"):
                return r
    return None


def _score(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def describe(v: VerdictLike) -> str:
    """Return `callable [category] via OPCODE at location@offset` for a verdict, or what pushed the score up."""
    r = main_finding(v)
    if r is not None:
        where = f" at {r.get('location')}@{r.get('offset')}" if r.get("location") is not None else ""
        cat = f" [{r['category']}]" if r.get("category") else ""
        via = f" via {r['opcode']}" if r.get("opcode") else ""
        return f"{r.get('kind')} {r['global']}{cat}{via}{where}"
    if v.top_features:
        f = v.top_features[0]
        return f"no listed callable; top feature {f.get('name')}"
    return "no listed callable"


# ------------------------------------------------------------------------------------------ tally
@dataclass(slots=True)
class Tally:
    """Counts of one run: files given a verdict (flagged, clean, errors), files skipped, wall time."""

    flagged: int = 0
    clean: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0

    @property
    def scanned(self) -> int:
        """Files that got a verdict (flagged, clean or error)."""
        return self.flagged + self.clean + self.errors

    def add(self, v: VerdictLike) -> None:
        """Count one verdict."""
        if v.verdict == "malicious":
            self.flagged += 1
        elif v.verdict == "error":
            self.errors += 1
        else:
            self.clean += 1

    def exit_code(self) -> int:
        """Return 2 if any error, else 1 if any file is flagged, else 0 (also when every file was skipped)."""
        if self.errors:
            return 2
        return 1 if self.flagged else 0

    def line(self) -> str:
        """Return the summary line."""
        return (
            f"summary: scanned {self.scanned}, flagged {self.flagged}, clean {self.clean}, errors {self.errors}, "
            f"skipped {self.skipped} (no pickle), seconds {self.seconds:.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as a dict."""
        return {"scanned": self.scanned, "flagged": self.flagged, "clean": self.clean, "errors": self.errors,
                "skipped": self.skipped, "seconds": round(self.seconds, 3)}


# ------------------------------------------------------------------------------------------ text and JSON
class TextReport:
    """Prints one line per flagged file (callable, location, score), errors and clean files, then a summary."""

    def __init__(self, out: TextIO, *, quiet: bool = False, top_features: int = 5) -> None:
        self.out = out
        self.quiet = quiet
        self.top_features = top_features

    def add(self, v: VerdictLike) -> None:
        """Print a verdict: flagged files always, errors and clean files unless quiet."""
        name = printable(v.display)
        if v.verdict == "malicious":
            self.out.write(
                f"{name}: MALICIOUS score={_score(v.score)} threshold={_score(v.threshold)}: "
                f"{printable(describe(v))}\n"
            )
            if not self.quiet:
                from safepickle_bench.models.explain import format_reason

                shown = main_finding(v)
                others = [r for r in v.reasons if r is not shown]
                for r in [*others, *v.top_features[: self.top_features]]:
                    self.out.write(f"    - {printable(format_reason(r))}\n")
        elif self.quiet:
            return
        elif v.verdict == "error":
            self.out.write(f"{name}: ERROR {printable(v.error or 'unknown error')}\n")
        else:
            self.out.write(f"{name}: clean score={_score(v.score)}\n")
        self.out.flush()

    def finish(self, tally: Tally) -> None:
        """Print the summary."""
        self.out.write(tally.line() + "\n")
        self.out.flush()


class JsonLinesReport:
    """Writes one JSON record per verdict, one per line (no summary line: every line is a file)."""

    def __init__(self, out: TextIO, *, top_features: int = 5) -> None:
        self.out = out
        self.top_features = top_features

    def add(self, v: VerdictLike) -> None:
        """Write the record of one verdict."""
        rec = record(v)
        rec["top_features"] = rec["top_features"][: self.top_features]
        self.out.write(json_line(rec) + "\n")
        self.out.flush()

    def finish(self, tally: Tally) -> None:
        """Nothing to add: the summary goes to stderr as text."""


# ------------------------------------------------------------------------------------------ SARIF
def _quote(text: str, safe: str) -> str:
    """Percent-encode `text` as UTF-8; names undecodable on disk (surrogate escapes) keep their raw bytes."""
    try:
        return quote(text, safe=safe, errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return quote(text, safe=safe, errors="surrogatepass")


def artifact_uri(path: str) -> tuple[str, str | None]:
    """Return (uri, uriBaseId) for a displayed path: `hf://` kept, relative paths under %SRCROOT%, else file://."""
    if path.startswith("hf://"):
        return _quote(path, ":/@+,;=~"), None
    p = Path(path)
    if p.is_absolute():
        return "file://" + _quote(p.as_posix(), "/@+,;=~"), None
    return _quote(PurePosixPath(*p.parts).as_posix(), "/@+,;=~"), "%SRCROOT%"


def _message(v: VerdictLike) -> str:
    return (
        f"Malicious pickle model file {v.display} (score {_score(v.score)} >= threshold {_score(v.threshold)}): "
        f"{describe(v)}. Analysed statically; never loaded."
    )


class SarifReport:
    """Collects flagged files as SARIF results and errors as tool notifications; writes one SARIF 2.1.0 log."""

    def __init__(self, path: Path, *, version: str | None = None) -> None:
        self.path = Path(path)
        self.version = version or _package_version()
        self.results: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self._relative = False

    def add(self, v: VerdictLike, *, container: str = "", member: str = "") -> None:
        """Record a flagged file as a result, or an error as a notification; clean files leave no trace."""
        if v.verdict == "malicious":
            self.results.append(self._result(v, container, member))
        elif v.verdict == "error":
            uri, base = artifact_uri(container or v.display)
            loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": _artifact(uri, base)}}
            self._relative |= base is not None
            self.notifications.append(
                {"level": "error", "message": {"text": f"{v.display}: {v.error or 'unknown error'}"}, "locations": [loc]}
            )

    def _result(self, v: VerdictLike, container: str, member: str) -> dict[str, Any]:
        uri, base = artifact_uri(container or v.display)
        self._relative |= base is not None
        location: dict[str, Any] = {"physicalLocation": {"artifactLocation": _artifact(uri, base)}}
        if member:
            location["logicalLocations"] = [{"name": member, "fullyQualifiedName": v.display, "kind": "resource"}]
        finding = main_finding(v)
        return {
            "ruleId": RULE_ID,
            "ruleIndex": 0,
            "level": "error",
            "kind": "fail",
            "message": {"text": _message(v)},
            "locations": [location],
            "properties": _finite(
                {
                    "score": v.score,
                    "threshold": v.threshold,
                    "callable": finding.get("global") if finding else None,
                    "reasons": v.reasons,
                    "topFeatures": v.top_features,
                }
            ),
        }

    def log(self, tally: Tally) -> dict[str, Any]:
        """Return the SARIF log as a dict."""
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": self.version,
                    "semanticVersion": self.version,
                    "informationUri": TOOL_URI,
                    "rules": [dict(r) for r in RULES],
                }
            },
            "invocations": [
                {
                    "executionSuccessful": tally.errors == 0,
                    "toolExecutionNotifications": self.notifications,
                    "properties": tally.to_dict(),
                }
            ],
            "results": self.results,
        }
        if self._relative:
            run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}}
        return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}

    def write(self, tally: Tally) -> Path:
        """Write the log to its file (ASCII JSON) and return the path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.log(tally), ensure_ascii=True, indent=2) + "\n", encoding="ascii")
        return self.path


def _artifact(uri: str, base: str | None) -> dict[str, Any]:
    return {"uri": uri, "uriBaseId": base} if base else {"uri": uri}


def _package_version() -> str:
    """Return the installed package's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("safepickle_bench")
    except PackageNotFoundError:
        return "0+unknown"
