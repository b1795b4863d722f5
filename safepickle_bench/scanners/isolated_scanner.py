"""Base class for third-party scanners run out of process: in a persistent worker or as one CLI per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from safepickle_bench.scanners.base import Scanner, ScanResult
from safepickle_bench.scanners.isolation import IsolatedWorker, ScanTimeout, ToolError, WorkerCrashed


class IsolatedScanner(Scanner):
    """A scanner whose tool runs in a child process: `in-process` API via a worker, or `cli` per file."""

    worker_target: ClassVar[str] = ""
    """`module:function` the worker calls with (path, **worker_kwargs) and that returns a ScanResult dict."""

    def __init__(
        self, timeout: float = 60.0, mode: str | None = None, memory_limit_mb: int | None = None
    ) -> None:
        """Set timeout, mode and an optional address-space cap (MiB) for the child processes."""
        super().__init__(timeout=timeout, mode=mode)
        self.memory_limit_mb = memory_limit_mb
        self._worker: IsolatedWorker | None = None

    def worker_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments passed to the worker function (JSON-serialisable)."""
        return {}

    def worker_python(self) -> str | None:
        """Return the interpreter the worker runs in (None = ours)."""
        return None

    def worker_env(self) -> dict[str, str] | None:
        """Return the worker's environment (None = ours)."""
        return None

    def _get_worker(self) -> IsolatedWorker:
        """Return the (lazily created) worker."""
        if self._worker is None:
            self._worker = IsolatedWorker(
                self.worker_target, self.worker_kwargs(), python=self.worker_python(), env=self.worker_env(),
                memory_limit_mb=self.memory_limit_mb,
            )
        return self._worker

    def _scan(self, path: Path) -> ScanResult:
        """Dispatch to the worker (`in-process`) or to `_scan_cli` (`cli`)."""
        if self.mode == "cli":
            try:
                return self._scan_cli(path)
            except ScanTimeout as exc:
                return ScanResult.failed(f"timeout: {exc}", self.timeout)
        try:
            data, seconds = self._get_worker().call(path, self.timeout)
        except ScanTimeout as exc:
            return ScanResult.failed(f"timeout: {exc}", self.timeout)
        except WorkerCrashed as exc:
            return ScanResult.failed(f"crash: {exc}")
        except ToolError as exc:
            return ScanResult.failed(f"exception: {exc}")
        result = ScanResult.from_dict(data)
        result.seconds = seconds
        return result

    def _scan_cli(self, path: Path) -> ScanResult:
        """Scan one file with the tool's command line (subclasses that support `cli` override this)."""
        raise NotImplementedError(f"{self.name} has no CLI mode")

    def close(self) -> None:
        """Stop the worker process."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None
