"""The `imports` group: what the file imports and calls, by taxonomy category (counts do not dilute)."""

from __future__ import annotations

from collections import Counter
from operator import attrgetter

from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features.taxonomy import BENIGN, UNKNOWN, load_taxonomy

NAME = "imports"

_TAXONOMY = load_taxonomy()
CATEGORIES: tuple[str, ...] = _TAXONOMY.categories
DANGEROUS: tuple[str, ...] = tuple(c for c in CATEGORIES if _TAXONOMY.is_dangerous(c))
_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_NCAT = len(CATEGORIES)
_DANGEROUS_MASK = tuple(c in DANGEROUS for c in CATEGORIES)
_BENIGN_INDEX = _CAT_INDEX[BENIGN]

_SUMMARY: dict[str, str] = {
    "n_imports": "globals imported, over every stream",
    "n_distinct_imports": "distinct imported globals (normalised spelling)",
    "n_distinct_modules": "distinct top-level modules imported (normalised spelling)",
    "n_outside_benign": "imports outside every benign ML namespace",
    "n_distinct_outside_benign": "distinct imported globals outside every benign ML namespace",
    "share_outside_benign": "n_outside_benign / n_imports",
    "dangerous_count": "imports in any dangerous category",
    "dangerous_distinct": "distinct imported globals in any dangerous category",
    "dangerous_called": "calls of a callable in any dangerous category",
    "any_dangerous": "1 when any import or call falls in a dangerous category",
    "n_dangerous_categories": "dangerous categories present (imports or calls)",
    "dangerous_outside_first_stream": "dangerous imports in a second stream or a nested pickle",
    "n_alias_spelling": "imports spelt through an alias module (posix, nt, __builtin__, _operator, _pickle...)",
    "n_calls": "calls the loader would make, over every stream",
    "n_unresolved_imports": "imports whose module or name the analyzer could not resolve (`?`)",
    "n_unresolved_calls": "calls whose callable the analyzer could not name (`?`, e.g. results of getattr)",
    "n_calls_outside_benign": "calls of a callable outside every benign ML namespace (resolved or not)",
}
COLUMNS: tuple[str, ...] = (
    *(f"{NAME}__{c}_count" for c in CATEGORIES),
    *(f"{NAME}__{c}_present" for c in CATEGORIES),
    *(f"{NAME}__{c}_called" for c in CATEGORIES),
    *(f"{NAME}__{s}" for s in _SUMMARY),
)
DESCRIPTIONS: dict[str, str] = {
    **{f"{NAME}__{c}_count": f"imports categorised `{c}`: {_TAXONOMY.descriptions[c]}" for c in CATEGORIES},
    **{f"{NAME}__{c}_present": f"1 when any import or call is categorised `{c}`" for c in CATEGORIES},
    **{f"{NAME}__{c}_called": f"calls (REDUCE, NEWOBJ, BUILD...) of a callable categorised `{c}`" for c in CATEGORIES},
    **{f"{NAME}__{s}": d for s, d in _SUMMARY.items()},
}


_CALLABLE = attrgetter("callable")

def compute(analysis: Analysis) -> list[float]:
    """Return the import columns of one analysis, in COLUMNS order."""
    tax = _TAXONOMY
    categorize = tax.categorize
    counts = [0] * _NCAT
    called = [0] * _NCAT
    distinct: set[str] = set()
    modules: set[str] = set()
    n_imports = n_alias = dangerous_later = n_unresolved_imports = 0
    is_unresolved = tax.is_unresolved
    first_top = next((s for s in analysis.streams if not s.nested_depth), None)
    for stream in analysis.streams:
        later = stream is not first_top
        for rec in stream.imports:
            q = f"{rec.module}.{rec.name}"
            i = _CAT_INDEX[categorize(q)]
            counts[i] += 1
            if is_unresolved(q):
                n_unresolved_imports += 1
            n_imports += 1
            distinct.add(q)
            if later and _DANGEROUS_MASK[i]:
                dangerous_later += 1
            if rec.module.partition(".")[0] in tax.aliases:
                n_alias += 1
    distinct_norm = {tax.normalise(q) for q in distinct}
    for q in distinct_norm:
        modules.add(q.partition(".")[0])
    callables: Counter[str] = Counter()
    for stream in analysis.streams:
        callables.update(map(_CALLABLE, stream.calls))
    n_calls = n_unresolved = 0
    for name, k in callables.items():
        n_calls += k
        if is_unresolved(name):
            n_unresolved += k
            called[_CAT_INDEX[UNKNOWN]] += k
        else:
            called[_CAT_INDEX[categorize(name)]] += k

    present = [1 if (counts[i] or called[i]) else 0 for i in range(_NCAT)]
    distinct_cats = [_CAT_INDEX[categorize(q)] for q in distinct_norm]
    n_distinct_outside = sum(1 for i in distinct_cats if i != _BENIGN_INDEX)
    dangerous_distinct = sum(1 for i in distinct_cats if _DANGEROUS_MASK[i])
    dangerous_count = sum(c for c, d in zip(counts, _DANGEROUS_MASK, strict=True) if d)
    dangerous_called = sum(c for c, d in zip(called, _DANGEROUS_MASK, strict=True) if d)
    n_dangerous_cats = sum(p for p, d in zip(present, _DANGEROUS_MASK, strict=True) if d)
    n_outside = n_imports - counts[_BENIGN_INDEX]
    summary = {
        "n_imports": n_imports,
        "n_distinct_imports": len(distinct_norm),
        "n_distinct_modules": len(modules),
        "n_outside_benign": n_outside,
        "n_distinct_outside_benign": n_distinct_outside,
        "share_outside_benign": n_outside / n_imports if n_imports else 0.0,
        "dangerous_count": dangerous_count,
        "dangerous_distinct": dangerous_distinct,
        "dangerous_called": dangerous_called,
        "any_dangerous": 1 if n_dangerous_cats else 0,
        "n_dangerous_categories": n_dangerous_cats,
        "dangerous_outside_first_stream": dangerous_later,
        "n_alias_spelling": n_alias,
        "n_unresolved_imports": n_unresolved_imports,
        "n_calls": n_calls,
        "n_unresolved_calls": n_unresolved,
        "n_calls_outside_benign": n_calls - called[_BENIGN_INDEX],
    }
    return [float(x) for x in (*counts, *present, *called, *(summary[k] for k in _SUMMARY))]


def dangerous_findings(analysis: Analysis) -> list[dict[str, object]]:
    """Return the dangerous imports and calls of an analysis with category, opcode, offset and location."""
    tax = _TAXONOMY
    found: list[dict[str, object]] = []
    for stream in analysis.streams:
        for rec in stream.imports:
            q = f"{rec.module}.{rec.name}"
            cat = tax.categorize(q)
            if tax.is_dangerous(cat):
                found.append({"kind": "import", "global": q, "category": cat, "opcode": rec.opcode,
                              "offset": rec.offset, "location": stream.location})
        for call in stream.calls:
            cat = tax.categorize(call.callable or "?")
            if tax.is_dangerous(cat):
                found.append({"kind": "call", "global": call.callable, "category": cat, "opcode": call.opcode,
                              "offset": call.offset, "location": stream.location, "args": call.args})
    return found
