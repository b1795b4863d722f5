"""The description of one sandboxed loader: what to pre-import, how to prepare a file, how to load it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def read_bytes(path: str) -> bytes:
    """Return a file's bytes (the default `prepare` step)."""
    with open(path, "rb") as f:
        return f.read()


def pass_path(path: str) -> str:
    """Return the path unchanged (for loaders that open the file themselves)."""
    return path


@dataclass(frozen=True)
class LoaderSpec:
    """A loader run in the sandbox child: `prepare(path)` runs unarmed, `load(prepared)` runs behind the hook."""

    load: Callable[[Any], Any]
    prepare: Callable[[str], Any] = pass_path
    preimport: tuple[str, ...] = field(default_factory=tuple)
    """Modules imported before the hook is armed (their import-time code is not the file's)."""
