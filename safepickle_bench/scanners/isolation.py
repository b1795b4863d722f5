"""Run third-party scanners out of our process: a persistent worker per scanner, or one CLI process per file.

`IsolatedWorker` starts `python isolation.py ROOT module:function` (this very file, run as a script, so
it works with any interpreter, including a scanner's own venv), which imports the function once and
then answers one JSON line per file. A file that makes the tool hang past the timeout gets the worker
killed and restarted; a crash of the worker (segfault, out of memory, os._exit) is reported with its
exit code and the tail of its stderr. Either way the caller gets an exception it turns into an error
verdict, and the next file gets a fresh worker. The worker's seconds are measured around the function
call only ("in-process" time); `run_cli` times the whole process ("cli" time).

This module imports only the standard library (it must run inside other virtual environments).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from safepickle_bench.paths import IMPORT_ROOT

REPO_ROOT = IMPORT_ROOT
"""The folder holding our package: the worker puts it first on `sys.path`."""


class ScanTimeout(RuntimeError):
    """The scanner did not answer within the per-file timeout."""


class WorkerCrashed(RuntimeError):
    """The worker process died while scanning (its exit code and stderr tail are in the message)."""


class ToolError(RuntimeError):
    """The tool raised an exception while scanning (its type and message are in the message)."""


def _limit_memory(mb: int | None) -> None:
    """Cap the address space of the current (child) process, when a limit is given."""
    if mb:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (mb * 1024 * 1024, mb * 1024 * 1024))


class IsolatedWorker:
    """A long-lived child process that runs `module:function(path, **kwargs) -> dict` per file."""

    def __init__(
        self,
        target: str,
        kwargs: dict[str, Any] | None = None,
        python: str | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 180.0,
        memory_limit_mb: int | None = None,
    ) -> None:
        """Describe the worker; it is started lazily on the first call."""
        self.target = target
        self.kwargs = dict(kwargs or {})
        self.python = python or sys.executable
        self.env = env
        self.startup_timeout = startup_timeout
        self.memory_limit_mb = memory_limit_mb
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._buf = b""
        self.restarts = 0

    # -- process management -------------------------------------------------------------------------
    def _start(self) -> None:
        """Start the worker and wait until it has imported its target."""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the worker's lifetime)
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONUNBUFFERED"] = "1"
        limit = self.memory_limit_mb
        self._proc = subprocess.Popen(
            [self.python, str(Path(__file__).resolve()), str(REPO_ROOT), self.target, json.dumps(self.kwargs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            preexec_fn=(lambda: _limit_memory(limit)) if limit else None,
        )
        self._buf = b""
        msg = self._read_message(self.startup_timeout)
        if not msg.get("ready"):
            err = msg.get("error", "worker did not start")
            self.close()
            raise ToolError(f"worker for {self.target} failed to start: {err}")

    def _stderr_tail(self, n: int = 400) -> str:
        """Return the last characters the worker wrote to stderr."""
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - n))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def _read_message(self, timeout: float) -> dict[str, Any]:
        """Read one JSON line from the worker within `timeout` seconds."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise ScanTimeout(f"no answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                code = self._proc.wait()
                tail = self._stderr_tail()
                self.close()
                raise WorkerCrashed(f"worker exited with code {code}" + (f": {tail}" if tail else ""))
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        """Kill the worker (if running) and release its pipes."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr.close()
            self._stderr = None

    def call(self, path: str | Path, timeout: float) -> tuple[dict[str, Any], float]:
        """Run the target on one file; return (its dict, seconds inside the worker) or raise."""
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self.close()
                self.restarts += 1
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps({"path": str(path)}) + "\n").encode())
            self._proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise WorkerCrashed(f"worker not accepting input: {exc}") from exc
        msg = self._read_message(timeout)
        if not msg.get("ok"):
            raise ToolError(msg.get("error", "unknown error"))
        return msg["result"], float(msg.get("seconds", 0.0))

    def __del__(self) -> None:
        """Make sure no worker outlives its owner."""
        with contextlib.suppress(Exception):
            self.close()


def run_cli(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run one CLI process with a timeout; return it and its wall-clock seconds (raises ScanTimeout)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout, env=env, cwd=cwd,
            stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ScanTimeout(f"{Path(cmd[0]).name} did not finish within {timeout:g} s") from exc
    return proc, time.perf_counter() - start


# ------------------------------------------------------------------------------------ worker side


def _worker_main(argv: list[str]) -> int:
    """Worker loop: import the target, then answer one JSON line per requested path."""
    root, target, kwargs_json = argv[0], argv[1], argv[2]
    here = str(Path(__file__).resolve().parent)  # our module names (base, clamav...) must not shadow others
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]
    if root not in sys.path:
        sys.path.insert(0, root)
    # keep the protocol channel clean: whatever the tool prints goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg, default=str) + "\n")
        proto.flush()

    try:
        module_name, func_name = target.split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        kwargs = json.loads(kwargs_json)
    except Exception as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    send({"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        path = json.loads(line)["path"]
        start = time.perf_counter()
        try:
            result = func(path, **kwargs)
            send({"ok": True, "result": result, "seconds": time.perf_counter() - start})
        except BaseException as exc:  # report everything, including SystemExit from a tool
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "seconds": time.perf_counter() - start})
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
