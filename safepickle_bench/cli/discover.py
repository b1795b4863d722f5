"""Inputs of `scan` and `analyze`: turn command-line arguments into the model files to analyse.

An argument is a file, a directory (walked recursively, in sorted order), an `hf://owner/name[@revision]`
reference, or, with `--hf-cache`, the whole local Hugging Face cache. Every file found is recognised by its
content, never by its name, with the analyzer's own sniffing (`analysis.containers`):

- a pickle (`looks_like_pickle`), a compressed or numpy file, a PyTorch/TorchScript/npz zip or an old
  PyTorch tar is ONE model file;
- any other zip or tar (also `.tar.gz/.bz2/.xz`) is an archive: its regular members are read (within
  `ArchiveLimits`) and each is classified like a file, shown as `archive!member`. One level only: an
  archive inside an archive is one model file, which the analyzer opens itself. When the standard library
  cannot read a member (encrypted flag, unknown method, bad CRC), the whole archive is scanned as one file
  by the analyzer, whose zip reader tolerates what `zipfile` refuses;
- anything else is analysed statically and counts as a model file when it holds a pickle stream that imports
  something, a clean complete stream, or a stream cut short by the end of what was read (files over
  `FULL_ANALYSIS_BYTES` are judged on their first MiB, plus a zip end record in their last 64 KiB). Text,
  images, JSON, safetensors and the like are skipped and counted, never errors.

Unreadable files and directories are errors. Symbolic links to files are followed (the Hub cache is made
of them); links to directories inside a walk are not (as `find` does), so a link loop cannot trap the walk;
a link named on the command line is followed. `--exclude GLOB` is matched (`fnmatch`, case-sensitive) on
the path relative to the argument and on the base name, for files, directories (pruned) and archive
members. Files named explicitly are sniffed too (pre-commit passes every staged file); `analyze` asks for
them to be analysed as given instead (`sniff_explicit=False`), and opens no archive (`open_archives=False`):
the analyzer already shows each member's streams.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO

from safepickle_bench.analysis.containers import (
    _TORCH_TAR_MEMBERS,
    _zip_flavour,
    looks_like_pickle,
    sniff,
)
from safepickle_bench.analysis.result import Analysis
from safepickle_bench.cli import hub

HEAD_BYTES = 4096
"""Bytes read from every file to recognise it."""
FULL_ANALYSIS_BYTES = 64 << 20
"""Files of unknown content up to this size are analysed whole to decide whether they hold a pickle."""
PROBE_BYTES = 1 << 20
"""Bytes analysed at the start of a larger file of unknown content."""
ZIP_TAIL_BYTES = (64 << 10) + 22
"""The end of a file where a zip end-of-central-directory record (and its comment) would sit."""
_ZIP_EOCD = b"PK\x05\x06"
_MODEL_KINDS = frozenset({"gzip", "bz2", "xz", "lzma", "lz4", "7z", "npy", "zfile", "zlib"})
"""Containers the analyzer opens that wrap one model file (joblib's compressors, numpy, 7z)."""
_TAR_WRAPPERS = frozenset({"gzip", "bz2", "xz"})
"""Compressions tarfile reads: a `.tar.gz` of model files is an archive, not one model file."""


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on what is read out of one zip or tar archive."""

    max_members: int = 10_000
    max_member_bytes: int = 512 << 20
    max_total_bytes: int = 2 << 30


@dataclass(frozen=True, slots=True)
class Found:
    """A model file to analyse: a file on disk (`path`) or the bytes of an archive member (`data`)."""

    display: str
    path: Path | None = None
    data: bytes | None = None
    source: int = 0
    """Index of the file on disk it comes from (progress counts files, an archive is one)."""
    container: str = ""
    """For an archive member: the display of the archive it was read from (its member is what follows `!`)."""

    @property
    def member(self) -> str:
        """Return the member name inside `container`, or ''."""
        return self.display[len(self.container) + 1 :] if self.container else ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that holds no pickle (text, image...), or a link not followed: counted, not reported."""

    display: str
    reason: str
    source: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """An input that could not be read: it becomes an error verdict."""

    display: str
    error: str
    source: int = 0


Entry = Found | Skipped | Failed


@dataclass(frozen=True, slots=True)
class Options:
    """How inputs are discovered."""

    exclude: tuple[str, ...] = ()
    open_archives: bool = True
    sniff_explicit: bool = True
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    hf_cache_dir: Path | None = None
    """Where `hf://` references are downloaded to or read from (None: huggingface_hub's default)."""
    hf_local_only: bool | None = None
    """True: answer `hf://` from the cache only; None: huggingface_hub's default (`HF_HUB_OFFLINE`)."""


@dataclass(frozen=True, slots=True)
class _File:
    """A file to classify: where it is, what to show, its path relative to its argument, and how it was named."""

    path: Path
    display: str
    relative: str
    explicit: bool


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Return True when a pattern matches the relative path or its base name."""
    if not patterns:
        return False
    name = PurePosixPath(relative).name
    return any(fnmatchcase(relative, p) or fnmatchcase(name, p) for p in patterns)


# ------------------------------------------------------------------------------------------ walking
class Discovery:
    """The inputs of one run: `files` lists what is on disk, iterating yields the entries in order."""

    def __init__(self, inputs: Sequence[str], options: Options, *, hf_cache: Path | None = None) -> None:
        self.options = options
        self.problems: list[tuple[int, Entry]] = []
        self.files: list[_File] = []
        self._plan(inputs, hf_cache)

    def _plan(self, inputs: Sequence[str], hf_cache: Path | None) -> None:
        """List every file to classify (cheap: names only), and the inputs that already failed."""
        for arg in inputs:
            if hub.is_hub_ref(arg):
                self._hub(arg)
            else:
                self._argument(Path(arg), arg)
        if hf_cache is not None:
            if not Path(hf_cache).is_dir():
                self._fail(str(hf_cache), f"Hugging Face cache not found: {hf_cache}")
            for snap in hub.cached_snapshots(hf_cache):
                self._walk(snap.folder, snap.prefix, explicit=False)

    def _fail(self, display: str, error: str) -> None:
        self.problems.append((len(self.files), Failed(display, error, len(self.files))))

    def _skip(self, display: str, reason: str) -> None:
        self.problems.append((len(self.files), Skipped(display, reason, len(self.files))))

    def _hub(self, arg: str) -> None:
        try:
            snap = hub.fetch(
                hub.parse_hub_ref(arg),
                cache_dir=self.options.hf_cache_dir,
                local_files_only=self.options.hf_local_only,
            )
        except Exception as exc:  # unknown repo, no network, not cached offline: an error verdict, not a crash
            self._fail(arg, f"cannot fetch {arg}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            return
        start = snap.folder / snap.subpath if snap.subpath else snap.folder
        prefix = f"{snap.prefix}/{snap.subpath}" if snap.subpath else snap.prefix
        if start.is_dir():
            self._walk(start, prefix, explicit=False)
        elif start.exists():
            self.files.append(_File(start, prefix, PurePosixPath(snap.subpath).name, explicit=True))
        else:
            self._fail(arg, f"{snap.subpath!r} is not in {snap.prefix}")

    def _argument(self, path: Path, display: str) -> None:
        try:
            mode = os.stat(path).st_mode  # follows a link named on the command line
        except OSError as exc:
            self._fail(display, f"cannot read {display}: {exc.strerror or exc}")
            return
        if stat.S_ISDIR(mode):
            self._walk(path, display.rstrip("/") or "/", explicit=False)
        elif stat.S_ISREG(mode):
            self.files.append(_File(path, display, path.name, explicit=True))
        else:  # a FIFO or device would block or never end: never opened
            self._fail(display, f"not a regular file: {display}")

    def _walk(self, top: Path, shown: str, *, explicit: bool) -> None:
        """Add every file under `top`, pruning excluded and linked directories."""
        patterns = self.options.exclude

        def on_error(exc: OSError) -> None:
            where = _join(shown, os.path.relpath(exc.filename, top) if exc.filename else "")
            self._fail(where, f"cannot read {where}: {exc.strerror or exc}")

        for folder, dirs, names in os.walk(top, onerror=on_error, followlinks=False):
            rel_folder = os.path.relpath(folder, top)
            rel_folder = "" if rel_folder == "." else rel_folder.replace(os.sep, "/")
            keep = []
            for d in sorted(dirs):
                rel = f"{rel_folder}/{d}" if rel_folder else d
                if excluded(rel, patterns):
                    continue
                if os.path.islink(os.path.join(folder, d)):
                    self._skip(_join(shown, rel), "link to a directory (not followed)")
                    continue
                keep.append(d)
            dirs[:] = keep
            for name in sorted(names):
                rel = f"{rel_folder}/{name}" if rel_folder else name
                if excluded(rel, patterns):
                    continue
                full = Path(folder) / name
                try:
                    mode = os.stat(full).st_mode
                except OSError as exc:  # a dangling link or a link loop: nothing a loader could read
                    if os.path.islink(full):
                        self._skip(_join(shown, rel), f"broken link ({exc.strerror or exc})")
                    else:
                        self._fail(_join(shown, rel), f"cannot read {_join(shown, rel)}: {exc.strerror or exc}")
                    continue
                if stat.S_ISREG(mode):
                    self.files.append(_File(full, _join(shown, rel), rel, explicit))
                else:
                    self._skip(_join(shown, rel), "not a regular file")

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Entry]:
        problems = iter(self.problems)
        pending = next(problems, None)
        for index, f in enumerate(self.files):
            while pending is not None and pending[0] <= index:
                yield pending[1]
                pending = next(problems, None)
            yield from classify_file(f, index, self.options)
        while pending is not None:
            yield pending[1]
            pending = next(problems, None)


def _join(shown: str, rel: str) -> str:
    """Return the display of `rel` under an argument shown as `shown`."""
    if rel in ("", "."):
        return shown
    return f"{shown.rstrip('/')}/{rel}" if shown else rel


def discover(
    inputs: Sequence[str], options: Options | None = None, *, hf_cache: Path | None = None
) -> Discovery:
    """Return the discovery of `inputs` (and of the Hub cache `hf_cache` when given)."""
    return Discovery(inputs, options or Options(), hf_cache=hf_cache)


# ------------------------------------------------------------------------------------------ content
def holds_pickle(analysis: Analysis, *, cut: bool = False) -> bool:
    """Return True when an analysis found a pickle a loader could run.

    That is a stream importing something (every call needs an imported callable), a complete stream without
    anomalies, or (`cut`: only the start of the file was analysed) a stream that ran to the end of it.
    """
    for s in analysis.streams:
        if s.imports:
            return True
        kinds = {a.kind for a in s.anomalies}
        if s.complete and not kinds:
            return True
        if cut and "truncated" in kinds and "unknown_opcode" not in kinds:
            return True
    return False


def _decompressed_head(kind: str, head: bytes) -> bytes:
    """Return up to 1 KiB of what a compressed `head` decompresses to (b'' when it does not)."""
    import bz2
    import lzma

    makers: dict[str, Callable[[], object]] = {
        "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
        "zlib": lambda: zlib.decompressobj(),
        "bz2": bz2.BZ2Decompressor,
        "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
        "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE),
    }
    make = makers.get(kind)
    if make is None:
        return b""
    try:
        return make().decompress(head, 1024)  # type: ignore[attr-defined]
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
        return b""


def _is_torch_tar(names: Iterable[str]) -> bool:
    """Return True for an old PyTorch tar checkpoint (`sys_info`, `pickle`, `storages`, `tensors`)."""
    present = set(names)
    return present >= {"pickle", "storages"} or present & _TORCH_TAR_MEMBERS == _TORCH_TAR_MEMBERS


class _Source:
    """A file's bytes, on disk or in memory, read only as far as needed."""

    def __init__(self, path: Path | None, data: bytes | None) -> None:
        self.path = path
        self.data = data

    def open(self) -> IO[bytes]:
        """Return a binary file object on the bytes."""
        return open(self.path, "rb") if self.data is None else io.BytesIO(self.data)  # noqa: SIM115

    def size(self, fh: IO[bytes]) -> int:
        """Return the size in bytes."""
        return len(self.data) if self.data is not None else os.fstat(fh.fileno()).st_size

    def analyse(self, name: str, limit: int | None = None) -> Analysis:
        """Analyse the bytes (all of them, or the first `limit`) without hashing them."""
        from safepickle_bench.analysis import analyze_bytes, analyze_path

        if limit is not None:
            with self.open() as fh:
                return analyze_bytes(fh.read(limit), name, compute_sha256=False)
        if self.data is not None:
            return analyze_bytes(self.data, name, compute_sha256=False)
        return analyze_path(self.path, compute_sha256=False)  # type: ignore[arg-type]


class ReadError(Exception):
    """A file could not be read while it was being recognised."""


def _checked(analysis: Analysis) -> Analysis:
    """Return `analysis`, or raise ReadError when the file could not be read."""
    if analysis.error:
        raise ReadError(analysis.error)
    return analysis


def _first_zip_entry(head: bytes) -> str:
    """Return the name in the zip local header at the start of `head` ('' when it is cut or absent)."""
    if len(head) < 30 or not head.startswith(b"PK\x03\x04"):
        return ""
    size = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + size].decode("utf-8", "replace") if 30 + size <= len(head) else ""


def classify(src: _Source, display: str, fh: IO[bytes]) -> str:
    """Return what a file is: `model`, `zip` (archive), `tar` (archive) or `none` (holds no pickle)."""
    head = fh.read(HEAD_BYTES)
    if not head:
        return "none"
    kind = sniff(head[:512])
    if kind == "zip":
        if _zip_flavour([_first_zip_entry(head)]) in ("torch_zip", "torchscript"):
            return "model"  # torch.save writes `<folder>/data.pkl` first: no need to read the directory
        try:
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                names = zf.namelist()
        except Exception:  # a damaged zip: the analyzer's own reader finds what it can
            return "model"
        return "model" if _zip_flavour(names) else "zip"
    if kind == "tar":
        fh.seek(0)
        try:
            with tarfile.open(fileobj=fh, mode="r:") as tar:
                return "model" if _is_torch_tar(tar.getnames()) else "tar"
        except (tarfile.TarError, EOFError, OSError, ValueError):
            return "model"  # a damaged tar: the analyzer reads what it can
    if kind in _MODEL_KINDS:
        inner = _decompressed_head(kind, head)
        if kind in _TAR_WRAPPERS and len(inner) >= 262 and inner[257:262] == b"ustar":
            return "tar"
        if kind != "zlib" or inner:  # two bytes are a weak zlib signature: trust it only if it inflates
            return "model"
    if looks_like_pickle(head):
        return "model"
    size = src.size(fh)
    if size <= FULL_ANALYSIS_BYTES:
        return "model" if holds_pickle(_checked(src.analyse(display))) else "none"
    if holds_pickle(_checked(src.analyse(display, PROBE_BYTES)), cut=True):
        return "model"
    fh.seek(max(0, size - ZIP_TAIL_BYTES))
    return "model" if _ZIP_EOCD in fh.read(ZIP_TAIL_BYTES) else "none"


def classify_file(f: _File, index: int, options: Options) -> Iterator[Entry]:
    """Yield the entries of one file on disk: itself, its archive members, a skip or an error."""
    if f.explicit and not options.sniff_explicit:
        yield Found(f.display, path=f.path, source=index)
        return
    src = _Source(f.path, None)
    try:
        with src.open() as fh:
            kind = classify(src, f.display, fh)
    except OSError as exc:
        yield Failed(f.display, f"cannot read {f.display}: {exc.strerror or exc}", index)
        return
    except ReadError as exc:
        yield Failed(f.display, str(exc), index)
        return
    if kind == "none":
        yield Skipped(f.display, "holds no pickle", index)
    elif kind == "model" or not options.open_archives:
        yield Found(f.display, path=f.path, source=index)
    else:
        yield from _archive_members(src, kind, f.display, index, options)


def _classify_member(data: bytes, archive: str, name: str, index: int) -> Entry:
    """Return the entry of one archive member (members are never archives to open again)."""
    display = f"{archive}!{name}"
    src = _Source(None, data)
    try:
        with src.open() as fh:
            kind = classify(src, display, fh)
    except ReadError as exc:
        return Failed(display, str(exc), index)
    if kind == "none":
        return Skipped(display, "holds no pickle", index)
    return Found(display, data=data, source=index, container=archive)


def _archive_members(src: _Source, kind: str, display: str, index: int, options: Options) -> Iterator[Entry]:
    """Yield the entries of a zip or tar archive's regular members, within the archive limits."""
    limits = options.archive_limits
    members = _zip_members(src) if kind == "zip" else _tar_members(src)
    count = total = 0
    try:
        for name, size, read in members:
            shown = f"{display}!{name}"
            if excluded(name, options.exclude):
                continue
            count += 1
            if count > limits.max_members:
                yield Failed(display, f"archive has more than {limits.max_members} members: the rest not read", index)
                return
            if size > limits.max_member_bytes:
                yield Failed(shown, f"member of {size} bytes exceeds the {limits.max_member_bytes}-byte limit: "
                                    "extract it and scan the file", index)
                continue
            if total + size > limits.max_total_bytes:
                yield Failed(display, f"archive members exceed {limits.max_total_bytes} bytes: the rest not read",
                             index)
                return
            data = read(limits.max_member_bytes + 1)
            if len(data) > limits.max_member_bytes:  # the declared size lied
                yield Failed(shown, f"member larger than the {limits.max_member_bytes}-byte limit", index)
                continue
            total += len(data)
            yield _classify_member(data, display, name, index)
    except _Unreadable:
        # zipfile/tarfile refused something a loader might still read: the analyzer reads the whole archive.
        yield Found(display, path=src.path, data=src.data, source=index)
    except OSError as exc:
        yield Failed(display, f"cannot read {display}: {exc.strerror or exc}", index)


class _Unreadable(Exception):
    """The standard library could not read an archive member."""


Member = tuple[str, int, Callable[[int], bytes]]
"""An archive member: name, declared size, and a reader taking the most bytes to read."""


def _zip_members(src: _Source) -> Iterator[Member]:
    """Yield the regular members of a zip archive (central directory order)."""
    with src.open() as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
            raise _Unreadable from exc
        with zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue

                def read(most: int, info: zipfile.ZipInfo = info) -> bytes:
                    try:
                        with zf.open(info) as member:
                            return member.read(most)
                    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError, EOFError,
                            zlib.error) as exc:  # encrypted, unknown method, bad CRC or data
                        raise _Unreadable from exc

                yield info.filename, info.file_size, read


def _tar_members(src: _Source) -> Iterator[Member]:
    """Yield the regular members of a tar archive, plain or gzip/bz2/xz-compressed, in order."""
    with src.open() as fh:
        try:
            tar = tarfile.open(fileobj=fh, mode="r|*")  # noqa: SIM115 - closed by `with tar` below
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise _Unreadable from exc
        with tar:
            try:
                for info in tar:
                    if not info.isfile():
                        continue

                    def read(most: int, info: tarfile.TarInfo = info) -> bytes:
                        member = tar.extractfile(info)
                        return member.read(most) if member is not None else b""

                    yield info.name, info.size, read
            except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
                raise _Unreadable from exc
