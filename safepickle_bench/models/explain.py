"""Reasons behind a verdict: what the analyzer found (dangerous imports, calls, anomalies) and top features."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features import dangerous_findings

if TYPE_CHECKING:
    import numpy as np

# Anomaly kinds worth showing a user: they are how evasive files hide (parse errors, extra streams...).
NOTABLE_ANOMALIES: frozenset[str] = frozenset(
    {
        "unknown_opcode",
        "truncated",
        "bad_argument",
        "no_stop",
        "trailing_bytes",
        "multiple_streams",
        "unresolved_global",
        "nested_pickle",
        "container_corrupt",
        "container_prepended",
        "container_appended",
        "unsupported_container",
    }
)


def analyzer_reasons(analysis: Analysis, max_items: int = 10) -> list[dict[str, Any]]:
    """Return the dangerous imports and calls (with offsets and container locations) and notable anomalies."""
    reasons: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for finding in dangerous_findings(analysis):
        key = (finding["kind"], finding["global"], finding["location"], finding["offset"])
        if key not in seen:
            seen.add(key)
            reasons.append(dict(finding))
    for anomaly in analysis.all_anomalies():
        if anomaly.kind in NOTABLE_ANOMALIES:
            reasons.append(
                {"kind": "anomaly", "name": anomaly.kind, "offset": anomaly.offset,
                 "location": anomaly.location, "detail": anomaly.detail[:200]}
            )
    return reasons[:max_items]


def flagged_reasons(analysis: Analysis, max_items: int = 10) -> list[dict[str, Any]]:
    """Return the analyzer's reasons for a flagged file, naming its callables even when no list knows them.

    Dangerous imports and calls and notable anomalies come first (as `analyzer_reasons`); when no dangerous
    import or call was found, the calls (else the imports) of globals outside the benign categories follow,
    with their category, so a file flagged for an unknown gadget still names it."""
    from safepickle_bench.features.taxonomy import BENIGN, load_taxonomy

    reasons = analyzer_reasons(analysis, max_items=max_items)
    if any(r["kind"] in ("import", "call") for r in reasons):
        return reasons
    tax = load_taxonomy()
    calls: list[dict[str, Any]] = []
    imports: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for stream in analysis.streams:
        for call in stream.calls:
            name = call.callable or "?"
            cat = tax.categorize(name)
            if cat != BENIGN and (name, stream.location) not in seen:
                seen.add((name, stream.location))
                calls.append({"kind": "call", "global": name, "category": cat, "opcode": call.opcode,
                              "offset": call.offset, "location": stream.location, "args": call.args})
        for rec in stream.imports:
            name = f"{rec.module}.{rec.name}"
            cat = tax.categorize(name)
            if cat != BENIGN and (name, stream.location) not in seen:
                seen.add((name, stream.location))
                imports.append({"kind": "import", "global": name, "category": cat, "opcode": rec.opcode,
                                "offset": rec.offset, "location": stream.location})
    return (reasons + (calls or imports))[:max_items]


def path_reasons_json(path: str, limits: Limits | None = None) -> tuple[str, str | None]:
    """Analyse one file and return its analyzer reasons as JSON, plus the analysis error if any."""
    from safepickle_bench.analysis import analyze_path

    try:
        analysis = analyze_path(path, limits=limits)
    except Exception as exc:  # a hostile file must not lose the run
        return "[]", f"{type(exc).__name__}: {exc}"
    return json.dumps(analyzer_reasons(analysis)), analysis.error


def top_feature_reasons(
    contributions: np.ndarray | None,
    values: np.ndarray,
    columns: list[str],
    method: str | None,
    k: int = 5,
) -> list[dict[str, Any]]:
    """Return the k features that pushed the score up the most (positive contributions), with their values."""
    if contributions is None or k <= 0:
        return []
    import numpy as np

    order = np.argsort(-contributions)[:k]
    return [
        {"kind": "feature", "name": columns[j], "value": float(values[j]),
         "contribution": float(contributions[j]), "method": method}
        for j in order
        if contributions[j] > 0
    ]


def format_reason(reason: dict[str, Any]) -> str:
    """Return one reason as a short human-readable line."""
    kind = reason.get("kind")
    if kind in ("import", "call"):
        return (f"{kind} {reason['global']} [{reason['category']}] via {reason['opcode']} "
                f"at {reason['location']}@{reason['offset']}")
    if kind == "anomaly":
        return f"anomaly {reason['name']} at {reason['location']}@{reason['offset']} {reason.get('detail', '')}".rstrip()
    if kind == "feature":
        return f"feature {reason['name']}={reason['value']:.4g} (+{reason['contribution']:.3g})"
    return str(reason)
