"""picklescan (mmaitre314, the scanner Hugging Face runs) behind our Scanner interface.

Modes: `in-process` = `picklescan.scanner.scan_file_path(path, strict)` in an isolated worker;
`cli` = `picklescan -p PATH` (exit 0 clean, 1 infected, 2 error) as one process per file.

Severity -> verdict, score (both modes):
- any global rated `dangerous` (or an infected file / exit 1)  -> malicious, score 1.0
- only `suspicious` globals (unknown to its lists)              -> benign, score 0.5
  (picklescan itself does not count them as infected; `strict=True` promotes them to dangerous)
- only `innocuous` globals or none                              -> benign, score 0.0
- `scan_err` without a dangerous global, an exception, exit 2   -> error
Observed (1.0.5): a parse failure is only logged as a warning and the file comes back clean (random
bytes are "benign"); we keep that verdict and add the warning to the findings. An empty file raises
OSError -> error.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import ScanResult, register
from safepickle_bench.scanners.isolated_scanner import IsolatedScanner
from safepickle_bench.scanners.isolation import run_cli

SCORE_DANGEROUS = 1.0
SCORE_SUSPICIOUS = 0.5


def scan_in_worker(path: str, strict: bool = False) -> dict[str, Any]:
    """Scan one file with picklescan's Python API and return a normalised ScanResult dict."""
    from picklescan.scanner import SafetyLevel, scan_file_path

    warnings: list[str] = []

    class _Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    log = logging.getLogger("picklescan")
    handler = _Capture()
    log.addHandler(handler)
    try:
        res = scan_file_path(path, strict=strict)
    finally:
        log.removeHandler(handler)
    dangerous = [f"dangerous: {g.module}.{g.name}" for g in res.globals if g.safety == SafetyLevel.Dangerous]
    suspicious = [f"suspicious: {g.module}.{g.name}" for g in res.globals if g.safety == SafetyLevel.Suspicious]
    findings = dangerous + suspicious + [f"warning: {w}" for w in warnings if not w.endswith("FOUND")]
    if dangerous or res.infected_files:
        return {"verdict": "malicious", "score": SCORE_DANGEROUS, "findings": findings}
    if res.scan_err:
        return {"verdict": "error", "score": 0.0, "findings": findings, "error": "picklescan reported scan_err"}
    return {"verdict": "benign", "score": SCORE_SUSPICIOUS if suspicious else 0.0, "findings": findings}


def _cli_path() -> str | None:
    """Return the picklescan executable next to our interpreter, or on PATH."""
    local = Path(sys.executable).with_name("picklescan")
    return str(local) if local.exists() else shutil.which("picklescan")


@register("picklescan")
class PicklescanScanner(IsolatedScanner):
    """picklescan via its Python API (worker) or its CLI."""

    modes = ("in-process", "cli")
    worker_target = "safepickle_bench.scanners.picklescan_scanner:scan_in_worker"

    def __init__(self, timeout: float = 60.0, mode: str | None = None, strict: bool = False,
                 memory_limit_mb: int | None = None) -> None:
        """Set timeout, mode and picklescan's `strict` (suspicious counts as dangerous)."""
        super().__init__(timeout=timeout, mode=mode, memory_limit_mb=memory_limit_mb)
        self.strict = strict

    def available(self) -> tuple[bool, str]:
        """Return whether picklescan is importable (and its CLI found, in cli mode)."""
        try:
            from importlib.metadata import version

            ver = version("picklescan")
        except Exception as exc:
            return False, f"picklescan not installed: {exc}"
        if self.mode == "cli" and not _cli_path():
            return False, "picklescan CLI not found"
        return True, f"picklescan {ver}"

    def worker_kwargs(self) -> dict[str, Any]:
        """Pass `strict` to the worker."""
        return {"strict": self.strict}

    def _scan_cli(self, path: Path) -> ScanResult:
        """Run `picklescan -p PATH` and map its exit code and output."""
        exe = _cli_path()
        if exe is None:
            return ScanResult.failed("picklescan CLI not found")
        cmd = [exe, "-p", str(path)] + (["--strict"] if self.strict else [])
        proc, seconds = run_cli(cmd, self.timeout)
        out = proc.stdout + proc.stderr
        found = re.findall(r"(dangerous|suspicious) import '([^']*)' FOUND", out)
        findings = [f"{kind}: {name.replace(' ', '.')}" for kind, name in found]
        findings += [f"warning: {m}" for m in re.findall(r"WARNING: (.*)", out)]
        if proc.returncode == 1:
            return ScanResult("malicious", SCORE_DANGEROUS, findings, None, seconds)
        if proc.returncode == 0:
            score = SCORE_SUSPICIOUS if any(k == "suspicious" for k, _ in found) else 0.0
            return ScanResult("benign", score, findings, None, seconds)
        tail = out.strip().splitlines()[-1:] or [""]
        return ScanResult("error", 0.0, findings, f"picklescan exit {proc.returncode}: {tail[0][:300]}", seconds)
