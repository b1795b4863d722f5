"""Builders of hostile analyzer inputs: decompression bombs, billion-laughs and deeply nested pickles, huge
integers and declared lengths, huge memo indices, many streams, zips with many entries or absurd sizes.

Every input is inert (no callable that does anything is imported; the few calls name `builtins` helpers) and
is built from a `scale` so that tests use small versions with reduced `Limits` and the benchmark
(`experiments/bench_hostile_inputs.py`) uses full-size ones at the default limits. Used by
tests/analysis/test_hostile_inputs.py, that benchmark and the fuzz target (tests/fuzz/fuzz_analyzer.py) as seeds.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class HostileCase:
    """One hostile input family: how to build it at a scale, and what the analyzer must record."""

    name: str
    description: str
    build: Callable[[float], bytes]
    """scale -> file bytes; scale 1.0 is the full-size input of the benchmark."""
    expected: frozenset[str]
    """Anomaly kinds of which at least one must be recorded (empty: the input must simply be analysed)."""


# --- helpers -------------------------------------------------------------------------------------------


def _zeros_member(compress: Callable[[bytes], bytes], nbytes: int) -> bytes:
    return compress(bytes(nbytes))


def _repeat_members(member: bytes, member_size: int, total: int) -> bytes:
    """Concatenate compressed members (gzip, bz2 and xz allow it) until `total` bytes decompress."""
    return member * max(1, total // member_size)


def _deflate_zeros(nbytes: int) -> bytes:
    """Raw deflate of `nbytes` zeros, built 1 MiB at a time."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(MiB)
    parts = [comp.compress(block) for _ in range(nbytes // MiB)]
    parts.append(comp.compress(bytes(nbytes % MiB)))
    parts.append(comp.flush())
    return b"".join(parts)


def _zip_deflated_entry(name: str, nbytes: int) -> bytes:
    """A zip with one deflated entry of `nbytes` zeros, written without materialising the zeros."""
    out = io.BytesIO()
    block = bytes(MiB)
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open(name, "w", force_zip64=True) as f,
    ):
        for _ in range(nbytes // MiB):
            f.write(block)
    return out.getvalue()


def _zip_entries(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def _short_binunicode(s: str) -> bytes:
    raw = s.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


# --- decompression bombs -------------------------------------------------------------------------------


def zip_bomb(scale: float) -> bytes:
    """A torch-like zip whose `archive/data.pkl` deflates from ~1 MiB to scale x 1 GiB of zeros."""
    return _zip_deflated_entry("archive/data.pkl", max(MiB, int(scale * 1024 * MiB)))


def gzip_bomb(scale: float) -> bytes:
    """gzip members of 64 MiB of zeros each, scale x 1 GiB decompressed in total."""
    size = min(64 * MiB, max(MiB, int(scale * 1024 * MiB)))
    member = _zeros_member(lambda b: gzip.compress(b, 9), size)
    return _repeat_members(member, size, max(size, int(scale * 1024 * MiB)))


def bz2_bomb(scale: float) -> bytes:
    """bz2 streams of 64 MiB of zeros each, scale x 1 GiB decompressed in total."""
    size = min(64 * MiB, max(MiB, int(scale * 1024 * MiB)))
    member = _zeros_member(lambda b: bz2.compress(b, 9), size)
    return _repeat_members(member, size, max(size, int(scale * 1024 * MiB)))


def xz_bomb(scale: float) -> bytes:
    """xz streams of 64 MiB of zeros each, scale x 1 GiB decompressed in total."""
    size = min(64 * MiB, max(MiB, int(scale * 1024 * MiB)))
    member = _zeros_member(lambda b: lzma.compress(b, preset=6), size)  # 8 MiB dictionary
    return _repeat_members(member, size, max(size, int(scale * 1024 * MiB)))


def nested_bomb(scale: float) -> bytes:
    """zip of 8 gzip files, each a gzip of a zip of a gzip of zeros (zip in gzip in zip in gzip)."""
    size = max(MiB, int(scale * 512 * MiB))
    inner_gz = _zeros_member(lambda b: gzip.compress(b, 9), size)
    inner_zip = _zip_entries({"archive/data.pkl.gz": inner_gz})
    middle = gzip.compress(inner_zip, 9)
    return _zip_entries({f"part{i}.pkl.gz": middle for i in range(8)})


def overlapping_zip_bomb(scale: float) -> bytes:
    """Fifield-style zip: many central-directory entries all pointing at one deflated kernel of zeros."""
    usize = max(MiB, int(scale * 256 * MiB))
    kernel = _deflate_zeros(usize)
    crc = zlib.crc32(bytes(usize))
    n_entries = 64
    name0 = b"archive/data.pkl"
    local = struct.pack(
        "<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 0, crc, len(kernel), usize, len(name0), 0
    )
    body = local + name0 + kernel
    central = b""
    for i in range(n_entries):
        name = f"archive/p{i}.pkl".encode()
        central += struct.pack(
            "<4s4B4HL2L5H2L",
            b"PK\x01\x02",
            20,
            0,
            20,
            0,
            0,
            8,
            0,
            0,
            crc,
            len(kernel),
            usize,
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        central += name
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n_entries, n_entries, len(central), len(body), 0)
    return body + central + eocd


# --- pickles that expand, nest or overflow -------------------------------------------------------------


def billion_laughs_lists(scale: float) -> bytes:
    """Lists of 10 references to the previous list, `levels` deep (10**levels leaves if expanded)."""
    levels = max(3, int(30 * scale))
    out = bytearray(b"\x80\x04]\x94" + _short_binunicode("lol") + b"a")  # memo 0 = ['lol']
    for level in range(levels):
        prev = level
        out += b"]\x94("  # new list, memoized as level + 1
        out += (b"j" + struct.pack("<I", prev)) * 10  # LONG_BINGET prev, 10 times
        out += b"e0"  # APPENDS, POP
    # call builtins.len on the last list and dict-key it (exercises summaries and hashing checks)
    out += b"\x8c\x08builtins\x94\x8c\x03len\x94\x93" + b"j" + struct.pack("<I", levels) + b"\x85R0"
    out += b"}(" + b"j" + struct.pack("<I", levels) + b"K\x01u"
    return bytes(out + b".")


def billion_laughs_dup(scale: float) -> bytes:
    """DUP + TUPLE2 doubling: a tuple holding two references to the previous one, `levels` deep."""
    levels = max(3, int(1000 * scale))
    out = bytearray(b"\x80\x04" + _short_binunicode("lol"))
    out += b"2\x86" * levels  # DUP, TUPLE2: (x, x) each time -> 2**levels leaves
    out += b"\x94}\x94(h\x00h\x00u0"  # memoize, then try it as a dict key (hash would recurse deeply)
    out += b"\x8c\x08builtins\x94\x8c\x03len\x94\x93h\x00\x85R."
    return bytes(out)


def deep_marks(scale: float) -> bytes:
    """scale x 1,000,000 MARKs, then STOP."""
    return b"\x80\x04" + b"(" * max(1000, int(scale * 1_000_000)) + b"N."


def deep_tuples(scale: float) -> bytes:
    """A tuple nested scale x 1,000,000 deep (EMPTY_TUPLE then TUPLE1 repeated)."""
    return b"\x80\x04)" + b"\x85" * max(1000, int(scale * 1_000_000)) + b"."


def deep_lists(scale: float) -> bytes:
    """A list nested scale x 500,000 deep (MARK x n, LIST x n)."""
    n = max(1000, int(scale * 500_000))
    return b"\x80\x02" + b"(" * n + b"l" * n + b"."


def deep_append_chain(scale: float) -> bytes:
    """EMPTY_LIST x n then APPEND x n: each list appended into the one below it, scale x 500,000 deep."""
    n = max(1000, int(scale * 500_000))
    return b"\x80\x04]" + b"]" * n + b"a" * n + b"."


def deep_dict_nesting(scale: float) -> bytes:
    """Dicts nested scale x 200,000 deep through SETITEM (d[k] = next dict)."""
    n = max(1000, int(scale * 200_000))
    return b"\x80\x04" + (b"}" + _short_binunicode("k")) * n + b"}" + b"s" * n + b"."


def huge_int_text(scale: float) -> bytes:
    """INT and LONG opcodes with scale x 10**6 digits (over CPython's int-conversion limit)."""
    digits = b"7" * max(5000, int(scale * 1_000_000))
    return b"I" + digits + b"\n0L" + digits + b"L\n0N."


def huge_long4(scale: float) -> bytes:
    """A LONG4 integer of scale x 64 MiB, passed to a call (its summary must not convert it to text)."""
    n = max(4096, int(scale * 64 * MiB))
    return (
        b"\x80\x04\x8c\x08builtins\x8c\x03int\x93"
        + b"\x8b"
        + struct.pack("<i", n)
        + b"\x01" * n
        + b"\x85R\x8c\x08builtins\x8c\x03str\x93(\x8b"
        + struct.pack("<i", n)
        + b"\x02" * n
        + b"K\x01tR."
    )


def huge_declared_lengths(scale: float) -> bytes:
    """A zip of pickles whose sized opcodes declare 2**63-ish lengths with a few bytes behind them."""
    big8 = struct.pack("<Q", 2**63 - 1)
    parts = [
        b"\x80\x04\x8d" + big8 + b"abc",  # BINUNICODE8
        b"\x80\x04\x8e" + big8 + b"abc",  # BINBYTES8
        b"\x80\x05\x96" + big8 + b"abc",  # BYTEARRAY8
        b"\x80\x04\x95" + big8 + b"N.",  # FRAME
        b"\x80\x04X" + struct.pack("<I", 2**32 - 1) + b"abc",  # BINUNICODE
        b"\x80\x04\x8b" + struct.pack("<i", 2**31 - 1) + b"abc",  # LONG4
    ]
    return _zip_entries({f"archive/part{i}.pkl": part for i, part in enumerate(parts)})


def huge_memo_indices(scale: float) -> bytes:
    """LONG_BINPUT/LONG_BINGET with keys near 2**32 and a sparse memo of scale x 100,000 entries."""
    n = max(100, int(scale * 100_000))
    out = bytearray(b"\x80\x04N")
    for i in range(n):
        out += b"r" + struct.pack("<I", 2**32 - 1 - i * 40_000)
    out += b"0j" + struct.pack("<I", 2**32 - 1) + b"j" + struct.pack("<I", 12345) + b"\x86."
    return bytes(out)


def many_streams(scale: float) -> bytes:
    """scale x 100,000 tiny pickle streams back to back."""
    return pickle.dumps(None, protocol=2) * max(100, int(scale * 100_000))


def opcode_flood(scale: float) -> bytes:
    """scale x 20,000,000 NONE opcodes (over max_opcodes and max_stack_depth), then STOP."""
    return b"\x80\x04" + b"N" * max(10_000, int(scale * 20_000_000)) + b"."


def decode_bomb_in_pickle(scale: float) -> bytes:
    """A pickle that calls zlib.decompress on a memoized bomb again and again (each result memoized)."""
    kernel = zlib.compress(bytes(max(MiB, int(scale * 256 * MiB))), 9)
    out = bytearray(b"\x80\x04\x8c\x04zlib\x8c\ndecompress\x93\x94")  # memo 0 = zlib.decompress
    out += b"\x8e" + struct.pack("<Q", len(kernel)) + kernel + b"\x94"  # memo 1 = kernel bytes
    out += b"0"
    for _ in range(16):
        out += b"h\x00h\x01\x85R\x94"  # decompress(kernel), memoized (kept alive by the memo)
    return bytes(out + b".")


def nested_pickle_chain(scale: float) -> bytes:
    """pickle.loads of pickle.loads of ... 12 levels (deeper than max_nested_pickle_depth)."""
    data = pickle.dumps(None, protocol=2)
    for _ in range(12):
        data = (
            b"\x80\x04\x8c\x07_pickle\x8c\x05loads\x93\x8e" + struct.pack("<Q", len(data)) + data + b"\x85R."
        )
    return data


def zip_many_entries(scale: float) -> bytes:
    """A torch-like zip with scale x 100,000 entries: tensor storages plus tiny `.pkl` entries."""
    n = max(1000, int(scale * 100_000))
    tiny = pickle.dumps(0, protocol=2)
    entries = {"archive/data.pkl": pickle.dumps({"w": 1}, protocol=2)}
    for i in range(n):
        entries[f"archive/data/{i}" if i % 2 else f"archive/extra/{i}.pkl"] = tiny
    return _zip_entries(entries)


def zip_declared_huge_size(scale: float) -> bytes:
    """A zip whose pickle entry declares 2**62 bytes (zip64 extra) over a few real bytes."""
    data = pickle.dumps([1, 2, 3], protocol=2)
    name = b"archive/data.pkl"
    crc = zlib.crc32(data)
    huge = 2**62
    extra = struct.pack("<HHQQ", 1, 16, huge, huge)
    local = struct.pack(
        "<4s2B4HL2L2H", b"PK\x03\x04", 45, 0, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)
    )
    body = local + name + extra + data
    central = struct.pack(
        "<4s4B4HL2L5H2L",
        b"PK\x01\x02",
        45,
        0,
        45,
        0,
        0,
        0,
        0,
        0,
        crc,
        0xFFFFFFFF,
        0xFFFFFFFF,
        len(name),
        len(extra),
        0,
        0,
        0,
        0,
        0,
    )
    central += name + extra
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + eocd


CASES: tuple[HostileCase, ...] = (
    HostileCase(
        "zip_bomb",
        "deflated zip entry, ~1 MiB -> 1 GiB of zeros",
        zip_bomb,
        frozenset({"limit_decompressed"}),
    ),
    HostileCase("gzip_bomb", "gzip members, 1 GiB of zeros", gzip_bomb, frozenset({"limit_decompressed"})),
    HostileCase("bz2_bomb", "bz2 streams, 1 GiB of zeros", bz2_bomb, frozenset({"limit_decompressed"})),
    HostileCase("xz_bomb", "xz streams, 1 GiB of zeros", xz_bomb, frozenset({"limit_decompressed"})),
    HostileCase(
        "nested_bomb",
        "zip of 8 x gzip(zip(gzip(512 MiB zeros)))",
        nested_bomb,
        frozenset({"limit_decompressed"}),
    ),
    HostileCase(
        "overlapping_zip_bomb",
        "64 zip entries sharing one deflated kernel of 256 MiB",
        overlapping_zip_bomb,
        frozenset({"limit_decompressed"}),
    ),
    HostileCase(
        "billion_laughs_lists",
        "30 levels of lists of 10 memo references (10^30 leaves if expanded)",
        billion_laughs_lists,
        frozenset(),
    ),
    HostileCase(
        "billion_laughs_dup",
        "DUP+TUPLE2 doubling 1000 levels deep (2^1000 leaves), used as a dict key",
        billion_laughs_dup,
        frozenset(),
    ),
    HostileCase("deep_marks", "1,000,000 MARKs", deep_marks, frozenset()),
    HostileCase("deep_tuples", "tuple nested 1,000,000 deep (TUPLE1)", deep_tuples, frozenset()),
    HostileCase("deep_lists", "list nested 500,000 deep (MARK/LIST)", deep_lists, frozenset()),
    HostileCase(
        "deep_append_chain", "500,000 EMPTY_LIST then 500,000 APPEND", deep_append_chain, frozenset()
    ),
    HostileCase("deep_dict_nesting", "dict nested 200,000 deep (SETITEM)", deep_dict_nesting, frozenset()),
    HostileCase("huge_int_text", "INT and LONG with 10^6 digits", huge_int_text, frozenset({"bad_argument"})),
    HostileCase("huge_long4", "LONG4 of 64 MiB passed to calls", huge_long4, frozenset()),
    HostileCase(
        "huge_declared_lengths",
        "BINUNICODE8/BINBYTES8/BYTEARRAY8/FRAME of 2^63-1 bytes, BINUNICODE/LONG4 of 2^32-1 / 2^31-1",
        huge_declared_lengths,
        frozenset({"truncated"}),
    ),
    HostileCase(
        "huge_memo_indices", "100,000 LONG_BINPUTs with keys near 2^32", huge_memo_indices, frozenset()
    ),
    HostileCase(
        "many_streams", "100,000 pickle streams back to back", many_streams, frozenset({"limit_streams"})
    ),
    HostileCase(
        "opcode_flood",
        "20,000,000 NONE opcodes",
        opcode_flood,
        frozenset({"limit_stack", "limit_opcodes"}),
    ),
    HostileCase(
        "decode_bomb_in_pickle",
        "16 memoized zlib.decompress calls on a 256 MiB zeros kernel",
        decode_bomb_in_pickle,
        frozenset({"limit_decompressed"}),
    ),
    HostileCase(
        "nested_pickle_chain",
        "pickle.loads nested 12 levels",
        nested_pickle_chain,
        frozenset({"limit_depth"}),
    ),
    HostileCase(
        "zip_many_entries",
        "torch-like zip with 100,000 entries (half tiny .pkl)",
        zip_many_entries,
        frozenset(),
    ),
    HostileCase(
        "zip_declared_huge_size",
        "zip entry declaring 2^62 bytes over a 20-byte pickle",
        zip_declared_huge_size,
        frozenset({"container_corrupt"}),
    ),
)
"""Every hostile input family, in report order."""

CASES_BY_NAME: dict[str, HostileCase] = {c.name: c for c in CASES}
