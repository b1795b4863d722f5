"""The Weights-Only Unpickler (`torch.load(path, weights_only=True)`) as a scanner, in a throwaway process.

This is the one scanner that reads a file with an unpickler (torch's restricted one, which only
rebuilds tensors, containers and allow-listed globals). It therefore runs in a fresh subprocess per
file, behind an audit hook installed after torch is imported: any attempt to start a process, open a
socket, load a native library, or open a file for writing kills the child at once (exit code
`AUDIT_EXIT`) and the file counts as malicious. The hook is `safepickle_bench.sandbox.audit.install_audit_hook`
(the label oracle's, whose `on_event` we make exit at once) when that module exists, otherwise the local `install_fallback_audit_hook`.

Outcome -> verdict, score:
- loaded                                           -> benign, score 0.0
- `pickle.UnpicklingError` ("Weights only load failed", unsupported global/opcode) = rejected
                                                   -> malicious, score 1.0
- the audit hook fired                             -> malicious, score 1.0
- any other exception (not a torch file: "Invalid magic number", EOFError, bad zip...), a crash,
  a timeout                                        -> error
Only meaningful on torch checkpoints: torch rejects every protocol-4 FRAMEd pickle and anything not
built from tensors, so on joblib/sklearn/plain pickles it "detects" benign files. Report it on torch
checkpoints, and say so (`meaningful_for` below).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import Scanner, ScanResult, register
from safepickle_bench.scanners.isolation import REPO_ROOT

AUDIT_EXIT = 87
"""Exit code of the child when the audit hook stopped something."""

meaningful_for = ("torch_zip", "torch_legacy")
"""Container kinds on which this scanner's verdicts mean something."""

BLOCKED_EVENT_PREFIXES: tuple[str, ...] = (
    "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty", "os.kill", "os.putenv",
    "os.remove", "os.rename", "os.rmdir", "os.unlink", "os.chmod", "os.symlink", "os.link", "shutil.",
    "subprocess.Popen", "pty.spawn", "socket.", "webbrowser.open", "ctypes.", "urllib.Request",
    "http.client.connect", "ftplib.", "smtplib.", "telnetlib.", "imaplib.", "poplib.",
)


def install_fallback_audit_hook() -> None:
    """Install an audit hook that kills the process on process, network, native-code or write events."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        blocked = event.startswith(BLOCKED_EVENT_PREFIXES)
        if event == "open" and len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
            blocked = True
        if blocked:
            os.write(2, f"AUDIT_BLOCKED {event} {str(args)[:200]}\n".encode("utf-8", "replace"))
            os._exit(AUDIT_EXIT)

    sys.addaudithook(hook)


def _child(path: str) -> int:
    """Child side: import torch, install the audit hook, load with weights_only=True, print one JSON line."""
    import pickle
    import warnings

    warnings.simplefilter("ignore")
    import torch

    def on_event(label: str, event: str, detail: str) -> None:
        os.write(2, f"AUDIT_BLOCKED {label} {event} {detail[:200]}\n".encode("utf-8", "replace"))
        os._exit(AUDIT_EXIT)

    try:
        from safepickle_bench.sandbox.audit import install_audit_hook  # the label oracle's hook

        install_audit_hook(on_event, block=True)
        hook = "safepickle_bench.sandbox.audit"
    except ImportError:
        install_fallback_audit_hook()
        hook = "fallback"
    out = sys.stdout
    try:
        torch.load(path, weights_only=True, map_location="cpu")
        msg: dict[str, Any] = {"status": "loaded", "hook": hook}
    except pickle.UnpicklingError as exc:
        msg = {"status": "rejected", "error": str(exc), "hook": hook}
    except Exception as exc:
        msg = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "hook": hook}
    out.write(json.dumps(msg) + "\n")
    out.flush()
    return 0


def _rejection_reason(text: str) -> str:
    """Return the informative line of torch's weights-only error message (which global or opcode)."""
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if not line.startswith(boilerplate):
            return line[:300]
    return lines[0][:300] if lines else "rejected"


@register("weights_only")
class WeightsOnlyScanner(Scanner):
    """torch.load(weights_only=True) in a fresh, audit-hooked subprocess per file."""

    modes = ("subprocess",)
    process_per_file = True

    def __init__(self, timeout: float = 60.0, mode: str | None = None, python: str | None = None) -> None:
        """Set the per-file timeout, the mode and the interpreter of the child (default: ours)."""
        super().__init__(timeout=timeout, mode=mode)
        self.python = python or sys.executable

    def available(self) -> tuple[bool, str]:
        """Return whether torch is installed (its version)."""
        try:
            from importlib.metadata import version

            return True, f"torch {version('torch')} weights_only=True (meaningful on torch checkpoints only)"
        except Exception as exc:
            return False, f"torch not installed: {exc}"

    def _scan(self, path: Path) -> ScanResult:
        """Load the file in a throwaway child and map the outcome to a verdict."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["OMP_NUM_THREADS"] = "1"
        cmd = [self.python, "-m", "safepickle_bench.scanners.weights_only", str(path.resolve())]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=self.timeout,
                                  env=env, stdin=subprocess.DEVNULL, cwd=str(REPO_ROOT), check=False)
        except subprocess.TimeoutExpired:
            return ScanResult.failed(f"timeout: no answer within {self.timeout:g} s", self.timeout)
        seconds = time.perf_counter() - start
        if proc.returncode == AUDIT_EXIT:
            blocked = [ln for ln in proc.stderr.splitlines() if ln.startswith("AUDIT_BLOCKED")]
            return ScanResult("malicious", 1.0, blocked or ["audit hook fired"], None, seconds)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = proc.stderr.strip().splitlines()[-1:] or [""]
            return ScanResult.failed(f"child exit {proc.returncode}: {tail[0][:300]}", seconds)
        msg = json.loads(lines[-1])
        if msg["status"] == "loaded":
            return ScanResult("benign", 0.0, ["loaded with weights_only=True"], None, seconds)
        if msg["status"] == "rejected":
            return ScanResult("malicious", 1.0, [f"rejected: {_rejection_reason(msg['error'])}"], None, seconds)
        return ScanResult.failed(f"not loadable by torch: {msg['error'][:300]}", seconds)


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1]))
