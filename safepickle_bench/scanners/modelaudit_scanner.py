"""modelaudit (promptfoo) behind our Scanner interface, run from its own venv.

Mode: `cli` only: `.venvs/modelaudit/bin/modelaudit scan --format json --no-cache -t T PATH`, one fresh
process per file (modelaudit's verdicts change when torch is already imported in its process, and its
venv has no torch). Create the venv with `python -m safepickle_bench.scanners.envs modelaudit`.
Environment of each run: PROMPTFOO_DISABLE_TELEMETRY=1, NO_COLOR=1 and a throwaway HOME (it writes a
config/cache there), removed when the scanner is closed.

Severity -> verdict, score (highest issue severity; modelaudit itself exits 1 on any warning):
- `critical`                     -> malicious, score 1.0
- `warning`                      -> benign, score 0.5 (malicious when `malicious_at: warning`)
- `info` / `debug` / no issue    -> benign, score 0.1 / 0.0 / 0.0
- no critical issue and the report says `has_errors`, or exit code not in {0, 1}, or no JSON -> error
Observed (0.2.54): ~1 s per file of process start-up; every torch checkpoint gets a warning
(NON_ALLOWLISTED_GLOBAL); random bytes named .pkl get warnings (S901 file-type spoofing); an empty .pkl
comes back clean; the issue text says any pickle holding a numpy array is rated a critical
"nested pickle" (verify on the datasets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult, register
from safepickle_bench.scanners.envs import venv_executable
from safepickle_bench.scanners.isolation import ScanTimeout, run_cli

SEVERITY_SCORE: dict[str, float] = {"critical": 1.0, "warning": 0.5, "info": 0.1, "debug": 0.0}
SEVERITY_RANK: dict[str, int] = {"debug": 0, "info": 1, "warning": 2, "critical": 3}


def normalise_report(report: dict[str, Any], returncode: int, malicious_at: str = "critical") -> dict[str, Any]:
    """Map a modelaudit JSON report and exit code to a ScanResult dict."""
    issues = report.get("issues") or []
    levels = [str(i.get("severity", "info")).lower() for i in issues]
    top = max(levels, key=lambda s: SEVERITY_RANK.get(s, 1), default="debug")
    findings = [
        f"{str(i.get('severity', '?'))}: [{i.get('rule_code', '')}] {str(i.get('message', ''))[:300]}"
        for i in sorted(issues, key=lambda i: -SEVERITY_RANK.get(str(i.get("severity", "")).lower(), 1))
    ][:30]
    score = SEVERITY_SCORE.get(top, 0.1)
    if SEVERITY_RANK.get(top, 1) >= SEVERITY_RANK[malicious_at]:
        return {"verdict": "malicious", "score": score, "findings": findings}
    if report.get("has_errors") or returncode not in (0, 1):
        return {"verdict": "error", "score": 0.0, "findings": findings,
                "error": f"modelaudit exit {returncode}, has_errors={report.get('has_errors')}"}
    return {"verdict": "benign", "score": score, "findings": findings}


@register("modelaudit")
class ModelauditScanner(Scanner):
    """modelaudit's CLI from its own venv, one clean process per file."""

    modes = ("cli",)

    def __init__(self, timeout: float = 120.0, mode: str | None = None, malicious_at: str = "critical",
                 executable: str | None = None) -> None:
        """Set timeout, the lowest severity that counts as malicious, and the CLI path (default: venv)."""
        super().__init__(timeout=timeout, mode=mode)
        if malicious_at not in SEVERITY_RANK:
            raise ValueError(f"malicious_at must be one of {sorted(SEVERITY_RANK)}")
        self.malicious_at = malicious_at
        self.executable = Path(executable) if executable else venv_executable("modelaudit")
        self._home: str | None = None

    def available(self) -> tuple[bool, str]:
        """Return whether the modelaudit CLI exists and answers `--version`."""
        if not self.executable.exists():
            return False, (f"{self.executable} missing: run `python -m safepickle_bench.scanners.envs modelaudit`")
        try:
            proc = subprocess.run([str(self.executable), "--version"], capture_output=True, text=True,
                                  timeout=60, env=self._env(), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"modelaudit --version failed: {exc}"
        if proc.returncode != 0:
            return False, f"modelaudit --version exit {proc.returncode}: {proc.stderr.strip()[:200]}"
        return True, proc.stdout.strip()

    def _env(self) -> dict[str, str]:
        """Return the environment of a modelaudit process (no telemetry, private HOME)."""
        if self._home is None:
            self._home = tempfile.mkdtemp(prefix="modelaudit_home_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env.update({"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_COLOR": "1", "HOME": self._home,
                    "XDG_CACHE_HOME": f"{self._home}/.cache", "XDG_CONFIG_HOME": f"{self._home}/.config"})
        return env

    def _scan(self, path: Path) -> ScanResult:
        """Run the CLI on one file and normalise its JSON report."""
        if not self.executable.exists():
            raise ScannerUnavailable(f"{self.executable} missing")
        cmd = [str(self.executable), "scan", "--format", "json", "--no-cache", "-t", str(max(1, int(self.timeout))),
               str(path.resolve())]
        try:
            proc, seconds = run_cli(cmd, self.timeout + 15, env=self._env(), cwd=self._home)
        except ScanTimeout as exc:
            return ScanResult.failed(f"timeout: {exc}", self.timeout)
        try:
            start = proc.stdout.index("{")
            report = json.loads(proc.stdout[start:])
        except ValueError:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            return ScanResult.failed(f"modelaudit exit {proc.returncode}, no JSON: {tail[0][:300]}", seconds)
        result = ScanResult.from_dict(normalise_report(report, proc.returncode, self.malicious_at))
        result.seconds = seconds
        return result

    def close(self) -> None:
        """Remove the throwaway HOME."""
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None
