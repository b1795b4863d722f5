"""Access to the compiled fast paths (`_native`), or None when they are not built or are switched off.

`SAFEPICKLE_PURE_PYTHON=1` in the environment switches them off: everything then runs on the pure-Python
code, which is the reference the compiled paths are tested against.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_USERS: list[str] = []
"""Modules holding the compiled module as their `_NATIVE` global (switched off together by pure_python)."""


def load_native(user: str | None = None) -> ModuleType | None:
    """Return the compiled `_native` module, or None when it is missing or SAFEPICKLE_PURE_PYTHON is set.

    `user` (a module's `__name__`) registers a module that keeps the result as its `_NATIVE` global.
    """
    if user is not None and user not in _USERS:
        _USERS.append(user)
    if os.environ.get("SAFEPICKLE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from safepickle_bench.analysis import _native  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _native


@contextmanager
def pure_python() -> Iterator[None]:
    """Switch the compiled fast paths off inside the block (the pure-Python reference code runs instead)."""
    modules = [sys.modules[name] for name in _USERS if name in sys.modules]
    saved = [m._NATIVE for m in modules]  # type: ignore[attr-defined]
    for m in modules:
        m._NATIVE = None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for m, value in zip(modules, saved, strict=True):
            m._NATIVE = value  # type: ignore[attr-defined]
