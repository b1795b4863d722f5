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


_CLASS_INDEX = {op: _CLASSES.index(cls) for op, cls in _CLASS_OF.items()}
_N_CLASSES = len(_CLASSES)
_N_CONTAINER_COLUMNS = len(CONTAINER_KINDS) + 1
_SCALAR_ORDER = (
    "error", "size_bytes", "pickle_bytes", "pickle_share", "n_containers", "n_streams", "n_nested_streams",
    "max_nested_depth", "n_incomplete_streams", "n_streams_without_proto", "n_extra_streams_with_imports",
    "protocol_max", "protocol_min", "n_opcodes", "max_stack_depth", "max_container_nesting", "memo_puts",
    "memo_gets", "memo_gets_per_put", "n_imports", "n_calls", "n_import_opcodes", "n_call_opcodes",
    "n_build_opcodes", "n_ext_opcodes", "n_persid_opcodes", "n_strings", "skipped_bytes", "bytes_outside_streams",
    "n_anomalies",
)  # fmt: skip
if SCALAR_NAMES != _SCALAR_ORDER:  # pragma: no cover
    raise ImportError("structure scalars changed: update the ordered list in compute()")


def compute(analysis: Analysis) -> list[float]:
    """Return the structure columns of one analysis, in COLUMNS order."""
    streams = analysis.streams
    class_counts = [0] * _N_CLASSES
    class_index = _CLASS_INDEX
    anomaly_index = _ANOMALY_INDEX
    anomalies = [0] * len(ANOMALY_KINDS)
    n_anom = 0
    for a in analysis.anomalies:
        n_anom += 1
        i = anomaly_index.get(a.kind)
        if i is not None:
            anomalies[i] += 1
    # One pass over the streams (most files have one): every per-stream sum, maximum and count below.
    n_top = nested = n_incomplete = n_without_proto = extra_with_imports = 0
    first_top = None
    n_import_ops = n_call_ops = n_build = n_ext = n_persid = 0
    protocol_max = protocol_min = max_nested_depth = max_stack = max_nesting = 0
    memo_puts = memo_gets = covered = n_opcodes = n_imports = n_calls = n_strings = skipped = 0
    for k, s in enumerate(streams):
        oc = s.opcode_counts
        for op, n in oc.items():
            i = class_index.get(op)
            if i is not None:
                class_counts[i] += n
        get = oc.get
        n_import_ops += get("GLOBAL", 0) + get("STACK_GLOBAL", 0) + get("INST", 0)
        n_call_ops += get("REDUCE", 0) + get("NEWOBJ", 0) + get("NEWOBJ_EX", 0) + get("OBJ", 0) + get("INST", 0)
        n_build += get("BUILD", 0)
        n_ext += get("EXT1", 0) + get("EXT2", 0) + get("EXT4", 0)
        n_persid += get("PERSID", 0) + get("BINPERSID", 0)
        for a in s.anomalies:
            n_anom += 1
            i = anomaly_index.get(a.kind)
            if i is not None:
                anomalies[i] += 1
        if s.nested_depth:
            nested += 1
            if s.nested_depth > max_nested_depth:
                max_nested_depth = s.nested_depth
        else:
            n_top += 1
            covered += max(0, s.end - s.start)
            if first_top is None:
                first_top = s
        if s.imports:
            n_imports += len(s.imports)
            if s is not first_top:
                extra_with_imports += 1
        if not s.complete:
            n_incomplete += 1
        if not s.has_proto:
            n_without_proto += 1
        protocol = s.protocol
        if k == 0:
            protocol_max = protocol_min = protocol
        elif protocol > protocol_max:
            protocol_max = protocol
        elif protocol < protocol_min:
            protocol_min = protocol
        if s.max_stack_depth > max_stack:
            max_stack = s.max_stack_depth
        if s.max_container_nesting > max_nesting:
            max_nesting = s.max_container_nesting
        memo_puts += s.memo_puts
        memo_gets += s.memo_gets
        n_opcodes += s.n_opcodes
        n_calls += len(s.calls)
        n_strings += s.n_strings
        skipped += s.skipped_bytes
    n_class_total = sum(class_counts)

    containers = [0] * _N_CONTAINER_COLUMNS
    for kind in analysis.containers:
        i = _CONTAINER_INDEX.get(kind)
        if i is None:
            containers[-1] += 1
        else:
            containers[i] = 1

    size = analysis.size
    pickle_bytes = analysis.pickle_bytes
    # In _SCALAR_ORDER (= SCALAR_NAMES) order.
    values = [
        1.0 if analysis.error else 0.0,
        size,
        pickle_bytes,
        pickle_bytes / size if size > 0 else 0.0,
        len(analysis.containers),
        n_top,
        nested,
        max_nested_depth,
        n_incomplete,
        n_without_proto,
        extra_with_imports,
        protocol_max,
        protocol_min,
        n_opcodes,
        max_stack,
        max_nesting,
        memo_puts,
        memo_gets,
        memo_gets / max(memo_puts, 1),
        n_imports,
        n_calls,
        n_import_ops,
        n_call_ops,
        n_build,
        n_ext,
        n_persid,
        n_strings,
        skipped,
        max(0, pickle_bytes - covered),
        n_anom,
    ]
    if n_class_total:
        values += [c / n_class_total for c in class_counts]
    else:
        values += [0.0] * _N_CLASSES
    values += containers
    values += anomalies
    return list(map(float, values))
