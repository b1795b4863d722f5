"""Reading the scanner benchmark's outputs (written by experiments/run_scanners.py / `task=scanners`).

The tables never re-run a scanner for detection figures: they read `<results>/scanners/<dataset>/
{metrics,records,matrix}.csv` (or the merged `<results>/scanners.csv`) and say plainly when those are missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from safepickle_bench.reporting.tables import num, pct

RERUN_HINT = "python experiments/run_scanners.py"


def scanner_dir(results_dir: Path, dataset: str) -> Path:
    """Return the folder holding one dataset's scanner results."""
    return Path(results_dir) / "scanners" / dataset


def read_scanner_metrics(results_dir: Path, dataset: str) -> pd.DataFrame | None:
    """Return the per-scanner metric rows of a dataset, or None when the benchmark has not been run."""
    per_ds = scanner_dir(results_dir, dataset) / "metrics.csv"
    if per_ds.is_file() and per_ds.stat().st_size:
        frame = pd.read_csv(per_ds)
        if not frame.empty:
            return frame
    merged = Path(results_dir) / "scanners.csv"
    if merged.is_file() and merged.stat().st_size:
        frame = pd.read_csv(merged)
        if "dataset" in frame:
            frame = frame[frame["dataset"] == dataset]
            if not frame.empty:
                return frame.reset_index(drop=True)
    return None


def read_scanner_records(results_dir: Path, dataset: str) -> pd.DataFrame | None:
    """Return the per-file scanner records of a dataset (path, scanner, verdict, error...), or None."""
    path = scanner_dir(results_dir, dataset) / "records.csv"
    if not path.is_file() or not path.stat().st_size:
        return None
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return None
    return frame if not frame.empty else None


def missing_note(results_dir: Path, dataset: str) -> str:
    """Return the sentence a table prints when a dataset's scanner results are missing."""
    return (f"Scanner results for `{dataset}` not found under `{scanner_dir(results_dir, dataset)}`: "
            f"run `{RERUN_HINT}` (the scanner benchmark) first; no scanner figure is shown.")


def _is_true(value: object) -> bool:
    """Return True for True, 'True', 'true', 1 (CSV round trips)."""
    return str(value).strip().lower() in ("true", "1", "1.0")


def scanner_display_rows(metrics: pd.DataFrame, paper: dict[str, str] | None = None) -> list[dict[str, object]]:
    """Return Markdown rows of scanner metrics: F1 fail-closed / fail-open, P, R, FPR, errors, time, mode."""
    rows = []
    counts = metrics["scanner"].value_counts()
    for r in metrics.to_dict("records"):
        tool = str(r["scanner"])
        if counts.get(tool, 0) > 1 and r.get("mode"):  # the same tool timed in two modes
            r = {**r, "scanner": f"{tool} ({r['mode']})"}
        available = _is_true(r.get("available", True))
        note = "" if isinstance(r.get("note"), float) and math.isnan(r["note"]) else str(r.get("note") or "")
        if not available:
            rows.append({"method": r["scanner"], "F1 % fail-closed": "unavailable", "F1 % fail-open": "unavailable",
                         "paper %": (paper or {}).get(tool, "n/a"), "note": note})
            continue
        n = r.get("n_files")
        rows.append({
            "method": r["scanner"],
            "F1 % fail-closed": pct(r.get("f1_fail_closed")),
            "F1 % fail-open": pct(r.get("f1_fail_open")),
            "paper %": (paper or {}).get(tool, "n/a"),
            "precision %": pct(r.get("precision")),
            "recall %": pct(r.get("recall")),
            "FPR %": pct(r.get("fpr")),
            "error %": pct(r.get("error_rate")),
            "files": "n/a" if n is None or (isinstance(n, float) and math.isnan(n)) else str(int(n)),
            "ms/file median": num(r.get("ms_median"), 1),
            "mode": r.get("mode", ""),
            "note": note,
        })
    return rows
