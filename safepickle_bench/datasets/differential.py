"""Differential check of the static analyzer against the real loader: every `pickle.find_class` the loader
made (recorded by the oracle's sandbox) must be among the imports the analyzer names for that file.

Names are compared as (module, name) pairs and as dotted `module.name` strings, so `pkg.mod` + `os.system`
(what find_class receives for a dotted STACK_GLOBAL) matches the analyzer's record of either spelling.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safepickle_bench.analysis import analyze_path


@dataclass(frozen=True)
class ImportMiss:
    """One import the loader made that the analyzer did not name."""

    path: str
    module: str
    name: str

    @property
    def qualname(self) -> str:
        """Return `module.name`."""
        return f"{self.module}.{self.name}"


def missed_imports(path: Path | str, find_class: Iterable[Sequence[str]]) -> list[ImportMiss]:
    """Return the loader's find_class (module, name) pairs that the analyzer's imports of `path` lack."""
    analysis = analyze_path(str(path))
    pairs = {(i.module, i.name) for i in analysis.all_imports()}
    dotted = {f"{m}.{n}" for m, n in pairs}
    misses: list[ImportMiss] = []
    for module, name in find_class:
        if (module, name) in pairs or f"{module}.{name}" in dotted:
            continue
        miss = ImportMiss(str(path), module, name)
        if miss not in misses:
            misses.append(miss)
    return misses
