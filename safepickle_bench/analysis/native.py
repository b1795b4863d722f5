"""Access to the compiled fast paths (`_native`), or None when they are not built or are switched off.

`SAFEPICKLE_PURE_PYTHON=1` in the environment switches them off: everything then runs on the pure-Python
reader, which is the reference the compiled one is tested against.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType


def load_native() -> ModuleType | None:
    """Return the compiled `_native` module, or None when it is missing or SAFEPICKLE_PURE_PYTHON is set."""
    if os.environ.get("SAFEPICKLE_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from safepickle_bench.analysis import _native  # type: ignore[attr-defined]
    except ImportError:
        return None
    return _native


@contextmanager
def pure_python() -> Iterator[None]:
    """Switch the compiled fast paths off inside the block (the analyzer then runs its pure-Python reference)."""
    from safepickle_bench.analysis import containers, symbolic

    saved = (symbolic._NATIVE, containers._NATIVE)
    symbolic._NATIVE = containers._NATIVE = None
    try:
        yield
    finally:
        symbolic._NATIVE, containers._NATIVE = saved
