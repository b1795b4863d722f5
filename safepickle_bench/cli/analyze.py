"""`python -m safepickle_bench analyze [--json] FILE...`: print what the static analyzer finds in each file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from safepickle_bench.analysis import Analysis, Anomaly, Stream, analyze_path

EXIT_OK = 0
EXIT_UNREADABLE = 2

ReasonFormatter = Callable[[Analysis], list[str]]
"""Turns an analysis into human-readable reasons (why a file looks dangerous); one line per reason."""


def format_reasons(analysis: Analysis, formatters: Sequence[ReasonFormatter] = ()) -> list[str]:
    """Return the reason lines every formatter gives for `analysis` (the hook for explanation output)."""
    return [line for fmt in formatters for line in fmt(analysis)]


def _anomaly_line(a: Anomaly) -> str:
    detail = f": {a.detail}" if a.detail else ""
    return f"{a.kind} @{a.offset} in {a.location}{detail}"


def format_stream(stream: Stream) -> list[str]:
    """Return the text block of one stream: location, protocol, opcodes, imports, calls, anomalies."""
    state = "complete" if stream.complete else "incomplete"
    lines = [
        f"  stream {stream.location}  protocol {stream.protocol}  {stream.n_opcodes} opcodes  "
        f"bytes {stream.start}-{stream.end}  {state}"
    ]
    if stream.nested_depth:
        lines[0] += f"  (nested depth {stream.nested_depth})"
    if stream.skipped_bytes:
        lines.append(f"    skipped raw bytes: {stream.skipped_bytes}")
    lines.append(f"    imports ({len(stream.imports)}):")
    lines += [f"      {i.qualname}  [{i.opcode} @{i.offset}]" for i in stream.imports]
    lines.append(f"    calls ({len(stream.calls)}):")
    lines += [f"      {c.callable} {c.args}  [{c.opcode} @{c.offset}]" for c in stream.calls]
    if stream.anomalies:
        lines.append(f"    anomalies ({len(stream.anomalies)}):")
        lines += [f"      {_anomaly_line(a)}" for a in stream.anomalies]
    return lines


def format_analysis(analysis: Analysis, formatters: Sequence[ReasonFormatter] = ()) -> str:
    """Return the readable summary of one file: header, file anomalies, one block per stream, reasons."""
    if analysis.error:
        return f"{analysis.path}: error: {analysis.error}"
    total_ms = 1000 * analysis.timings.get("total", 0.0)
    lines = [
        f"{analysis.path}  ({analysis.size} bytes, sha256 {analysis.sha256[:16] or 'not computed'}, "
        f"{total_ms:.1f} ms)",
        f"  containers: {' > '.join(analysis.containers) or 'none (raw)'}",
        f"  streams: {len(analysis.streams)}  pickle bytes: {analysis.pickle_bytes}",
    ]
    if analysis.anomalies:
        lines.append(f"  file anomalies ({len(analysis.anomalies)}):")
        lines += [f"    {_anomaly_line(a)}" for a in analysis.anomalies]
    for stream in analysis.streams:
        lines += format_stream(stream)
    reasons = format_reasons(analysis, formatters)
    if reasons:
        lines.append("  reasons:")
        lines += [f"    {r}" for r in reasons]
    return "\n".join(lines)


def run(
    paths: Sequence[str],
    *,
    as_json: bool,
    out: TextIO,
    formatters: Sequence[ReasonFormatter] = (),
    compute_sha256: bool = True,
) -> int:
    """Analyse every path, print text or JSON Lines to `out`, and return the exit code."""
    code = EXIT_OK
    for path in paths:
        analysis = analyze_path(path, compute_sha256=compute_sha256)
        if analysis.error:
            code = EXIT_UNREADABLE
        out.write((analysis.to_json() if as_json else format_analysis(analysis, formatters)) + "\n")
        out.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `analyze` arguments, analyse the files and return 0, or 2 when a file could not be read."""
    parser = argparse.ArgumentParser(
        prog="python -m safepickle_bench analyze",
        description="Statically analyse pickle-bearing files (nothing is unpickled or executed).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file (JSON Lines)")
    parser.add_argument(
        "--no-hash",
        action="store_true",
        help="do not compute each file's sha256 (reads only the pickle parts: a large checkpoint stays fast)",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to analyse")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return run(args.files, as_json=args.json, out=sys.stdout, compute_sha256=not args.no_hash)
