"""Parent side of the sandbox: run loads of many files in throwaway child processes with per-file timeouts."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from safepickle_bench.paths import IMPORT_ROOT

_IMPORT_ROOT = str(IMPORT_ROOT)
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from safepickle_bench.sandbox.child import main; main(sys.argv[2:])"
)
STARTUP_TIMEOUT = 180.0
"""Seconds a child may take to pre-import its loaders' libraries before the first file."""


@dataclass
class SandboxResult:
    """What happened when one file was loaded in the sandbox."""

    path: str
    loader: str
    event: str
    """Dangerous-event label (see `sandbox.audit`), empty when none was reached."""
    raw_event: str
    detail: str
    loaded: bool
    error: str | None
    seconds: float
    find_class: tuple[tuple[str, str], ...] = ()
    """(module, name) of every `pickle.find_class` audit event of the load, in order, up to the blocked event."""


class _Child:
    """One sandbox child process with its request and result pipes."""

    def __init__(self, registry: str, loaders: Sequence[str], workdir: str, extra_env: dict[str, str]) -> None:
        req_r, self.req_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.stderr = tempfile.TemporaryFile(dir=workdir)  # noqa: SIM115 - lives as long as the child
        env = {
            "HOME": workdir,
            "TMPDIR": workdir,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        env.update(extra_env)
        if "LD_LIBRARY_PATH" in os.environ:
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        # -B: a .pyc written while the hook is armed would count as a dangerous write
        cmd = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, _IMPORT_ROOT, registry, json.dumps(sorted(set(loaders))),
               str(req_r), str(res_w)]
        self.proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.stderr, pass_fds=(req_r, res_w), start_new_session=True,
        )
        os.close(req_r)
        os.close(res_w)
        self.buffer = b""
        self.eof = False

    def send(self, request: dict[str, str]) -> None:
        """Write one request line."""
        os.write(self.req_w, (json.dumps(request) + "\n").encode())

    def receive(self, timeout: float) -> dict | None:
        """Return the next result line, or None on timeout or when the child closed its end."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.res_r], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.res_r, 65536)
            if not chunk:
                self.eof = True
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def stderr_tail(self, n: int = 300) -> str:
        """Return the end of the child's stderr."""
        self.stderr.seek(0, os.SEEK_END)
        size = self.stderr.tell()
        self.stderr.seek(max(0, size - n))
        return self.stderr.read().decode("utf-8", "replace").strip()

    def close(self) -> None:
        """Stop the child (its whole process group) and release its pipes."""
        for fd in (self.req_w, self.res_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.stderr.close()

    def kill(self) -> None:
        """Kill the child's process group at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.close()


def _error_result(path: str, loader: str, error: str) -> SandboxResult:
    """Return a result for a file whose load could not complete in the child."""
    return SandboxResult(path, loader, "", "", "", False, error, 0.0)


def run_sandboxed(
    items: Sequence[tuple[Path | str, str]],
    registry: str,
    *,
    timeout: float = 60.0,
    batch_size: int = 200,
    extra_env: dict[str, str] | None = None,
) -> list[SandboxResult]:
    """Load each (path, loader) in throwaway children behind the audit hook; one result per item, in order.

    `registry` names a module with `SANDBOX_LOADERS: dict[str, LoaderSpec]`. Each child gets a temp HOME and
    cwd (plus `extra_env`), pre-imports the libraries of its batch's loaders, then arms the hook. A file that hangs past
    `timeout` or crashes its child becomes an error result and the remaining files go to a fresh child.
    """
    paths = [str(Path(p).resolve()) for p, _ in items]
    loaders = [loader for _, loader in items]
    results: list[SandboxResult | None] = [None] * len(paths)
    pending = list(range(len(paths)))
    with tempfile.TemporaryDirectory(prefix="spb-sandbox-") as workdir:
        while pending:
            batch = pending[:batch_size]
            child = _Child(registry, [loaders[i] for i in batch], workdir, extra_env or {})
            ready = child.receive(max(STARTUP_TIMEOUT, timeout))
            if ready is None:
                tail = child.stderr_tail()
                child.kill()
                for i in batch:
                    results[i] = _error_result(paths[i], loaders[i], f"sandbox child failed to start: {tail}")
                pending = pending[len(batch):]
                continue
            done = 0
            for i in batch:
                child.send({"path": paths[i], "loader": loaders[i]})
                record = child.receive(timeout)
                done += 1
                if record is None:
                    if child.eof:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            child.proc.wait(timeout=5)
                        reason = f"sandbox child died (rc={child.proc.returncode}): {child.stderr_tail()}"
                    else:
                        reason = f"timeout after {timeout:.0f}s"
                    child.kill()
                    results[i] = _error_result(paths[i], loaders[i], reason)
                    break
                results[i] = SandboxResult(
                    path=paths[i], loader=loaders[i], event=record["event"], raw_event=record["raw_event"],
                    detail=record["detail"], loaded=record["loaded"], error=record["error"],
                    seconds=record["seconds"],
                    find_class=tuple((str(m), str(n)) for m, n in record.get("find_class", ())),
                )
            else:
                child.close()
            pending = pending[done:]
    return [r for r in results if r is not None]
