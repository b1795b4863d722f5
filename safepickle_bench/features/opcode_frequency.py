"""The `opcodes` group: the paper's normalised opcode-frequency vector (one share per opcode)."""

from __future__ import annotations

from safepickle_bench.analysis.result import Analysis

NAME = "opcodes"

# Every opcode of protocols 0-5, in CPython's `pickletools.opcodes` order (fixed here so the columns do not
# move with the Python version; a test checks it against the running interpreter's table).
OPCODE_NAMES: tuple[str, ...] = (
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER",
    "READONLY_BUFFER", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8", "FLOAT", "BINFLOAT", "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_TUPLE", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS",
    "FROZENSET", "POP", "DUP", "MARK", "POP_MARK", "GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT",
    "LONG_BINPUT", "MEMOIZE", "EXT1", "EXT2", "EXT4", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST",
    "OBJ", "NEWOBJ", "NEWOBJ_EX", "PROTO", "STOP", "FRAME", "PERSID", "BINPERSID",
)
_INDEX = {name: i for i, name in enumerate(OPCODE_NAMES)}

SHARE_COLUMNS: tuple[str, ...] = tuple(f"{NAME}__{op}" for op in OPCODE_NAMES)
EMPTY_COLUMN = f"{NAME}__empty"
COLUMNS: tuple[str, ...] = (*SHARE_COLUMNS, EMPTY_COLUMN)
DESCRIPTIONS: dict[str, str] = {
    **{c: f"share of {op} among all opcodes of the file's top-level streams" for c, op in zip(SHARE_COLUMNS, OPCODE_NAMES, strict=True)},
    EMPTY_COLUMN: "1 when no opcode was read (the share columns are then all 0), else 0",
}


def compute(analysis: Analysis) -> list[float]:
    """Return opcode shares over the top-level streams (summing to 1) followed by the empty flag."""
    counts = [0] * len(OPCODE_NAMES)
    index = _INDEX
    for stream in analysis.streams:
        if stream.nested_depth:
            continue
        for op, n in stream.opcode_counts.items():
            i = index.get(op)
            if i is not None:
                counts[i] += n
    total = sum(counts)
    if total <= 0:
        return [0.0] * len(OPCODE_NAMES) + [1.0]
    return [c / total for c in counts] + [0.0]
