"""pickleguard (PyPI `pickleguard`, imported as `pickle_scanner`) behind our Scanner interface.

Mode: `in-process` only: `pickle_scanner.PickleScanner().scan_file(path)` in an isolated worker (the tool
reads bytes and simulates the stack; it does not unpickle).

Risk level -> verdict, score: pickleguard rates a file SAFE (0), LOW (1-29), MEDIUM (30-59, "unknown
callable detected"), HIGH (60-84, "dangerous pattern or obfuscation") or CRITICAL (85-100, "confirmed
dangerous callable"), with a risk score 0-100.
- level >= `malicious_at` (default HIGH, where its own CLI reports "high risk found") -> malicious
- otherwise, when the scan did not succeed (`success` false)                          -> error
- otherwise                                                                            -> benign
- score = risk score / 100 in every case except error (0.0)
Observed (1.0.1): an empty or unrecognised file comes back SAFE with format `unknown`; we keep that verdict
and name the format in the findings.
"""

from __future__ import annotations

from typing import Any

from safepickle_bench.scanners.base import register
from safepickle_bench.scanners.isolated_scanner import IsolatedScanner

LEVELS: tuple[str, ...] = ("SAFE", "LOW", "MEDIUM", "HIGH", "CRITICAL")
"""pickleguard's risk levels, lowest first (their enum values are these positions)."""


def scan_in_worker(path: str, malicious_at: str = "HIGH") -> dict[str, Any]:
    """Scan one file with pickleguard's Python API and return a normalised ScanResult dict."""
    from pickle_scanner import PickleScanner

    result = PickleScanner().scan_file(path)
    report = result.report
    level = report.risk_level.name
    findings = [f"risk {level} {report.risk_score}/100, format {report.format}"]
    findings += [f"{f.rule}: {f.message}" for f in report.findings][:20]
    findings += [f"error: {e}" for e in report.errors][:5]
    score = float(report.risk_score) / 100.0
    if LEVELS.index(level) >= LEVELS.index(malicious_at):
        return {"verdict": "malicious", "score": score, "findings": findings}
    if not result.success:
        return {"verdict": "error", "score": 0.0, "findings": findings, "error": str(result.error)[:1000]}
    return {"verdict": "benign", "score": score, "findings": findings}


@register("pickleguard")
class PickleguardScanner(IsolatedScanner):
    """pickleguard via its Python API in a worker process."""

    modes = ("in-process",)
    worker_target = "safepickle_bench.scanners.pickleguard_scanner:scan_in_worker"

    def __init__(self, timeout: float = 60.0, mode: str | None = None, malicious_at: str = "HIGH",
                 memory_limit_mb: int | None = None) -> None:
        """Set timeout, mode and the pickleguard risk level from which a file counts as malicious."""
        super().__init__(timeout=timeout, mode=mode, memory_limit_mb=memory_limit_mb)
        if malicious_at not in LEVELS:
            raise ValueError(f"malicious_at must be one of {LEVELS}, got {malicious_at!r}")
        self.malicious_at = malicious_at

    def available(self) -> tuple[bool, str]:
        """Return whether pickleguard is installed."""
        try:
            from importlib.metadata import version

            return True, f"pickleguard {version('pickleguard')}"
        except Exception as exc:
            return False, f"pickleguard not installed: {exc}"

    def worker_kwargs(self) -> dict[str, Any]:
        """Pass the malicious risk level to the worker."""
        return {"malicious_at": self.malicious_at}
