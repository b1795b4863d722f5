"""fickling (Trail of Bits) behind our Scanner interface.

Mode: `in-process` only (fickling's CLI has no scan-a-zip mode); the API runs in an isolated worker.
Zip files (PyTorch checkpoints) go to `fickling.scan_zip_archive` (it scans members named .pkl,
.pickle or .bin), everything else to `fickling.scan_file(path, graceful=True)`.

Severity -> verdict, score: fickling rates 0 LIKELY_SAFE, 1 POSSIBLY_UNSAFE, 2 SUSPICIOUS,
3 LIKELY_UNSAFE, 4 LIKELY_OVERTLY_MALICIOUS, 5 OVERTLY_MALICIOUS (max over zip members).
- severity >= `malicious_at` (default 4)      -> malicious
- otherwise, when fickling reported errors    -> error (it could not parse what it was given)
- otherwise                                   -> benign
- score = severity / 5 in every case except error (0.0)
Why 4: every non-stdlib import (e.g. `torch._utils._rebuild_tensor_v2` in any torch checkpoint) is
rated 3, so 3 would flag every model. Observed (0.1.12): unparseable input and a zip without pickle
members come back as SUSPICIOUS (2) *with* an error -> error.
"""

from __future__ import annotations

import zipfile
from typing import Any

from safepickle_bench.scanners.base import register
from safepickle_bench.scanners.isolated_scanner import IsolatedScanner

MAX_SEVERITY = 5


def scan_in_worker(path: str, malicious_at: int = 4) -> dict[str, Any]:
    """Scan one file with fickling's Python API and return a normalised ScanResult dict."""
    import fickling

    if zipfile.is_zipfile(path):
        members = fickling.scan_zip_archive(path, graceful=True)
        if not members:
            return {"verdict": "error", "score": 0.0, "findings": [],
                    "error": "zip archive without .pkl/.pickle/.bin member: fickling scanned nothing"}
        results = list(members.items())
    else:
        results = [("", fickling.scan_file(path, graceful=True))]
    severity = 0
    findings: list[str] = []
    errors: list[str] = []
    for member, res in results:
        level = int(res.severity.value[0])
        severity = max(severity, level)
        where = f"{member}: " if member else ""
        for analysis in res.results:
            text = analysis.to_dict().get("analysis", "") if hasattr(analysis, "to_dict") else str(analysis)
            findings += [f"{where}{line}" for line in str(text).splitlines() if line.strip()][:20]
        errors += [f"{where}{e}" for e in res.errors]
    findings.insert(0, f"max severity {severity} / {MAX_SEVERITY}")
    if severity >= malicious_at:
        return {"verdict": "malicious", "score": severity / MAX_SEVERITY, "findings": findings + errors}
    if errors:
        return {"verdict": "error", "score": 0.0, "findings": findings, "error": "; ".join(errors)[:1000]}
    return {"verdict": "benign", "score": severity / MAX_SEVERITY, "findings": findings}


@register("fickling")
class FicklingScanner(IsolatedScanner):
    """fickling via its Python API in a worker process."""

    modes = ("in-process",)
    worker_target = "safepickle_bench.scanners.fickling_scanner:scan_in_worker"

    def __init__(self, timeout: float = 60.0, mode: str | None = None, malicious_at: int = 4,
                 memory_limit_mb: int | None = None) -> None:
        """Set timeout, mode and the fickling severity (0-5) from which a file counts as malicious."""
        super().__init__(timeout=timeout, mode=mode, memory_limit_mb=memory_limit_mb)
        self.malicious_at = int(malicious_at)

    def available(self) -> tuple[bool, str]:
        """Return whether fickling is installed."""
        try:
            from importlib.metadata import version

            return True, f"fickling {version('fickling')}"
        except Exception as exc:
            return False, f"fickling not installed: {exc}"

    def worker_kwargs(self) -> dict[str, Any]:
        """Pass the malicious threshold to the worker."""
        return {"malicious_at": self.malicious_at}
