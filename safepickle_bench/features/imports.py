"""The `imports` group: what the file imports and calls, by taxonomy category (counts do not dilute)."""

from __future__ import annotations

from collections import _count_elements  # type: ignore[attr-defined]
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
_DANGEROUS_INDICES = tuple(i for i, d in enumerate(_DANGEROUS_MASK) if d)
_UNKNOWN_INDEX = _CAT_INDEX[UNKNOWN]
_SUMMARY_ORDER = (
    "n_imports", "n_distinct_imports", "n_distinct_modules", "n_outside_benign", "n_distinct_outside_benign",
    "share_outside_benign", "dangerous_count", "dangerous_distinct", "dangerous_called", "any_dangerous",
    "n_dangerous_categories", "dangerous_outside_first_stream", "n_alias_spelling", "n_calls",
    "n_unresolved_imports", "n_unresolved_calls", "n_calls_outside_benign",
)  # fmt: skip
if tuple(_SUMMARY) != _SUMMARY_ORDER:  # pragma: no cover
    raise ImportError("import summary columns changed: update the ordered list in compute()")


def compute(analysis: Analysis) -> list[float]:
    """Return the import columns of one analysis, in COLUMNS order."""
    tax = _TAXONOMY
    categorize = tax.categorize
    aliases = tax.aliases
    cat_index = _CAT_INDEX
    dangerous = _DANGEROUS_MASK
    counts = [0] * _NCAT
    called = [0] * _NCAT
    distinct: set[str] = set()
    n_imports = n_alias = dangerous_later = n_unresolved_imports = 0
    first_top = None
    callables: dict[str, int] = {}
    for stream in analysis.streams:
        if first_top is None and not stream.nested_depth:
            first_top = stream
        later = stream is not first_top
        for rec in stream.imports:
            module = rec.module
            q = f"{module}.{rec.name}"
            i = cat_index[categorize(q)]
            counts[i] += 1
            if "?" in q:  # tax.is_unresolved: `q` holds a dot, so it is never empty
                n_unresolved_imports += 1
            distinct.add(q)
            if later and dangerous[i]:
                dangerous_later += 1
            if module.partition(".")[0] in aliases:
                n_alias += 1
        n_imports += len(stream.imports)
        if stream.calls:
            _count_elements(callables, map(_CALLABLE, stream.calls))
    normalise = tax.normalise
    distinct_norm = {normalise(q) for q in distinct}
    modules = {q.partition(".")[0] for q in distinct_norm}
    n_calls = n_unresolved = 0
    is_unresolved = tax.is_unresolved
    for name, k in callables.items():
        n_calls += k
        if is_unresolved(name):
            n_unresolved += k
            called[_UNKNOWN_INDEX] += k
        else:
            called[cat_index[categorize(name)]] += k

    present = [1 if (counts[i] or called[i]) else 0 for i in range(_NCAT)]
    n_distinct_outside = dangerous_distinct = 0
    for q in distinct_norm:
        i = cat_index[categorize(q)]
        if i != _BENIGN_INDEX:
            n_distinct_outside += 1
        if dangerous[i]:
            dangerous_distinct += 1
    dangerous_count = dangerous_called = n_dangerous_cats = 0
    for i in _DANGEROUS_INDICES:
        dangerous_count += counts[i]
        dangerous_called += called[i]
        n_dangerous_cats += present[i]
    n_outside = n_imports - counts[_BENIGN_INDEX]
    summary = [  # in _SUMMARY order
        n_imports,
        len(distinct_norm),
        len(modules),
        n_outside,
        n_distinct_outside,
        n_outside / n_imports if n_imports else 0.0,
        dangerous_count,
        dangerous_distinct,
        dangerous_called,
        1 if n_dangerous_cats else 0,
        n_dangerous_cats,
        dangerous_later,
        n_alias,
        n_calls,
        n_unresolved_imports,
        n_unresolved,
        n_calls - called[_BENIGN_INDEX],
    ]
    return list(map(float, (*counts, *present, *called, *summary)))


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
