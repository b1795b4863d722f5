"""modelscan (Protect AI) behind our Scanner interface.

Modes: `in-process` = `modelscan.modelscan.ModelScan().scan(path)` in an isolated worker;
`cli` = `modelscan -p PATH -r json -o REPORT` (exit 0 clean, 1 issues, 2 error, 3 nothing scanned),
one process per file, run in an empty temp directory so no stray `modelscan-settings.toml` is read.

Severity -> verdict, score (both modes; modelscan itself exits 1 on any issue, so any issue counts):
- highest issue severity CRITICAL / HIGH / MEDIUM / LOW -> malicious, score 1.0 / 0.75 / 0.5 / 0.25
- no issue, but errors (e.g. a pickle it cannot parse)  -> error (the error texts become `error`)
- no issue, no error, nothing scanned                    -> benign, score 0.0, `skipped=True`
- no issue, no error, something scanned                  -> benign, score 0.0
Observed (0.8.8): it picks its scanner by file extension only (.pkl .pickle .joblib .dill .dat .data
as pickle, .bin .pt .pth .ckpt as PyTorch, .npy, zip members likewise); a raw pickle named `.bin` is
skipped as "Invalid magic number" and a file without a known extension is not scanned at all: both come
back benign with `skipped=True` (what a user of the tool sees: no issue). Benchmarks report the skip rate.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import ScanResult, register
from safepickle_bench.scanners.isolated_scanner import IsolatedScanner
from safepickle_bench.scanners.isolation import run_cli

SEVERITY_SCORE: dict[str, float] = {"CRITICAL": 1.0, "HIGH": 0.75, "MEDIUM": 0.5, "LOW": 0.25}


def normalise_report(report: dict[str, Any]) -> dict[str, Any]:
    """Map a modelscan report dict (API or JSON output) to a ScanResult dict."""
    issues = report.get("issues") or []
    errors = report.get("errors") or []
    summary = report.get("summary") or {}
    scanned = int((summary.get("scanned") or {}).get("total_scanned", 0) or 0)
    skipped = (summary.get("skipped") or {}).get("skipped_files") or []
    findings = [
        f"{i.get('severity', '?')}: {i.get('module', '?')}.{i.get('operator', '?')} ({i.get('source', '')})"
        for i in issues
    ]
    err_texts = [f"{e.get('category', '?')}: {e.get('description', '')} ({e.get('source', '')})" for e in errors]
    if issues:
        score = max(SEVERITY_SCORE.get(str(i.get("severity", "")).upper(), 0.25) for i in issues)
        return {"verdict": "malicious", "score": score, "findings": findings + [f"error: {t}" for t in err_texts]}
    if errors:
        return {"verdict": "error", "score": 0.0, "findings": findings, "error": "; ".join(err_texts)[:1000]}
    if scanned == 0:
        why = [f"skipped: {s.get('category', '?')}: {s.get('description', '')}" for s in skipped[:3]]
        return {"verdict": "benign", "score": 0.0, "findings": why or ["skipped: no scanner for this file"],
                "skipped": True}
    return {"verdict": "benign", "score": 0.0, "findings": findings}


def scan_in_worker(path: str) -> dict[str, Any]:
    """Scan one file with modelscan's Python API and return a normalised ScanResult dict."""
    from modelscan.modelscan import ModelScan

    return normalise_report(ModelScan().scan(path))


def _cli_path() -> str | None:
    """Return the modelscan executable next to our interpreter, or on PATH."""
    local = Path(sys.executable).with_name("modelscan")
    return str(local) if local.exists() else shutil.which("modelscan")


@register("modelscan")
class ModelscanScanner(IsolatedScanner):
    """modelscan via its Python API (worker) or its CLI with a JSON report."""

    modes = ("in-process", "cli")
    worker_target = "safepickle_bench.scanners.modelscan_scanner:scan_in_worker"

    def available(self) -> tuple[bool, str]:
        """Return whether modelscan is installed (and its CLI found, in cli mode)."""
        try:
            from importlib.metadata import version

            ver = version("modelscan")
        except Exception as exc:
            return False, f"modelscan not installed: {exc}"
        if self.mode == "cli" and not _cli_path():
            return False, "modelscan CLI not found"
        return True, f"modelscan {ver}"

    def _scan_cli(self, path: Path) -> ScanResult:
        """Run `modelscan -p PATH -r json -o REPORT` and normalise the report."""
        exe = _cli_path()
        if exe is None:
            return ScanResult.failed("modelscan CLI not found")
        with tempfile.TemporaryDirectory(prefix="modelscan_") as tmp:
            report_path = Path(tmp) / "report.json"
            cmd = [exe, "-p", str(path.resolve()), "-r", "json", "-o", str(report_path), "--show-skipped"]
            proc, seconds = run_cli(cmd, self.timeout, cwd=tmp)
            if not report_path.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
                return ScanResult.failed(f"modelscan exit {proc.returncode}, no report: {tail[0][:300]}", seconds)
            data = normalise_report(json.loads(report_path.read_text()))
        data["findings"] = [*data.get("findings", []), f"exit code {proc.returncode}"]
        result = ScanResult.from_dict(data)
        result.seconds = seconds
        return result
