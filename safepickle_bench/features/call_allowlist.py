"""The allow-list of data reconstructors (`call_allowlist.yaml`): callables benign library pickles call."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

ALLOWLIST_PATH = Path(__file__).with_name("call_allowlist.yaml")


@dataclass(frozen=True)
class CallAllowList:
    """Exact dotted names of data reconstructors, each with the reason it is allowed."""

    reasons: dict[str, str]

    def __contains__(self, qualname: object) -> bool:
        """Return whether a (normalised) dotted name is an allow-listed reconstructor."""
        return qualname in self.reasons


def parse_allowlist(data: dict) -> CallAllowList:
    """Build the allow-list from the parsed YAML mapping; an entry without a reason is rejected."""
    reasons: dict[str, str] = {}
    for name, reason in (data.get("entries") or {}).items():
        if not str(reason or "").strip():
            raise ValueError(f"allow-list entry {name!r} gives no reason")
        reasons[str(name).strip()] = str(reason)
    return CallAllowList(reasons)


@lru_cache(maxsize=4)
def load_allowlist(path: str | None = None) -> CallAllowList:
    """Load (once per process) the allow-list shipped with the package, or the one at `path`."""
    with open(path or ALLOWLIST_PATH, encoding="utf-8") as fh:
        return parse_allowlist(yaml.safe_load(fh))
