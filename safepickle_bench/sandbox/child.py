"""Entry point of the throwaway sandbox process: pre-import, arm the audit hook, load requested files one by one.

Protocol (JSON Lines over two inherited pipe file descriptors): the parent writes `{"path", "loader"}`
requests; the child answers `{"ready": true}` once, then one result per request:
`{"path", "loader", "event", "raw_event", "detail", "loaded", "error", "seconds"}`.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
from typing import Any

from safepickle_bench.sandbox.audit import install_audit_hook
from safepickle_bench.sandbox.spec import LoaderSpec


def _short_error(exc: BaseException) -> str:
    """Return `Type: message`, truncated."""
    return f"{type(exc).__name__}: {exc}"[:400]


def _run_one(spec: LoaderSpec, path: str, state: dict[str, Any]) -> dict[str, Any]:
    """Prepare (unarmed) and load (armed) one file, returning its result record."""
    state["first"] = None
    t0 = time.perf_counter()
    loaded, error = False, None
    try:
        state["armed"] = False
        try:
            prepared = spec.prepare(path)
        finally:
            state["armed"] = True
        spec.load(prepared)
        loaded = True
    except BaseException as exc:  # noqa: BLE001 - every failure of a hostile load is a result, not a crash
        error = _short_error(exc)
    first = state["first"]
    return {
        "path": path,
        "event": first[0] if first else "",
        "raw_event": first[1] if first else "",
        "detail": first[2] if first else "",
        "loaded": loaded,
        "error": error,
        "seconds": round(time.perf_counter() - t0, 4),
    }


def main(argv: list[str]) -> None:
    """Run the child: argv = [registry_module, loaders_json, request_fd, result_fd]."""
    registry_name, loaders_json, req_fd, res_fd = argv[0], argv[1], int(argv[2]), int(argv[3])
    registry: dict[str, LoaderSpec] = importlib.import_module(registry_name).SANDBOX_LOADERS
    preimport_errors = {}
    for name in json.loads(loaders_json):
        for module in registry[name].preimport:
            try:
                importlib.import_module(module)
            except Exception as exc:  # a missing optional library becomes an error per file, later
                preimport_errors[module] = _short_error(exc)
    tempfile.gettempdir()  # its first call probes the temp dir by writing a file: do it before arming
    requests = os.fdopen(req_fd, "r", encoding="utf-8")
    results = os.fdopen(res_fd, "w", encoding="utf-8")
    state: dict[str, Any] = {"armed": False, "first": None}

    def on_event(label: str, event: str, detail: str) -> None:
        if state["first"] is None:
            state["first"] = (label, event, detail)

    install_audit_hook(on_event, armed=lambda: state["armed"])
    results.write(json.dumps({"ready": True, "preimport_errors": preimport_errors}) + "\n")
    results.flush()
    state["armed"] = True
    for line in requests:
        request = json.loads(line)
        spec = registry.get(request["loader"])
        if spec is None:
            record = {"path": request["path"], "event": "", "raw_event": "", "detail": "", "loaded": False,
                      "error": f"unknown loader {request['loader']!r}", "seconds": 0.0}
        else:
            record = _run_one(spec, request["path"], state)
        record["loader"] = request["loader"]
        results.write(json.dumps(record) + "\n")
        results.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
