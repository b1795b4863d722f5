"""`python -m safepickle_bench scan --model DIR [--json] FILE...`: our trained detector as a scanner.

Each file is analysed statically (never loaded), featurised and scored by the exported model; the output
is a verdict (malicious / benign / error), a score and the reasons: the dangerous imports and calls the
analyzer found (offset and container location) and the features that pushed the score up.
Exit code: 0 every file benign, 1 any malicious, 2 any error (errors win over malicious).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from safepickle_bench.models.explain import format_reason


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the scan subcommand."""
    p = argparse.ArgumentParser(prog="python -m safepickle_bench scan",
                                description="Scan pickle-based model files with a trained SafePickle detector.")
    p.add_argument("--model", required=True, help="exported detector folder, e.g. models/rf_hf")
    p.add_argument("--json", action="store_true", help="print JSON Lines (path, verdict, score, reasons, error)")
    p.add_argument("--top-features", type=int, default=5, help="features listed among the reasons (default 5)")
    p.add_argument("files", nargs="+", help="files to scan")
    return p


def exit_code(verdicts: Sequence[str]) -> int:
    """Return 2 if any verdict is an error, else 1 if any is malicious, else 0."""
    if "error" in verdicts:
        return 2
    return 1 if "malicious" in verdicts else 0


def main(argv: list[str] | None = None) -> int:
    """Scan the files named in argv, print one result per file, and return the exit code."""
    args = build_parser().parse_args(argv)
    from safepickle_bench.models.detector import load_detector

    try:
        detector = load_detector(args.model)
    except Exception as exc:  # no model, tampered model: a clear message, exit 2
        print(f"error: cannot load detector from {args.model}: {exc}", file=sys.stderr)
        return 2
    for warning in detector.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    results = detector.score_paths(args.files, top_k=args.top_features)
    for r in results:
        if args.json:
            d = r.to_dict()
            d["score"] = None if math.isnan(r.score) else r.score
            print(json.dumps(d, ensure_ascii=False), flush=True)
        else:
            score = "n/a" if math.isnan(r.score) else f"{r.score:.4f}"
            print(f"{r.path}: {r.verdict.upper()} score={score}" + (f" ({r.error})" if r.error else ""))
            for reason in r.reasons:
                print(f"    - {format_reason(reason)}")
    return exit_code([r.verdict for r in results])
