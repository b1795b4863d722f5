"""Container layer: find, by content, the pickle regions a real loader would run inside a file.

Containers are recognised by their magic bytes, never by the file name. Zip archives (PyTorch,
TorchScript, npz, plain), tar (old PyTorch), 7z, gzip, bz2, xz, lzma, lz4, zlib (joblib) and numpy
`.npy` are opened here, recursively and within `Limits`; what is left is a pickle region handed to
the opcode reader. Only the central directory and the pickle entries of a zip are read: tensor data
is never touched, so a large checkpoint costs time proportional to its pickles.
"""

from __future__ import annotations

import ast
import bz2
import io
import lzma
import mmap
import os
import re
import struct
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.result import Anomaly

Searchable = bytes | bytearray | mmap.mmap

_CHUNK = 1 << 20
_STEP = 8 << 20
"""Largest piece asked of a decompressor at once."""
_TAIL_PEEK = 1 << 16
"""Bytes after a compressed stream looked at to decide whether they are padding or appended data."""
LZMA_MEMLIMIT = 256 << 20
"""Memory an xz/lzma decoder may use (its dictionary, declared by the stream): `xz -9e` needs 65 MiB."""
"""Bytes after a compressed stream looked at to decide whether they are padding or appended data."""
_HEAD = 64
_PEEK = 512

# --- magic bytes -------------------------------------------------------------------------------
_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_CENTRAL = b"PK\x01\x02"
_ZIP_EOCD = b"PK\x05\x06"
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP_DESCRIPTOR = b"PK\x07\x08"
_GZIP = b"\x1f\x8b\x08"
_XZ = b"\xfd7zXZ\x00"
_LZ4 = b"\x04\x22\x4d\x18"
_SEVEN_Z = b"7z\xbc\xaf\x27\x1c"
_NPY = b"\x93NUMPY"
_ZFILE = b"ZF"  # joblib < 0.9.3: "ZF" + hex length padded to 19 chars + zlib data
_ZFILE_HEADER = 2 + 19
_BZ2_RE = re.compile(rb"BZh[1-9](\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")
_GLOBAL_RE = re.compile(rb"[ci][A-Za-z_][\w.]*\r?\n[A-Za-z_][\w.]*\r?\n")

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_EOCD_REC = struct.Struct("<4sQ2H2L4Q")
_ZIP64_LOCATOR_REC = struct.Struct("<4sLQL")

_TORCH_TENSOR_ENTRY = re.compile(r"(^|/)(data|constants)/\d+$")
_TORCH_TAR_MEMBERS = frozenset({"sys_info", "pickle", "storages", "tensors"})
_TORCH_TAR_FIRST_STREAM_ONLY = frozenset({"storages", "tensors"})
_PICKLE_NAME = re.compile(r"\.(pkl|pickle|debug_pkl)$", re.IGNORECASE)

_ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


class _Decompressor(Protocol):
    """The incremental interface of bz2/lzma/lz4 decompressors (zlib is adapted to it)."""

    eof: bool
    unused_data: bytes
    needs_input: bool

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Decompress `data`, returning at most `max_length` bytes."""
        ...


@dataclass(slots=True)
class Region:
    """A byte range a loader would unpickle, with its container path."""

    location: str
    """Container path, levels joined by '!', e.g. `model.pt!archive/data.pkl`."""
    data: memoryview | bytes
    offset: int
    """Start of the region inside its innermost container (0 for decompressed content)."""
    chain: tuple[str, ...]
    """Container kinds enclosing the region, outermost first."""
    first_stream_only: bool = False
    """True when the loader reads only the first pickle of the region (old torch tar `storages`)."""


class _View:
    """A zero-copy window [start, end) on a searchable buffer (bytes or mmap)."""

    __slots__ = ("base", "start", "end")

    def __init__(self, base: Searchable, start: int = 0, end: int | None = None) -> None:
        self.base = base
        self.start = start
        self.end = len(base) if end is None else min(end, len(base))

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """Return the first offset of `sub` in the window (relative), or -1."""
        stop = self.end if end is None else min(self.end, self.start + end)
        i = self.base.find(sub, self.start + max(0, start), stop)
        return -1 if i < 0 else i - self.start

    def rfind(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """Return the last offset of `sub` in the window (relative), or -1."""
        stop = self.end if end is None else min(self.end, self.start + end)
        i = self.base.rfind(sub, self.start + max(0, start), stop)
        return -1 if i < 0 else i - self.start

    def read(self, a: int, b: int) -> bytes:
        """Return a copy of bytes [a, b) of the window (clamped)."""
        a = max(0, a)
        b = min(b, len(self))
        if b <= a:
            return b""
        return bytes(self.base[self.start + a : self.start + b])

    def window(self, a: int, b: int | None = None) -> _View:
        """Return the sub-window [a, b) (clamped), sharing the buffer."""
        b = len(self) if b is None else min(b, len(self))
        a = min(max(0, a), b)
        return _View(self.base, self.start + a, self.start + b)

    def memory(self) -> memoryview | bytes:
        """Return the window without copying: the bytes object itself when the window covers all of it."""
        if type(self.base) is bytes and self.start == 0 and self.end == len(self.base):
            return self.base  # the stream reader needs bytes: a memoryview here would be copied again
        return memoryview(self.base)[self.start : self.end]

    def chunks(self, size: int = _CHUNK) -> Iterator[bytes]:
        """Yield the window as consecutive byte chunks."""
        for a in range(0, len(self), size):
            yield self.read(a, a + size)


class _ViewReader(io.RawIOBase):
    """A read-only, seekable file object over a `_View` (for tarfile and py7zr)."""

    def __init__(self, view: _View) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        """Return True."""
        return True

    def seekable(self) -> bool:
        """Return True."""
        return True

    def tell(self) -> int:
        """Return the current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:  # noqa: ANN401 - buffer protocol object
        """Read into a writable buffer."""
        data = self._view.read(self._pos, self._pos + len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        self._pos += n
        return n


class _ZlibAdapter:
    """Give a zlib decompressor the bz2/lzma incremental interface."""

    def __init__(self, wbits: int) -> None:
        self._d = zlib.decompressobj(wbits)
        self.needs_input = True

    @property
    def eof(self) -> bool:
        """True once the end of the compressed stream was reached."""
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        """Bytes after the end of the compressed stream."""
        return self._d.unused_data

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Decompress `data` plus any pending input, returning at most `max_length` bytes."""
        pending = self._d.unconsumed_tail + data
        out = self._d.decompress(pending, max_length if max_length > 0 else 0)
        # A full output buffer may leave output pending inside zlib even when all input was taken.
        self.needs_input = not self._d.unconsumed_tail and (max_length <= 0 or len(out) < max_length)
        return out


@dataclass(slots=True)
class _ZipEntry:
    name: str
    method: int
    flags: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    """Offset of the local header, relative to the start of the zip."""
    data_start: int = -1
    """Offset of the entry data relative to the view (set by the local-header walk)."""
    inflated: bytearray | None = None
    """Output already produced while finding the end of a descriptor-terminated entry."""


def looks_like_pickle(head: bytes) -> bool:
    """Return True when `head` starts the way real pickles start (PROTO, GLOBAL/INST line, MARK...)."""
    if not head:
        return False
    b0 = head[0]
    if b0 == 0x80:
        return len(head) < 2 or head[1] <= 5
    if b0 in b"ci":
        return _GLOBAL_RE.match(head) is not None
    return b0 in b"(]})"


def sniff(head: bytes) -> str | None:
    """Return the container kind that `head` (the first bytes of a region) announces, or None."""
    if head.startswith((_ZIP_LOCAL, _ZIP_EOCD)):
        return "zip"
    if head.startswith(_GZIP):
        return "gzip"
    if _BZ2_RE.match(head):
        return "bz2"
    if head.startswith(_XZ):
        return "xz"
    if len(head) >= 13 and head[0] == 0x5D and head[1:3] == b"\x00\x00":
        return "lzma"
    if head.startswith(_LZ4):
        return "lz4"
    if head.startswith(_SEVEN_Z):
        return "7z"
    if head.startswith(_NPY):
        return "npy"
    if head.startswith(_ZFILE) and re.match(rb"ZF0x[0-9a-fA-F]+ *", head):
        return "zfile"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "zlib"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _descr_has_object(descr: Any) -> bool:  # noqa: ANN401 - literal from the npy header
    """Return True when a numpy dtype description contains an object field (pickled by numpy)."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=!").startswith("O")
    if isinstance(descr, list | tuple):
        for item in descr:
            if isinstance(item, tuple | list) and len(item) >= 2:
                if _descr_has_object(item[1]):
                    return True
            elif _descr_has_object(item):
                return True
    return False


class ContainerWalker:
    """Walk the containers of one file and yield the pickle regions inside, recording anomalies."""

    def __init__(self, limits: Limits, deadline: float | None = None) -> None:
        """Prepare a walk; `deadline` is a `time.monotonic()` value past which walking stops."""
        self.limits = limits
        self.deadline = deadline
        self.anomalies: list[Anomaly] = []
        self.kinds: list[str] = []
        self.decompressed_bytes = 0
        self.timed_out = False

    # --- bookkeeping ---------------------------------------------------------------------------
    def _anomaly(self, kind: str, offset: int, location: str, detail: str = "") -> None:
        self.anomalies.append(Anomaly(kind=kind, offset=offset, location=location, detail=detail))

    def _kind(self, kind: str) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)

    def _out_of_time(self, location: str) -> bool:
        if self.timed_out:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            self._anomaly("limit_time", 0, location, f"max_seconds={self.limits.max_seconds} reached")
        return self.timed_out

    # --- entry point ---------------------------------------------------------------------------
    def walk(self, data: Searchable | memoryview, name: str) -> Iterator[Region]:
        """Yield every pickle region of `data` (a whole file), outermost container first."""
        if isinstance(data, memoryview):
            data = data.tobytes()
        yield from self._dispatch(_View(data), name, 0, (), pickle_hint=True)

    def _dispatch(
        self, view: _View, loc: str, depth: int, chain: tuple[str, ...], *, pickle_hint: bool
    ) -> Iterator[Region]:
        """Open `view` as whatever container it is, or yield it as a raw pickle region."""
        if self._out_of_time(loc):
            return
        if len(view) == 0:
            self._anomaly("not_pickle", 0, loc, "empty")
            return
        head = view.read(0, 512)
        kind = sniff(head)
        if kind is not None:
            if depth >= self.limits.max_container_depth:
                self._anomaly(
                    "limit_depth", 0, loc, f"{kind} nested deeper than {self.limits.max_container_depth}"
                )
                return
            yield from self._open(kind, view, loc, depth, chain)
            return
        zip_start = self._find_embedded_zip(view, head)
        if zip_start is not None and depth < self.limits.max_container_depth:
            if looks_like_pickle(head):
                # A pickle loader (torch.load's legacy path) runs the bytes from offset 0.
                yield from self._raw(view, loc, chain)
            yield from self._zip(view, loc, depth, chain)
            return
        if pickle_hint or looks_like_pickle(head):
            yield from self._raw(view, loc, chain)

    def _open(self, kind: str, view: _View, loc: str, depth: int, chain: tuple[str, ...]) -> Iterator[Region]:
        if kind == "zip":
            yield from self._zip(view, loc, depth, chain)
        elif kind == "npy":
            yield from self._npy(view, loc, chain)
        elif kind == "tar":
            yield from self._tar(view, loc, depth, chain)
        elif kind == "7z":
            yield from self._seven_zip(view, loc, depth, chain)
        else:
            yield from self._compressed(kind, view, loc, depth, chain)

    def _raw(
        self, view: _View, loc: str, chain: tuple[str, ...], *, first_only: bool = False
    ) -> Iterator[Region]:
        cap = self.limits.max_pickle_bytes
        if len(view) > cap:
            self._anomaly(
                "limit_bytes", cap, loc, f"pickle region of {len(view)} bytes cut at max_pickle_bytes={cap}"
            )
            view = view.window(0, cap)
        yield Region(
            location=loc, data=view.memory(), offset=view.start, chain=chain, first_stream_only=first_only
        )

    # --- decompression -------------------------------------------------------------------------
    def _budget(self) -> int:
        return max(
            0,
            min(
                self.limits.max_decompressed_bytes,
                self.limits.max_total_decompressed_bytes - self.decompressed_bytes,
            ),
        )

    def _inflate(
        self,
        make: Callable[[], _Decompressor],
        view: _View,
        loc: str,
        kind: str,
        *,
        multi_member: bool = False,
        member_magic: bytes = b"",
        report_tail: bool = True,
    ) -> tuple[bytearray, int, bool]:
        """Decompress `view` incrementally within the limits: (output, end of the compressed data, complete).

        Output is requested in steps of at most _STEP bytes up to the remaining budget (then one more byte to
        learn whether there is more) and appended to one growing buffer, so a bomb costs about its budget in
        memory, not twice (a decompressor asked for everything at once builds its output twice).
        """
        cap = self._budget()
        out = bytearray()
        dec = make()
        fed = 0
        carry = b""
        hit_limit = False
        for chunk in view.chunks():
            if self._out_of_time(loc):
                break
            if dec.eof:  # the previous member ended exactly at a chunk boundary
                if not (multi_member and chunk.startswith(member_magic)):
                    break
                dec = make()
            fed += len(chunk)
            data = chunk
            while True:
                room = cap - len(out)
                try:
                    piece = dec.decompress(data, min(room, _STEP) if room > 0 else 1)  # 0 is unbounded
                except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, RuntimeError) as exc:
                    if isinstance(exc, lzma.LZMAError) and "memory usage limit" in str(exc).lower():
                        self._anomaly(
                            "limit_decompressed",
                            fed - len(chunk),
                            loc,
                            f"{kind}: the stream needs a decoder over {LZMA_MEMLIMIT} bytes of memory",
                        )
                    else:
                        self._anomaly("container_corrupt", fed - len(chunk), loc, f"{kind}: {exc}")
                    return self._account(out), fed, False
                data = b""
                if room <= 0:
                    if piece:  # output goes on past the budget
                        hit_limit = True
                        break
                else:
                    out += piece
                    del piece
                if dec.eof:
                    rest = dec.unused_data or b""
                    if multi_member and rest and rest.startswith(member_magic):
                        dec = make()
                        data = rest
                        continue
                    carry = rest
                    break
                if dec.needs_input:
                    break
            if hit_limit or carry:
                break
        if hit_limit:
            self._anomaly(
                "limit_decompressed",
                0,
                loc,
                f"{kind} output cut at {cap} bytes (max_decompressed_bytes / max_total_decompressed_bytes)",
            )
            return self._account(out), fed, False
        if not dec.eof:
            if not self.timed_out:
                self._anomaly(
                    "container_corrupt", fed, loc, f"{kind}: data ends before the end-of-stream marker"
                )
            return self._account(out), fed, False
        end = fed - len(carry)
        tail_len = len(view) - end
        if report_tail and tail_len > 0:
            head = view.read(end, end + _TAIL_PEEK)  # bounded: a huge tail is never copied whole
            if kind != "gzip" or head.strip(b"\x00") or tail_len > _TAIL_PEEK:
                self._anomaly("container_appended", end, loc, f"{tail_len} bytes after the {kind} stream")
        return self._account(out), end, True

    def _account(self, out: bytearray) -> bytearray:
        """Count `out` against the file's budget and return it (a bytearray: copying it would double it)."""
        self.decompressed_bytes += len(out)
        return out

    def _compressed(
        self, kind: str, view: _View, loc: str, depth: int, chain: tuple[str, ...]
    ) -> Iterator[Region]:
        make: Callable[[], _Decompressor]
        body = view
        multi, magic = False, b""
        if kind == "gzip":
            make, multi, magic = (lambda: _ZlibAdapter(31)), True, b"\x1f\x8b"
        elif kind == "zlib":
            make = lambda: _ZlibAdapter(15)  # noqa: E731
        elif kind == "zfile":
            skip = _ZFILE_HEADER + (1 if view.read(_ZFILE_HEADER, _ZFILE_HEADER + 1) == b" " else 0)
            body = view.window(skip)
            make = lambda: _ZlibAdapter(15)  # noqa: E731
        elif kind == "bz2":
            make, multi, magic = bz2.BZ2Decompressor, True, b"BZh"
        elif kind == "xz":
            make, multi, magic = (
                (lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT)),
                True,
                _XZ,
            )
        elif kind == "lzma":
            make = lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)  # noqa: E731
        elif kind == "lz4":
            try:
                import lz4.frame
            except ImportError:
                self._anomaly("unsupported_container", 0, loc, "lz4 frame: the lz4 package is not installed")
                return
            make, multi, magic = lz4.frame.LZ4FrameDecompressor, True, _LZ4
        else:  # pragma: no cover - sniff() only returns kinds handled above
            self._anomaly("unsupported_container", 0, loc, f"{kind}: no reader")
            return
        self._kind(kind)
        out, _, _ = self._inflate(make, body, loc, kind, multi_member=multi, member_magic=magic)
        if out:
            yield from self._dispatch(
                _View(out), f"{loc}!{kind}", depth + 1, (*chain, kind), pickle_hint=True
            )
        else:
            self._anomaly("not_pickle", 0, loc, f"{kind} stream decompressed to nothing")

    # --- numpy ---------------------------------------------------------------------------------
    def _npy(self, view: _View, loc: str, chain: tuple[str, ...]) -> Iterator[Region]:
        self._kind("npy")
        major = view.read(6, 7)
        if major == b"\x01":
            hlen_raw, hstart, enc = view.read(8, 10), 10, "latin1"
            hlen = struct.unpack("<H", hlen_raw)[0] if len(hlen_raw) == 2 else -1
        elif major in (b"\x02", b"\x03"):
            hlen_raw, hstart = view.read(8, 12), 12
            enc = "utf8" if major == b"\x03" else "latin1"
            hlen = struct.unpack("<I", hlen_raw)[0] if len(hlen_raw) == 4 else -1
        else:
            self._anomaly("container_corrupt", 6, loc, f"npy: unknown format version {major!r}")
            return
        if hlen < 0 or hstart + hlen > len(view) or hlen > 1 << 20:
            self._anomaly("container_corrupt", 8, loc, f"npy: bad header length {hlen}")
            return
        try:
            header = ast.literal_eval(view.read(hstart, hstart + hlen).decode(enc))
        except (ValueError, SyntaxError, UnicodeDecodeError, RecursionError, MemoryError, TypeError) as exc:
            self._anomaly("container_corrupt", hstart, loc, f"npy: unreadable header ({type(exc).__name__})")
            return
        if not isinstance(header, dict) or "descr" not in header:
            self._anomaly("container_corrupt", hstart, loc, "npy: header is not a dict with 'descr'")
            return
        if _descr_has_object(header["descr"]):
            yield from self._raw(view.window(hstart + hlen), loc, (*chain, "npy"))

    # --- zip -----------------------------------------------------------------------------------
    def _find_embedded_zip(self, view: _View, head: bytes) -> int | None:
        """Return where a zip starts inside a region that does not start with one, or None."""
        tail_from = max(0, len(view) - (22 + 65535))
        if view.find(_ZIP_EOCD, tail_from) >= 0:
            located = self._locate_eocd(view, tail_only=True)
            if located is not None:
                return located[0]
        if looks_like_pickle(head):
            return None
        i = view.find(_ZIP_LOCAL)
        return i if i > 0 else None

    def _locate_eocd(self, view: _View, *, tail_only: bool) -> tuple[int, int, int, int, int] | None:
        """Find a consistent end-of-central-directory record: (zip_start, cd_pos, cd_size, count, end)."""
        n = len(view)
        lower = max(0, n - (22 + 65535)) if tail_only else 0
        pos = view.rfind(_ZIP_EOCD, lower)
        while pos >= 0:
            rec = view.read(pos, pos + _EOCD.size)
            if len(rec) == _EOCD.size:
                _, _, _, _, count, cd_size, cd_offset, clen = _EOCD.unpack(rec)
                end = pos + _EOCD.size + clen
                cd_end = pos
                loc_pos = pos - _ZIP64_LOCATOR_REC.size
                if loc_pos >= 0 and view.read(loc_pos, loc_pos + 4) == _ZIP64_LOCATOR:
                    z64 = self._zip64_eocd(view, loc_pos)
                    if z64 is not None:
                        cd_end, count, cd_size, cd_offset = z64
                cd_pos = cd_end - cd_size
                if cd_pos >= 0 and (count == 0 or view.read(cd_pos, cd_pos + 4) == _ZIP_CENTRAL):
                    return cd_pos - cd_offset, cd_pos, cd_size, count, end
            pos = view.rfind(_ZIP_EOCD, lower, pos)
        return None

    def _zip64_eocd(self, view: _View, locator_pos: int) -> tuple[int, int, int, int] | None:
        rec_pos = view.rfind(_ZIP64_EOCD, max(0, locator_pos - 4096), locator_pos)
        if rec_pos < 0:
            return None
        rec = view.read(rec_pos, rec_pos + _ZIP64_EOCD_REC.size)
        if len(rec) < _ZIP64_EOCD_REC.size:
            return None
        _, _, _, _, _, _, _, count, cd_size, cd_offset = _ZIP64_EOCD_REC.unpack(rec)
        return rec_pos, count, cd_size, cd_offset

    def _central_directory(
        self, view: _View, cd_pos: int, cd_size: int, count: int, loc: str
    ) -> list[_ZipRecord] | None:
        """Return the central directory's records, or None (an anomaly recorded) when one is not a record."""
        end = cd_pos + cd_size
        records: list[_ZipRecord] = []
        pos = cd_pos
        while pos < end:
            if self._out_of_time(loc):
                break
            rec = view.read(pos, pos + _CENTRAL_HEADER.size)
            if len(rec) < _CENTRAL_HEADER.size or rec[:4] != _ZIP_CENTRAL:
                self._anomaly(
                    "container_corrupt", pos, loc, f"zip: bad central directory record #{len(records)}"
                )
                return None
            f = _CENTRAL_HEADER.unpack(rec)
            flags, method, crc, csize, usize = f[5], f[6], f[9], f[10], f[11]
            nlen, elen, clen, offset = f[12], f[13], f[14], f[18]
            raw_name = view.read(pos + 46, pos + 46 + nlen)
            if 0xFFFFFFFF in (usize, csize, offset):
                extra = view.read(pos + 46 + nlen, pos + 46 + nlen + elen)
                usize, csize, offset = _apply_zip64_extra(extra, usize, csize, offset)
            name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            records.append((name, method, flags, crc, csize, usize, offset))
            pos += 46 + nlen + elen + clen
        if count not in (len(records), 0xFFFF) and count < 0xFFFF:
            self._anomaly(
                "container_corrupt", cd_pos, loc, f"zip: {len(records)} entries listed, {count} declared"
            )
        return records

    def _walk_local_headers(self, view: _View, start: int, loc: str) -> list[_ZipEntry]:
        """Find entries by their local headers, the way lenient readers do when the directory is gone."""
        entries: list[_ZipEntry] = []
        pos = view.find(_ZIP_LOCAL, start)
        while pos >= 0:
            if self._out_of_time(loc):
                break
            rec = view.read(pos, pos + _LOCAL_HEADER.size)
            if len(rec) < _LOCAL_HEADER.size:
                break
            f = _LOCAL_HEADER.unpack(rec)
            flags, method, crc, csize, usize, nlen, elen = f[3], f[4], f[7], f[8], f[9], f[10], f[11]
            name = view.read(pos + 30, pos + 30 + nlen).decode(
                "utf-8" if flags & 0x800 else "cp437", errors="replace"
            )
            extra = view.read(pos + 30 + nlen, pos + 30 + nlen + elen)
            usize, csize, _ = _apply_zip64_extra(extra, usize, csize, 0)
            data_start = pos + 30 + nlen + elen
            entry = _ZipEntry(name, method, flags, crc, csize, usize, pos - start, data_start=data_start)
            if flags & 0x08 and csize in (0, 0xFFFFFFFF):
                self._descriptor_bounds(view, entry, loc)
            entries.append(entry)
            nxt = data_start + max(entry.csize, 0)
            pos = view.find(_ZIP_LOCAL, max(nxt, pos + 4))
        return entries

    def _descriptor_bounds(self, view: _View, entry: _ZipEntry, loc: str) -> None:
        """Find the compressed size of an entry whose sizes follow its data (general flag bit 3)."""
        if entry.method == 8:
            body = view.window(entry.data_start)
            out, end, complete = self._inflate(
                lambda: _ZlibAdapter(-15), body, f"{loc}!{entry.name}", "deflate", report_tail=False
            )
            entry.inflated = out
            if complete:
                entry.csize, entry.usize = end, len(out)
                return
        candidates = [
            i
            for i in (view.find(s, entry.data_start) for s in (_ZIP_DESCRIPTOR, _ZIP_LOCAL, _ZIP_CENTRAL))
            if i >= 0
        ]
        end = min(candidates) if candidates else len(view)
        entry.csize = end - entry.data_start
        if entry.method == 0:
            entry.usize = entry.csize

    def _zip(self, view: _View, loc: str, depth: int, chain: tuple[str, ...]) -> Iterator[Region]:
        self._kind("zip")
        chain = (*chain, "zip")
        located = self._locate_eocd(view, tail_only=True) or self._locate_eocd(view, tail_only=False)
        entries: list[_ZipEntry] | None = None
        flavour: str | None = None
        zip_start = 0
        if located is not None:
            zip_start, cd_pos, cd_size, count, end = located
            if zip_start < 0:
                self._anomaly(
                    "container_corrupt", cd_pos, loc, "zip: central directory offset points past its position"
                )
                zip_start = 0
            records = self._central_directory(view, cd_pos, cd_size, count, loc)
            if records is not None:
                names = [r[0] for r in records]
                flavour = _zip_flavour(names)
                entries = [_ZipEntry(*records[i]) for i in _entries_to_read(names, flavour)]
                if zip_start > 0:
                    self._anomaly("container_prepended", 0, loc, f"{zip_start} bytes before the zip archive")
                if end < len(view):
                    self._anomaly(
                        "container_appended", end, loc, f"{len(view) - end} bytes after the zip archive"
                    )
        elif view.rfind(_ZIP_EOCD) >= 0:
            self._anomaly(
                "container_corrupt",
                view.rfind(_ZIP_EOCD),
                loc,
                "zip: central directory not where its end record points",
            )
        else:
            self._anomaly("container_corrupt", len(view), loc, "zip: no end-of-central-directory record")
        if entries is None:
            first = max(0, view.find(_ZIP_LOCAL))
            if first > 0 and located is None:
                self._anomaly(
                    "container_prepended", 0, loc, f"{first} bytes before the first zip local header"
                )
            walked = self._walk_local_headers(view, first, loc)
            zip_start = first
            self._anomaly(
                "container_corrupt",
                first,
                loc,
                f"zip: read {len(walked)} entries from local headers instead",
            )
            names = [e.name for e in walked]
            flavour = _zip_flavour(names)
            entries = [walked[i] for i in _entries_to_read(names, flavour)]
        yield from self._zip_entries(view, entries, flavour, zip_start, loc, depth, chain)

    def _zip_entries(
        self,
        view: _View,
        entries: list[_ZipEntry],
        flavour: str | None,
        zip_start: int,
        loc: str,
        depth: int,
        chain: tuple[str, ...],
    ) -> Iterator[Region]:
        if flavour:
            self._kind(flavour)
            chain = (*chain, flavour)
        for entry in entries:
            if self._out_of_time(loc):
                return
            name = entry.name
            eloc = f"{loc}!{name}"
            is_pickle_name = _PICKLE_NAME.search(name) is not None
            if not is_pickle_name:
                peeked = self._entry_body(view, entry, zip_start, eloc, peek=True)
                if peeked is None:
                    continue
                head = peeked.read(0, _PEEK)
                if not (sniff(head) or looks_like_pickle(head)):
                    if entry.flags & 0x01:
                        self._anomaly(
                            "unsupported_container", 0, eloc, "zip: encrypted entry (password-protected)"
                        )
                    continue  # data, not something a loader unpickles
            body = self._entry_body(view, entry, zip_start, eloc, peek=False)
            if body is None:
                continue
            if entry.flags & 0x01:
                self._anomaly(
                    "container_corrupt", 0, eloc, "zip: encrypted flag set on an entry stored in plain text"
                )
            yield from self._dispatch(body, eloc, depth + 1, chain, pickle_hint=is_pickle_name)

    def _entry_body(
        self, view: _View, entry: _ZipEntry, zip_start: int, eloc: str, *, peek: bool
    ) -> _View | None:
        """Return an entry's content (only its first bytes when `peek`), or None when unreadable."""
        if entry.data_start < 0:
            lh = zip_start + entry.header_offset
            rec = view.read(lh, lh + _LOCAL_HEADER.size)
            if len(rec) < _LOCAL_HEADER.size or rec[:4] != _ZIP_LOCAL:
                self._anomaly("container_corrupt", lh, eloc, "zip: local file header missing")
                return None
            f = _LOCAL_HEADER.unpack(rec)
            entry.data_start = lh + _LOCAL_HEADER.size + f[10] + f[11]
        start = entry.data_start
        if start + entry.csize > len(view):
            self._anomaly(
                "container_corrupt", start, eloc, "zip: entry data runs past the end of the archive"
            )
        raw = view.window(start, start + entry.csize)
        if entry.inflated is not None:
            return _View(entry.inflated)
        if entry.method == 0:
            if not peek and entry.crc and len(raw) <= self.limits.max_pickle_bytes:
                crc = 0
                for chunk in raw.chunks():
                    crc = zlib.crc32(chunk, crc)
                if crc != entry.crc:
                    self._anomaly(
                        "container_corrupt", start, eloc, "zip: CRC-32 mismatch (the data was altered)"
                    )
            return raw
        makers: dict[int, Callable[[], _Decompressor]] = {
            8: lambda: _ZlibAdapter(-15),
            12: bz2.BZ2Decompressor,
        }
        if entry.method == 14:
            make = _zip_lzma_maker(raw)
            if make is None:
                self._anomaly("container_corrupt", start, eloc, "zip: bad lzma properties header")
                return None
            raw = raw.window(4 + struct.unpack("<H", raw.read(2, 4))[0])
        elif entry.method in makers:
            make = makers[entry.method]
        else:
            self._anomaly(
                "unsupported_container", start, eloc, f"zip: compression method {entry.method} not supported"
            )
            return None
        method = _ZIP_METHODS.get(entry.method, str(entry.method))
        if peek:
            try:
                return _View(make().decompress(raw.read(0, 8192), _PEEK))
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
                self._anomaly("container_corrupt", start, eloc, f"zip {method}: {exc}")
                return None
        out, _, _ = self._inflate(make, raw, eloc, method)
        if entry.crc and zlib.crc32(out) != entry.crc and len(out) == entry.usize:
            self._anomaly("container_corrupt", start, eloc, "zip: CRC-32 mismatch (the data was altered)")
        return _View(out)

    # --- tar -----------------------------------------------------------------------------------
    def _tar(self, view: _View, loc: str, depth: int, chain: tuple[str, ...]) -> Iterator[Region]:
        self._kind("tar")
        try:
            with tarfile.open(fileobj=io.BufferedReader(_ViewReader(view)), mode="r:") as tar:
                members = tar.getmembers()
        except (tarfile.TarError, OSError, ValueError, EOFError) as exc:
            self._anomaly("container_corrupt", 0, loc, f"tar: {exc}")
            return
        torch_tar = {m.name for m in members} >= {"pickle", "storages"} or (
            {m.name for m in members} & _TORCH_TAR_MEMBERS == _TORCH_TAR_MEMBERS
        )
        chain = (*chain, "tar")
        if torch_tar:
            self._kind("torch_tar")
            chain = (*chain, "torch_tar")
        for m in members:
            if self._out_of_time(loc):
                return
            if not m.isfile():
                continue
            body = view.window(m.offset_data, m.offset_data + m.size)
            mloc = f"{loc}!{m.name}"
            if torch_tar and m.name in _TORCH_TAR_MEMBERS:
                yield from self._raw(body, mloc, chain, first_only=m.name in _TORCH_TAR_FIRST_STREAM_ONLY)
            else:
                yield from self._dispatch(
                    body, mloc, depth + 1, chain, pickle_hint=bool(_PICKLE_NAME.search(m.name))
                )

    # --- 7z ------------------------------------------------------------------------------------
    def _seven_zip(self, view: _View, loc: str, depth: int, chain: tuple[str, ...]) -> Iterator[Region]:
        self._kind("7z")
        try:
            import py7zr
            from py7zr.io import Py7zIO, WriterFactory
        except ImportError:
            self._anomaly("unsupported_container", 0, loc, "7z: py7zr is not installed")
            return
        budget = self._budget()
        outputs: dict[str, bytearray] = {}
        truncated: set[str] = set()

        class _Writer(Py7zIO):
            def __init__(self, filename: str) -> None:
                self.filename = filename
                outputs[filename] = bytearray()

            def write(self, s: bytes | bytearray) -> int:
                buf = outputs[self.filename]
                room = budget - sum(len(b) for b in outputs.values())
                if room < len(s):
                    truncated.add(self.filename)
                buf += s[: max(0, room)]
                return len(s)

            def read(self, size: int | None = None) -> bytes:
                return b""

            def seek(self, offset: int, whence: int = 0) -> int:
                return 0

            def flush(self) -> None:
                return None

            def size(self) -> int:
                return len(outputs[self.filename])

        class _Factory(WriterFactory):
            def __init__(self, root: str) -> None:
                self.root = root

            def create(self, filename: str) -> Py7zIO:
                name = os.path.relpath(filename, self.root) if os.path.isabs(filename) else filename
                return _Writer(name.replace(os.sep, "/"))

        try:
            with (
                tempfile.TemporaryDirectory(prefix="safepickle-7z-") as tmp,
                py7zr.SevenZipFile(io.BufferedReader(_ViewReader(view)), mode="r") as archive,
            ):
                declared = sum(int(i.uncompressed or 0) for i in archive.list() if not i.is_directory)
                if declared > budget:
                    self._anomaly(
                        "limit_decompressed",
                        0,
                        loc,
                        f"7z declares {declared} bytes, over the budget of {budget}",
                    )
                archive.extract(path=tmp, factory=_Factory(tmp))
        except Exception as exc:  # py7zr raises many types for unreadable archives
            self._anomaly(
                "unsupported_container", 0, loc, f"7z: archive unreadable ({type(exc).__name__}: {exc})"
            )
        if truncated:
            self._anomaly("limit_decompressed", 0, loc, f"7z output cut at {budget} bytes")
        self.decompressed_bytes += sum(len(b) for b in outputs.values())
        chain = (*chain, "7z")
        for name, data in outputs.items():
            if not data:
                continue
            yield from self._dispatch(
                _View(bytes(data)),
                f"{loc}!{name}",
                depth + 1,
                chain,
                pickle_hint=bool(_PICKLE_NAME.search(name)),
            )


def _apply_zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Replace 0xFFFFFFFF sizes/offset with their values from a ZIP64 extra field."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[pos : pos + 4])
        if tag == 0x0001:
            data = extra[pos + 4 : pos + 4 + size]
            vals = [struct.unpack("<Q", data[i : i + 8])[0] for i in range(0, len(data) - 7, 8)]
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if offset == 0xFFFFFFFF:
                offset = next(it, offset)
            break
        pos += 4 + size
    return usize, csize, offset


def _zip_lzma_maker(raw: _View) -> Callable[[], _Decompressor] | None:
    """Return a decompressor factory for a zip lzma entry (4-byte header, then LZMA1 properties)."""
    head = raw.read(0, 4)
    if len(head) < 4:
        return None
    psize = struct.unpack("<H", head[2:4])[0]
    props = raw.read(4, 4 + psize)
    try:
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
    except (lzma.LZMAError, ValueError):
        return None
    if filt.get("dict_size", 0) > LZMA_MEMLIMIT:  # FORMAT_RAW takes no memlimit: check the dictionary here
        return None
    return lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])


def _entries_to_read(names: list[str], flavour: str | None) -> list[int]:
    """Return the indices of the entries a loader may unpickle: not directories, not torch tensor storages."""
    torch_like = flavour in ("torch_zip", "torchscript")
    if torch_like:
        tensor = _TORCH_TENSOR_ENTRY.search
        return [i for i, n in enumerate(names) if not (n.endswith("/") or tensor(n))]
    return [i for i, n in enumerate(names) if not n.endswith("/")]


_ZipRecord = tuple[str, int, int, int, int, int, int]
"""A central directory record: name, method, flags, crc, compressed size, size, local header offset."""


def _zip_flavour(names: list[str]) -> str | None:
    """Return `torchscript`, `torch_zip` or `npz` when the entry names show that layout, else None."""
    if not names:
        return None
    # Substring tests on all names joined first: a name-by-name scan only runs when one can succeed.
    joined = "\n".join(names)
    has_data_pkl = "data.pkl" in joined and any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
    if has_data_pkl and "code/" in joined and any(n.startswith("code/") or "/code/" in n for n in names):
        return "torchscript"
    if has_data_pkl or (
        ".data/" in joined and any(n.endswith((".data/version", ".data/serialization_id")) for n in names)
    ):
        return "torch_zip"
    if all(n.endswith(".npy") for n in names):
        return "npz"
    return None
