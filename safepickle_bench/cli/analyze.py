"""`python -m safepickle_bench analyze [--json] PATH...`: print what the static analyzer finds in each file.

PATH is a file (analysed as given, whatever it holds), a directory (walked: files holding no pickle are
skipped, see `cli.discover`), or `hf://owner/name[@revision]`. Archives are not unpacked: the analyzer shows
the streams of every member itself. This command imports the analyzer only: no model, no scikit-learn,
torch, Dask or MLflow (a model is loaded only with `--model`).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from safepickle_bench.analysis import Analysis, Anomaly, Stream, analyze_bytes, analyze_path
from safepickle_bench.cli.discover import Failed, Found, Options, discover
from safepickle_bench.cli.reports import json_line, printable

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
        return printable(f"{analysis.path}: error: {analysis.error}")
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
    return "\n".join(map(printable, lines))  # strings from the file cannot forge lines or drive the terminal


def analyzer_reason_lines(analysis: Analysis) -> list[str]:
    """Return the dangerous imports and calls (category, opcode, location, offset) and notable anomalies."""
    from safepickle_bench.models.explain import analyzer_reasons, format_reason

    return [format_reason(r) for r in analyzer_reasons(analysis, max_items=50)]


class ModelReasons:
    """Scores an analysis with an exported detector and turns its verdict into reason lines and JSON fields."""

    def __init__(self, model_dir: str, top_k: int = 5) -> None:
        from safepickle_bench.models.detector import load_detector

        self.detector = load_detector(model_dir)
        self.top_k = top_k

    def verdict(self, analysis: Analysis) -> dict[str, Any]:
        """Return verdict, score and the top features behind the score for one analysis."""
        v = self.detector.predict_analysis([analysis], top_k=self.top_k)[0]
        score = None if math.isnan(v.score) else v.score
        features = [r for r in v.reasons if r.get("kind") == "feature"]
        return {"verdict": v.verdict, "score": score, "top_features": features}

    def lines(self, analysis: Analysis) -> list[str]:
        """Return the verdict line and one line per top feature."""
        from safepickle_bench.models.explain import format_reason

        if analysis.error:
            return []
        v = self.verdict(analysis)
        score = "n/a" if v["score"] is None else f"{v['score']:.4f}"
        return [f"model verdict: {v['verdict']} (score {score})", *(format_reason(f) for f in v["top_features"])]


def _analysis_of(entry: Found | Failed, compute_sha256: bool) -> Analysis:
    """Analyse a found file or member; a failed input becomes an analysis with its error."""
    if isinstance(entry, Failed):
        return Analysis(path=entry.display, size=0, sha256="", error=entry.error)
    if entry.data is not None:
        return analyze_bytes(entry.data, entry.display, compute_sha256=compute_sha256)
    analysis = analyze_path(entry.path or entry.display, compute_sha256=compute_sha256)
    analysis.path = entry.display
    return analysis


def run(
    paths: Sequence[str],
    *,
    as_json: bool,
    out: TextIO,
    formatters: Sequence[ReasonFormatter] = (analyzer_reason_lines,),
    compute_sha256: bool = True,
    model: ModelReasons | None = None,
    exclude: Sequence[str] = (),
    hf_cache: str | None = None,
    err: TextIO | None = None,
) -> int:
    """Analyse every file the paths name, print text or JSON Lines to `out`, and return the exit code."""
    from safepickle_bench.models.explain import analyzer_reasons

    code = EXIT_OK
    fmts = [*formatters, model.lines] if model else list(formatters)
    cache = None
    if hf_cache is not None:
        from pathlib import Path

        from safepickle_bench.cli.hub import default_cache_dir

        cache = Path(hf_cache) if hf_cache else default_cache_dir()
    options = Options(exclude=tuple(exclude), open_archives=False, sniff_explicit=False)
    skipped = 0
    for entry in discover(paths, options, hf_cache=cache):
        if not isinstance(entry, Found | Failed):
            skipped += 1
            continue
        analysis = _analysis_of(entry, compute_sha256)
        if analysis.error:
            code = EXIT_UNREADABLE
        if as_json:
            record = analysis.to_dict()
            record["reasons"] = analyzer_reasons(analysis, max_items=50)
            if model is not None and not analysis.error:
                record.update(model.verdict(analysis))
            out.write(json_line(record) + "\n")
        else:
            out.write(format_analysis(analysis, fmts) + "\n")
        out.flush()
    if skipped and err is not None:
        err.write(f"skipped {skipped} file(s) holding no pickle\n")
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
    parser.add_argument(
        "--model",
        metavar="DIR",
        help="also score each file with an exported detector (e.g. models/rf_hf) and show the top features",
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="in folders, skip files and folders whose relative path or name matches (repeatable)")
    parser.add_argument("--hf-cache", nargs="?", const="", default=None, metavar="DIR",
                        help="also analyse every snapshot in the Hugging Face cache (default $HF_HUB_CACHE)")
    parser.add_argument("files", nargs="*", metavar="PATH", help="files, folders or hf://owner/name[@rev]")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if not args.files and args.hf_cache is None:
        parser.error("give at least one PATH or hf://owner/name, or --hf-cache")
    model = None
    if args.model:
        try:
            model = ModelReasons(args.model)
        except Exception as exc:  # missing or tampered model: a clear message, exit 2
            print(f"error: cannot load detector from {args.model}: {exc}", file=sys.stderr)
            return EXIT_UNREADABLE
    return run(args.files, as_json=args.json, out=sys.stdout, compute_sha256=not args.no_hash, model=model,
               exclude=args.exclude, hf_cache=args.hf_cache, err=sys.stderr)
