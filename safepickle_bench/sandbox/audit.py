"""Audit-hook classification of dangerous runtime events, and the hook that records and blocks them.

An event is *dangerous* when it is an action a model file has no business causing while it loads:

| label               | audit event(s)                                                          |
|---------------------|-------------------------------------------------------------------------|
| `os.system`         | `os.system`                                                             |
| `os.exec`           | `os.exec` (execv*, execl*)                                              |
| `os.posix_spawn`    | `os.posix_spawn`                                                        |
| `os.spawn`          | `os.spawn`                                                              |
| `os.fork`           | `os.fork`, `os.forkpty` (reported as `os.fork` / `os.forkpty`)          |
| `os.kill`           | `os.kill`, `os.killpg`                                                  |
| `subprocess.Popen`  | `subprocess.Popen`                                                      |
| `socket.*`          | `socket.connect`, `socket.getaddrinfo`, `socket.gethostbyname`, `socket.gethostbyaddr`, `socket.sendto`, `socket.sendmsg` |
| `webbrowser.open`   | `webbrowser.open`                                                       |
| `urllib.Request`    | `urllib.Request`                                                        |
| `ctypes.dlopen`     | `ctypes.dlopen` outside an import (loading a native library runs its constructors) |
| `open:w`            | `open` of a path (not a file descriptor, not os.devnull) with a write/append/create mode or `os.open` write flags |
| `os.remove` ...     | `os.remove`, `os.rename`, `os.rmdir`, `os.truncate`, `os.chmod`, `shutil.rmtree` |
| `exec` / `compile`  | `exec` / `compile` of code that does not come from an import or from a known stdlib code generator (see below) |
| `sys.addaudithook`  | a second audit hook being installed (tampering with the sandbox)        |
| `builtins.input`    | reading the console (would hang the loader)                             |
| `find_class:nt.system` ... | rule event: `pickle.find_class` of a Windows-only dangerous global (`nt.system`, ...) on a platform where that module does not exist, so the import attempt is the last observable step |

Not dangerous by themselves: `import`, `pickle.find_class` (every global raises it), `marshal.loads`
(every `.pyc` import raises it), `code.__new__` (cloudpickle and dill build code objects without running
them), `open` for reading, `object.__setattr__` and friends.

`exec`/`compile` are benign when an `importlib._bootstrap` frame is on the stack (module import) or when the
Python function calling `exec`/`compile`/`eval` lives in a stdlib code generator that builds code from
identifiers only (`collections.namedtuple`, `dataclasses`, `typing`, `enum`) or compiles to an AST only
(`ast.parse`/`ast.literal_eval`, which numpy uses for .npy headers). Everything else, including the
unpickler calling `builtins.exec` directly and gadgets such as `cProfile.run`, `timeit.timeit`,
`code.InteractiveInterpreter.runsource` or `runpy._run_code`, counts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

STATIC_ANALYSIS_FORBIDDEN_EVENTS: tuple[str, ...] = (
    "pickle.find_class",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "subprocess.Popen",
    "socket.",
    "webbrowser.open",
    "marshal.loads",
    "code.__new__",
)
"""Audit-event prefixes that must never fire while the static analyzer reads a file (tests and fuzz target):
importing a name from a pickle, spawning, networking, loading code."""

PROCESS_EVENTS: dict[str, str] = {
    "os.system": "os.system",
    "os.exec": "os.exec",
    "os.posix_spawn": "os.posix_spawn",
    "os.spawn": "os.spawn",
    "os.fork": "os.fork",
    "os.forkpty": "os.forkpty",
    "os.startfile": "os.startfile",
    "os.kill": "os.kill",
    "os.killpg": "os.kill",
    "subprocess.Popen": "subprocess.Popen",
}
NETWORK_EVENTS: frozenset[str] = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sendmsg",
    }
)
OTHER_EVENTS: frozenset[str] = frozenset(
    {
        "webbrowser.open",
        "urllib.Request",
        "ctypes.dlopen",
        "os.remove",
        "os.rename",
        "os.rmdir",
        "os.truncate",
        "os.chmod",
        "shutil.rmtree",
        "sys.addaudithook",
        "builtins.input",
    }
)
WINDOWS_ONLY_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("nt", "system"), ("nt", "spawnv"), ("nt", "spawnve"), ("nt", "startfile"), ("nt", "execv"), ("nt", "popen")}
)
"""Dangerous globals whose module only exists on Windows: their find_class is the rule event on POSIX."""

DANGEROUS_LABELS: tuple[str, ...] = tuple(
    sorted(
        set(PROCESS_EVENTS.values())
        | NETWORK_EVENTS
        | OTHER_EVENTS
        | {"open:w", "exec", "compile"}
        | {f"find_class:{m}.{n}" for m, n in WINDOWS_ONLY_GLOBALS}
    )
)
"""Every label `classify` can return."""

_CODEGEN_FILES: tuple[str, ...] = (
    os.sep + os.path.join("collections", "__init__.py"),
    os.sep + "dataclasses.py",
    os.sep + "typing.py",
    os.sep + "enum.py",
    os.sep + "ast.py",  # ast.parse / ast.literal_eval compile to an AST only (numpy reads .npy headers so)
)
_IMPORT_FRAME_FILES: tuple[str, ...] = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class BlockedEvent(BaseException):
    """Raised by the audit hook to abort a dangerous action (BaseException so `except Exception` can't eat it)."""


def _frame_is_import_or_codegen(depth: int) -> bool:
    """Return True when the exec/compile whose caller is `depth` frames above `classify` is an import or codegen."""
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:  # raised from C with no Python caller at all
        return False
    if frame.f_code.co_filename.endswith(_CODEGEN_FILES):
        return True
    while frame is not None:
        if frame.f_code.co_filename in _IMPORT_FRAME_FILES:
            return True
        frame = frame.f_back
    return False


def _open_is_write(args: tuple[Any, ...]) -> bool:
    """Return True when an `open` audit event opens a file path for writing.

    Wrapping an existing descriptor (`io.open(fd, 'wb')`, what subprocess does with its pipes) and opening
    os.devnull are not writes to the file system.
    """
    path = args[0] if args else None
    if not isinstance(path, (str, bytes, os.PathLike)) or os.fsdecode(path) == os.devnull:
        return False
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def classify(event: str, args: tuple[Any, ...], depth: int = 2) -> str | None:
    """Return the dangerous-event label for an audit event, or None when it is not dangerous.

    `depth` is how many Python frames separate this call from the code that raised the event
    (2 when called from an audit hook: classify <- hook <- caller).
    """
    if event in PROCESS_EVENTS:
        return PROCESS_EVENTS[event]
    if event == "ctypes.dlopen":  # extension libraries (xgboost, lightgbm) dlopen while their module imports
        return None if _frame_is_import_or_codegen(depth) else event
    if event in NETWORK_EVENTS or event in OTHER_EVENTS:
        return event
    if event == "open":
        return "open:w" if _open_is_write(args) else None
    if event in ("exec", "compile"):
        return None if _frame_is_import_or_codegen(depth) else event
    if event == "pickle.find_class" and sys.platform != "win32" and len(args) >= 2:
        key = (str(args[0]), str(args[1]))
        if key in WINDOWS_ONLY_GLOBALS:
            return f"find_class:{key[0]}.{key[1]}"
    return None


def describe_args(args: tuple[Any, ...], limit: int = 200) -> str:
    """Return a short, safe text rendering of an audit event's arguments."""
    parts = []
    for a in args:
        if hasattr(a, "co_filename") and hasattr(a, "co_name"):
            parts.append(f"<code {a.co_name} file={a.co_filename}>")
        else:
            try:
                parts.append(repr(a)[:limit])
            except Exception:  # a repr that fails must not break the hook
                parts.append(f"<{type(a).__name__}>")
    return ", ".join(parts)[:limit]


def install_audit_hook(
    on_event: Callable[[str, str, str], None],
    *,
    block: bool = True,
    armed: Callable[[], bool] | None = None,
) -> None:
    """Install a process-wide audit hook that reports (label, event, detail) of dangerous events and blocks them.

    `armed`, when given, is asked before each classification: while it returns False every event passes
    (use it to pre-import libraries first). Audit hooks cannot be removed; install once per process.
    """
    in_hook = False

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal in_hook
        if in_hook or (armed is not None and not armed()):
            return
        in_hook = True
        try:
            label = classify(event, args)
            if label is None:
                return
            on_event(label, event, describe_args(args))
        finally:
            in_hook = False
        if block:
            raise BlockedEvent(f"blocked dangerous event {label} ({event})")

    sys.addaudithook(hook)
