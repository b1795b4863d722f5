"""Entry point of the throwaway sandbox process: pre-import, arm the audit hook, load requested files one by one.

Protocol (JSON Lines over two inherited pipe file descriptors): the parent writes `{"path", "loader"}`
requests; the child answers `{"ready": true}` once, then one result per request:
`{"path", "loader", "event", "raw_event", "detail", "loaded", "error", "seconds", "find_class"}`.

Per file, unarmed: the file's sidecar (`sandbox.sidecar`) puts its throwaway package folders on sys.path,
then the loader's `prepare` runs; armed: `load`. The generated package's modules are imported by the load
itself (find_class), behind the hook: their import is not a payload (the hook treats exec/compile under an
import frame as benign, and `-B` keeps the import from writing a .pyc). `find_class` lists every
`pickle.find_class` audit event of the load, in order, up to and including the blocked one.
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
from safepickle_bench.sandbox.sidecar import SysPathSession
from safepickle_bench.sandbox.spec import LoaderSpec

MAX_FIND_CLASS = 10_000
"""Most find_class events recorded per file (a file importing more is cut there)."""


def _short_error(exc: BaseException) -> str:
    """Return `Type: message`, truncated."""
    return f"{type(exc).__name__}: {exc}"[:400]


def _run_one(spec: LoaderSpec, path: str, state: dict[str, Any], session: SysPathSession) -> dict[str, Any]:
    """Apply the sidecar and prepare (unarmed), load (armed), forget the sidecar; return the result record."""
    state["first"] = None
    state["find_class"] = []
    t0 = time.perf_counter()
    loaded, error = False, None
    try:
        state["armed"] = False
        try:
            session.enter(path)
            prepared = spec.prepare(path)
        finally:
            state["armed"] = True
        spec.load(prepared)
        loaded = True
    except BaseException as exc:  # noqa: BLE001 - every failure of a hostile load is a result, not a crash
        error = _short_error(exc)
    finally:
        state["armed"] = False
        try:
            session.leave()
        finally:
            state["armed"] = True
    first = state["first"]
    return {
        "path": path,
        "event": first[0] if first else "",
        "raw_event": first[1] if first else "",
        "detail": first[2] if first else "",
        "loaded": loaded,
        "error": error,
        "seconds": round(time.perf_counter() - t0, 4),
        "find_class": state["find_class"],
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
    state: dict[str, Any] = {"armed": False, "first": None, "find_class": []}

    def on_event(label: str, event: str, detail: str) -> None:
        if state["first"] is None:
            state["first"] = (label, event, detail)

    def record_find_class(event: str, args: tuple[Any, ...]) -> None:
        # installed before the blocking hook, so it also sees a find_class that the blocking hook stops
        if (event == "pickle.find_class" and state["armed"] and state["first"] is None
                and len(state["find_class"]) < MAX_FIND_CLASS and len(args) >= 2):
            state["find_class"].append([str(args[0]), str(args[1])])

    sys.addaudithook(record_find_class)
    install_audit_hook(on_event, armed=lambda: state["armed"])
    session = SysPathSession()
    results.write(json.dumps({"ready": True, "preimport_errors": preimport_errors}) + "\n")
    results.flush()
    state["armed"] = True
    for line in requests:
        request = json.loads(line)
        spec = registry.get(request["loader"])
        if spec is None:
            record = {"path": request["path"], "event": "", "raw_event": "", "detail": "", "loaded": False,
                      "error": f"unknown loader {request['loader']!r}", "seconds": 0.0, "find_class": []}
        else:
            record = _run_one(spec, request["path"], state, session)
        record["loader"] = request["loader"]
        results.write(json.dumps(record) + "\n")
        results.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
