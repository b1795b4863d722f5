"""A scanner that hangs, crashes or raises on one file gives an error verdict for it, and the next file goes on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from safepickle_bench.scanners.base import ScanResult
from safepickle_bench.scanners.isolated_scanner import IsolatedScanner
from safepickle_bench.scanners.weights_only import AUDIT_EXIT

FAKE_TOOL = textwrap.dedent(
    """
    import os, time
    def scan(path):
        path = os.path.basename(path)
        if "slow" in path:
            time.sleep(60)
        if "crash" in path:
            os._exit(9)
        if "raise" in path:
            raise ValueError("tool choked")
        return {"verdict": "malicious" if "bad" in path else "benign", "score": 0.9 if "bad" in path else 0.1,
                "findings": ["fake"]}
    """
)


class FakeToolScanner(IsolatedScanner):
    """A scanner around a fake tool module that sleeps, crashes or raises depending on the file name."""

    name = "fake_tool"
    worker_target = "fake_tool_mod:scan"

    def __init__(self, tool_dir: Path, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.tool_dir = tool_dir

    def worker_env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.tool_dir)}


def _files(tmp_path: Path, names: list[str]) -> list[Path]:
    out = []
    for n in names:
        (tmp_path / n).write_bytes(b"x")
        out.append(tmp_path / n)
    return out


def test_timeout_crash_and_exception_become_error_verdicts(tmp_path):
    tool = tmp_path / "tool"
    tool.mkdir()
    (tool / "fake_tool_mod.py").write_text(FAKE_TOOL)
    files = _files(tmp_path, ["ok.pkl", "slow.pkl", "bad.pkl", "crash.pkl", "raise.pkl", "ok2.pkl"])
    scanner = FakeToolScanner(tool, timeout=2.0)
    try:
        results = {p.name: scanner.scan(p) for p in files}
    finally:
        scanner.close()
    assert results["ok.pkl"].verdict == "benign"
    assert results["slow.pkl"].verdict == "error" and "timeout" in results["slow.pkl"].error
    assert results["slow.pkl"].seconds == 2.0
    assert results["bad.pkl"].verdict == "malicious"  # a fresh worker after the killed one
    assert results["crash.pkl"].verdict == "error" and "exited with code 9" in results["crash.pkl"].error
    assert results["raise.pkl"].verdict == "error" and "ValueError: tool choked" in results["raise.pkl"].error
    assert results["ok2.pkl"].verdict == "benign"


def test_in_process_seconds_exclude_worker_startup(tmp_path):
    tool = tmp_path / "tool"
    tool.mkdir()
    (tool / "fake_tool_mod.py").write_text(FAKE_TOOL)
    (f,) = _files(tmp_path, ["ok.pkl"])
    scanner = FakeToolScanner(tool, timeout=30)
    try:
        result = scanner.scan(f)
    finally:
        scanner.close()
    assert isinstance(result, ScanResult) and 0 < result.seconds < 0.05


def test_weights_only_fallback_audit_hook_kills_process_start():
    code = (
        "from safepickle_bench.scanners.weights_only import install_fallback_audit_hook as h; h(); "
        "import os; os.system('echo should-not-run'); print('survived')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == AUDIT_EXIT
    assert "should-not-run" not in proc.stdout and "survived" not in proc.stdout
    assert "AUDIT_BLOCKED os.system" in proc.stderr
