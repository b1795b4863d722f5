"""The import taxonomy: maps an imported or called global to a category from `import_taxonomy.yaml`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TAXONOMY_PATH = Path(__file__).with_name("import_taxonomy.yaml")
UNKNOWN = "unknown_module"
BENIGN = "benign_ml"


@dataclass
class Taxonomy:
    """Categories of globals, matched by longest dotted prefix after alias normalisation."""

    categories: tuple[str, ...]
    """Category names in file order, followed by `unknown_module`."""
    dangerous: frozenset[str]
    prefixes: dict[str, str]
    """Dotted prefix -> category."""
    aliases: dict[str, str]
    """Leading module component -> the spelling it stands for (`posix` -> `os`)."""
    descriptions: dict[str, str] = field(default_factory=dict)
    suspicious_literals: frozenset[str] = frozenset()
    """String literals that name a dangerous module or function (`system`, `eval`, `__import__`...)."""
    _memo: dict[str, str] = field(default_factory=dict, repr=False)

    def normalise(self, qualname: str) -> str:
        """Return `qualname` with its leading module component rewritten through the aliases."""
        head, dot, rest = qualname.partition(".")
        canonical = self.aliases.get(head)
        return f"{canonical}{dot}{rest}" if canonical is not None else qualname

    def is_alias(self, qualname: str) -> bool:
        """Return whether `qualname` is spelt through an alias module (`posix.system`, `__builtin__.eval`)."""
        return qualname.partition(".")[0] in self.aliases

    def categorize(self, qualname: str) -> str:
        """Return the category of a dotted global (`module.name`), `unknown_module` when none matches."""
        cat = self._memo.get(qualname)
        if cat is not None:
            return cat
        name = self.normalise(qualname.strip())
        cat = UNKNOWN
        while name:
            hit = self.prefixes.get(name)
            if hit is not None:
                cat = hit
                break
            cut = name.rfind(".")
            if cut < 0:
                break
            name = name[:cut]
        if len(self._memo) < 100_000:
            self._memo[qualname] = cat
        return cat

    def categorize_import(self, module: str, name: str) -> str:
        """Return the category of the global `name` imported from `module`."""
        return self.categorize(f"{module}.{name}")

    @staticmethod
    def is_unresolved(qualname: str) -> bool:
        """Return whether the analyzer could not name this global or callable (`?`, `?.?`, empty)."""
        return not qualname or "?" in qualname

    def is_dangerous(self, category: str) -> bool:
        """Return whether a category can run code or touch the system when called."""
        return category in self.dangerous


def parse_taxonomy(data: dict) -> Taxonomy:
    """Build a Taxonomy from the parsed YAML mapping, rejecting an entry listed under two categories."""
    prefixes: dict[str, str] = {}
    dangerous: set[str] = set()
    descriptions: dict[str, str] = {}
    names: list[str] = []
    for cat, spec in data["categories"].items():
        if cat == UNKNOWN:
            raise ValueError(f"{UNKNOWN!r} is implicit and must not be listed")
        names.append(cat)
        descriptions[cat] = str(spec.get("description", ""))
        if spec.get("dangerous", False):
            dangerous.add(cat)
        for entry in spec.get("entries", []):
            entry = str(entry).strip()
            if entry in prefixes:
                raise ValueError(f"taxonomy entry {entry!r} is in {prefixes[entry]!r} and {cat!r}")
            prefixes[entry] = cat
    names.append(UNKNOWN)
    descriptions[UNKNOWN] = "matches no entry: custom classes, __main__, unlisted builtins and modules"
    aliases = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}
    literals = frozenset(str(x) for x in data.get("suspicious_literals") or ())
    return Taxonomy(tuple(names), frozenset(dangerous), prefixes, aliases, descriptions, literals)


@lru_cache(maxsize=4)
def load_taxonomy(path: str | None = None) -> Taxonomy:
    """Load (once per process) the taxonomy YAML shipped with the package, or the one at `path`."""
    with open(path or TAXONOMY_PATH, encoding="utf-8") as fh:
        return parse_taxonomy(yaml.safe_load(fh))
