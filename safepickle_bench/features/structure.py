"""The `structure` group: sizes, streams, containers, stack and memo use, anomalies, opcode classes."""

from __future__ import annotations

from safepickle_bench.analysis.result import ANOMALY_KINDS, Analysis

NAME = "structure"

# Container kinds given their own presence column; any other kind counts in `container_other`
# (the kinds safepickle_bench.analysis.containers records).
CONTAINER_KINDS: tuple[str, ...] = (
    "zip", "torch_zip", "torchscript", "npz", "tar", "torch_tar", "7z", "gzip", "bz2", "xz", "lzma", "lz4",
    "zlib", "zfile", "npy",
)
_CONTAINER_INDEX = {k: i for i, k in enumerate(CONTAINER_KINDS)}

# Opcode classes: what an opcode does on the loader's stack.
OPCODE_CLASSES: dict[str, tuple[str, ...]] = {
    "data": (
        "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
        "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER",
        "READONLY_BUFFER", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
        "BINUNICODE8", "FLOAT", "BINFLOAT",
    ),
    "container": (
        "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
        "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS", "FROZENSET", "MARK",
    ),
    "memo": ("GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"),
    "call": ("EXT1", "EXT2", "EXT4", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"),
    "persistent": ("PERSID", "BINPERSID"),
    "control": ("POP", "DUP", "POP_MARK", "PROTO", "STOP", "FRAME"),
}
_CLASS_OF = {op: cls for cls, ops in OPCODE_CLASSES.items() for op in ops}
_CLASSES = tuple(OPCODE_CLASSES)
_IMPORT_OPS = frozenset({"GLOBAL", "STACK_GLOBAL", "INST"})
_CALL_OPS = frozenset({"REDUCE", "NEWOBJ", "NEWOBJ_EX", "OBJ", "INST"})
_ANOMALY_INDEX = {k: i for i, k in enumerate(ANOMALY_KINDS)}

_SCALARS: dict[str, str] = {
    "error": "1 when the file could not be read at all or a feature group failed on it",
    "size_bytes": "file size in bytes",
    "pickle_bytes": "bytes of pickle regions handed to the opcode reader",
    "pickle_share": "pickle_bytes / size_bytes",
    "n_containers": "distinct container kinds met (zip, torch_zip, gzip...)",
    "n_streams": "top-level pickle streams (not nested inside another pickle)",
    "n_nested_streams": "pickles found inside pickles (bytes passed to a loads-like callable)",
    "max_nested_depth": "deepest pickle-in-pickle level",
    "n_incomplete_streams": "streams that end without STOP",
    "n_streams_without_proto": "streams without a PROTO opcode",
    "n_extra_streams_with_imports": "streams other than the first top-level one that import a global",
    "protocol_max": "highest protocol of any stream",
    "protocol_min": "lowest protocol of any stream (0 when no stream)",
    "n_opcodes": "opcodes read over all streams",
    "max_stack_depth": "deepest loader stack over all streams",
    "max_container_nesting": "deepest MARK / list / tuple / dict nesting over all streams",
    "memo_puts": "memo writes (PUT, BINPUT, LONG_BINPUT, MEMOIZE) over all streams",
    "memo_gets": "memo reads (GET, BINGET, LONG_BINGET) over all streams",
    "memo_gets_per_put": "memo_gets / max(memo_puts, 1)",
    "n_imports": "globals imported (GLOBAL, STACK_GLOBAL, INST) over all streams",
    "n_calls": "calls the loader would make (REDUCE, NEWOBJ, NEWOBJ_EX, BUILD, INST, OBJ) over all streams",
    "n_import_opcodes": "GLOBAL + STACK_GLOBAL + INST opcodes",
    "n_call_opcodes": "REDUCE + NEWOBJ + NEWOBJ_EX + OBJ + INST opcodes",
    "n_build_opcodes": "BUILD opcodes",
    "n_ext_opcodes": "EXT1 + EXT2 + EXT4 opcodes (extension registry imports)",
    "n_persid_opcodes": "PERSID + BINPERSID opcodes (tensor storages in torch files)",
    "n_strings": "string literals over all streams (exact)",
    "skipped_bytes": "raw bytes read without parsing as opcodes (array data)",
    "bytes_outside_streams": "pickle-region bytes not covered by any top-level stream (after STOP, between streams)",
    "n_anomalies": "anomalies of every kind, file- and stream-level",
}
SCALAR_NAMES: tuple[str, ...] = tuple(_SCALARS)
COLUMNS: tuple[str, ...] = (
    *(f"{NAME}__{s}" for s in SCALAR_NAMES),
    *(f"{NAME}__share_{c}_opcodes" for c in _CLASSES),
    *(f"{NAME}__container_{k}" for k in CONTAINER_KINDS),
    f"{NAME}__container_other",
    *(f"{NAME}__anomaly_{k}" for k in ANOMALY_KINDS),
)
DESCRIPTIONS: dict[str, str] = {
    **{f"{NAME}__{s}": d for s, d in _SCALARS.items()},
    **{f"{NAME}__share_{c}_opcodes": f"share of {c} opcodes ({', '.join(OPCODE_CLASSES[c][:4])}...) among all opcodes" for c in _CLASSES},
    **{f"{NAME}__container_{k}": f"1 when a `{k}` container layer was met" for k in CONTAINER_KINDS},
    f"{NAME}__container_other": "container kinds met that have no column of their own",
    **{f"{NAME}__anomaly_{k}": f"count of `{k}` anomalies (file- and stream-level)" for k in ANOMALY_KINDS},
}
_N_SCALARS = len(SCALAR_NAMES)


def compute(analysis: Analysis) -> list[float]:
    """Return the structure columns of one analysis, in COLUMNS order."""
    streams = analysis.streams
    top = [s for s in streams if not s.nested_depth]
    nested = len(streams) - len(top)
    class_counts = dict.fromkeys(_CLASSES, 0)
    class_of = _CLASS_OF
    n_import_ops = n_call_ops = n_build = n_ext = n_persid = 0
    for s in streams:
        oc = s.opcode_counts
        for op, n in oc.items():
            cls = class_of.get(op)
            if cls is not None:
                class_counts[cls] += n
        n_import_ops += oc.get("GLOBAL", 0) + oc.get("STACK_GLOBAL", 0) + oc.get("INST", 0)
        n_call_ops += oc.get("REDUCE", 0) + oc.get("NEWOBJ", 0) + oc.get("NEWOBJ_EX", 0) + oc.get("OBJ", 0) + oc.get("INST", 0)
        n_build += oc.get("BUILD", 0)
        n_ext += oc.get("EXT1", 0) + oc.get("EXT2", 0) + oc.get("EXT4", 0)
        n_persid += oc.get("PERSID", 0) + oc.get("BINPERSID", 0)
    n_class_total = sum(class_counts.values())

    anomalies = [0] * len(ANOMALY_KINDS)
    n_anom = 0
    for a in analysis.anomalies:
        n_anom += 1
        i = _ANOMALY_INDEX.get(a.kind)
        if i is not None:
            anomalies[i] += 1
    for s in streams:
        for a in s.anomalies:
            n_anom += 1
            i = _ANOMALY_INDEX.get(a.kind)
            if i is not None:
                anomalies[i] += 1

    containers = [0] * (len(CONTAINER_KINDS) + 1)
    for kind in analysis.containers:
        i = _CONTAINER_INDEX.get(kind)
        if i is None:
            containers[-1] += 1
        else:
            containers[i] = 1

    protocols = [s.protocol for s in streams]
    memo_puts = sum(s.memo_puts for s in streams)
    memo_gets = sum(s.memo_gets for s in streams)
    covered = sum(max(0, s.end - s.start) for s in top)
    size = analysis.size
    n_imports = sum(len(s.imports) for s in streams)
    first_top = top[0] if top else None
    extra_with_imports = sum(1 for s in streams if s.imports and s is not first_top)
    scalars = {
        "error": 1.0 if analysis.error else 0.0,
        "size_bytes": size,
        "pickle_bytes": analysis.pickle_bytes,
        "pickle_share": analysis.pickle_bytes / size if size > 0 else 0.0,
        "n_containers": len(analysis.containers),
        "n_streams": len(top),
        "n_nested_streams": nested,
        "max_nested_depth": max((s.nested_depth for s in streams), default=0),
        "n_incomplete_streams": sum(1 for s in streams if not s.complete),
        "n_streams_without_proto": sum(1 for s in streams if not s.has_proto),
        "n_extra_streams_with_imports": extra_with_imports,
        "protocol_max": max(protocols, default=0),
        "protocol_min": min(protocols, default=0),
        "n_opcodes": sum(s.n_opcodes for s in streams),
        "max_stack_depth": max((s.max_stack_depth for s in streams), default=0),
        "max_container_nesting": max((s.max_container_nesting for s in streams), default=0),
        "memo_puts": memo_puts,
        "memo_gets": memo_gets,
        "memo_gets_per_put": memo_gets / max(memo_puts, 1),
        "n_imports": n_imports,
        "n_calls": sum(len(s.calls) for s in streams),
        "n_import_opcodes": n_import_ops,
        "n_call_opcodes": n_call_ops,
        "n_build_opcodes": n_build,
        "n_ext_opcodes": n_ext,
        "n_persid_opcodes": n_persid,
        "n_strings": sum(s.n_strings for s in streams),
        "skipped_bytes": sum(s.skipped_bytes for s in streams),
        "bytes_outside_streams": max(0, analysis.pickle_bytes - covered),
        "n_anomalies": n_anom,
    }
    shares = [class_counts[c] / n_class_total if n_class_total else 0.0 for c in _CLASSES]
    return [float(scalars[k]) for k in SCALAR_NAMES] + shares + [float(c) for c in containers] + [float(a) for a in anomalies]
