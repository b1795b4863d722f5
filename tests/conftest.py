"""Shared pytest fixtures: the no-execution audit hook and the wild corpus location.

Add new shared fixtures below the existing ones; keep each one independent of the others.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import sys
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from safepickle_bench import paths
from safepickle_bench.sandbox.audit import STATIC_ANALYSIS_FORBIDDEN_EVENTS

# --- no dangerous events while a test body runs ------------------------------------------------------

DANGEROUS_EVENT_PREFIXES: tuple[str, ...] = STATIC_ANALYSIS_FORBIDDEN_EVENTS
"""Audit events that mean a pickle payload ran (or was about to): importing a name, spawning, networking."""

# Audit hooks cannot be removed once added: one hook is installed for the session and checks this state.
_AUDIT_STATE: dict[str, object] = {"armed": False, "thread": None, "events": []}
_AUDIT_INSTALLED = False

# Modules the analysis may import lazily; imported before arming so their .pyc loading (marshal.loads)
# is not mistaken for a payload.
_PREIMPORT = (
    "safepickle_bench.analysis",
    "safepickle_bench.analysis.analyzer",
    "safepickle_bench.analysis.containers",
    "safepickle_bench.analysis.streams",
    "safepickle_bench.cli.analyze",
    "py7zr",
    "py7zr.io",
    "lz4.frame",
    "tarfile",
    "bz2",
    "lzma",
    "zlib",
    "ast",
    "tempfile",
)


def _from_import_system() -> bool:
    """Return True when the current event comes from the import machinery loading a .pyc of ours."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _audit_hook(event: str, args: tuple[object, ...]) -> None:
    """Record (and block, by raising) a dangerous event raised while the fixture is armed."""
    if not _AUDIT_STATE["armed"] or threading.current_thread() is not _AUDIT_STATE["thread"]:
        return
    if event.startswith(DANGEROUS_EVENT_PREFIXES):
        if event == "marshal.loads" and _from_import_system():
            return
        events = _AUDIT_STATE["events"]
        assert isinstance(events, list)
        events.append((event, repr(args)[:200]))
        raise RuntimeError(f"dangerous audit event during analysis: {event}")


def _install_audit_hook() -> None:
    global _AUDIT_INSTALLED
    if not _AUDIT_INSTALLED:
        sys.addaudithook(_audit_hook)
        _AUDIT_INSTALLED = True


@pytest.fixture
def no_dangerous_events() -> Iterator[list[tuple[str, str]]]:
    """Fail the test if any code-execution, process, network or import audit event fires in its body."""
    import importlib

    for module in _PREIMPORT:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    _install_audit_hook()
    events: list[tuple[str, str]] = []
    _AUDIT_STATE.update(armed=True, thread=threading.current_thread(), events=events)
    try:
        yield events
    finally:
        _AUDIT_STATE.update(armed=False, thread=None)
    if events:
        pytest.fail(f"{len(events)} dangerous audit event(s) while the test ran: {events[:10]}")


# --- the wild corpus -----------------------------------------------------------------------------------

WILD_DIR_ENV = paths.WILD_ENV


def wild_corpus_dir() -> Path:
    """Return the wild corpus folder (`paths.wild_dir`: $SAFEPICKLE_WILD_DIR, else ../shared/corpus/wild)."""
    return paths.wild_dir()


def in_ci() -> bool:
    """Return True under continuous integration (CI=true), where a missing corpus is a failure, not a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_wild_corpus(path: Path) -> None:
    """Skip the calling test because the wild corpus is absent locally; fail it under CI."""
    why = f"wild corpus not found at {path} (set {WILD_DIR_ENV} or place shared/ beside the output root)"
    if in_ci():
        pytest.fail(f"{why}: CI must run the tests that need it", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def wild_corpus() -> Path:
    """The folder of real hostile samples with MANIFEST.csv (read in place, never unpickled)."""
    path = wild_corpus_dir()
    if not (path / "MANIFEST.csv").is_file():
        missing_wild_corpus(path)
    return path.resolve()


# --- hostile samples in every container, written opcode by opcode (never by pickling a real object) ----

PAYLOAD_CALLABLE = "posix.system"
PAYLOAD_ARG = "echo hi"

PAYLOAD_P2 = b"\x80\x02cposix\nsystem\nX\x07\x00\x00\x00echo hi\x85R."
"""Protocol 2: GLOBAL posix.system, BINUNICODE 'echo hi', TUPLE1, REDUCE, STOP (inert: never loaded)."""
PAYLOAD_P4 = b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x07echo hi\x94\x85\x94R\x94."
"""Protocol 4: STACK_GLOBAL of memoised strings, then the same call."""
PAYLOAD_BROKEN = PAYLOAD_P2[:-1] + b"\xff\xfe garbage"
"""The payload runs (REDUCE) before a deliberate parse error (unknown opcode 0xff), with no STOP."""
BENIGN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."
"""Protocol 2 `{'a': 1}`."""


class _Unseekable(io.RawIOBase):
    """A write-only sink without seek, so zipfile writes data descriptors (general flag bit 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def zip_bytes(
    entries: dict[str, bytes], method: int = zipfile.ZIP_STORED, *, descriptors: bool = False
) -> bytes:
    """Return a zip archive holding `entries`, optionally written with data descriptors."""
    if descriptors:
        sink = _Unseekable()
        with zipfile.ZipFile(sink, "w", compression=method) as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
        return bytes(sink.buf)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def torch_like_zip(
    data_pkl: bytes, folder: str = "archive", method: int = zipfile.ZIP_STORED, **kw: bool
) -> bytes:
    """Return a zip with PyTorch's layout (`folder/data.pkl`, `version`, `data/0` tensor bytes)."""
    return zip_bytes(
        {
            f"{folder}/data.pkl": data_pkl,
            f"{folder}/byteorder": b"little",
            f"{folder}/data/0": b"\x00\x00\x80\x3f" * 256,
            f"{folder}/version": b"3\n",
            f"{folder}/.data/serialization_id": b"0" * 40,
        },
        method,
        **kw,
    )


def drop_central_directory(zip_data: bytes) -> bytes:
    """Cut a zip before its central directory (what a truncated download or a hostile writer leaves)."""
    return zip_data[: zip_data.index(b"PK\x01\x02")]


def break_central_directory(zip_data: bytes) -> bytes:
    """Overwrite every central directory signature so the directory cannot be parsed."""
    cd = zip_data.index(b"PK\x01\x02")
    return zip_data[:cd] + zip_data[cd:].replace(b"PK\x01\x02", b"XX\x01\x02")


@dataclass(frozen=True)
class HostileSample:
    """A generated hostile file: its bytes and a fragment of the stream location holding the payload."""

    name: str
    data: bytes
    where: str


def build_hostile_container_samples() -> list[HostileSample]:
    """Return the payload hidden in every container and evasion the analyzer must see through."""
    import bz2
    import gzip
    import lzma
    import tarfile

    samples: list[HostileSample] = []

    def add(name: str, data: bytes, where: str) -> None:
        samples.append(HostileSample(name, data, where))

    add("raw_p2.pkl", PAYLOAD_P2, "raw_p2.pkl")
    add("raw_broken.pkl", PAYLOAD_BROKEN, "raw_broken.pkl")
    add("second_stream.pkl", BENIGN_PICKLE + PAYLOAD_P4, "second_stream.pkl")
    add("torch_stored.pt", torch_like_zip(PAYLOAD_P2), "torch_stored.pt!archive/data.pkl")
    add("torch_deflated.pt", torch_like_zip(PAYLOAD_P4, method=zipfile.ZIP_DEFLATED), "!archive/data.pkl")
    add(
        "torch_named_folder.pt",
        torch_like_zip(PAYLOAD_P2, folder="torch_named_folder"),
        "!torch_named_folder/",
    )
    add("zip_bz2_entry.zip", zip_bytes({"m/data.pkl": PAYLOAD_P2}, zipfile.ZIP_BZIP2), "!m/data.pkl")
    add("zip_lzma_entry.zip", zip_bytes({"m/data.pkl": PAYLOAD_P2}, zipfile.ZIP_LZMA), "!m/data.pkl")
    add(
        "zip_other_pkl.zip",
        zip_bytes({"model/extra.pkl": PAYLOAD_P2, "README": b"hello"}),
        "!model/extra.pkl",
    )
    add("zip_wrong_ext.zip", zip_bytes({"data.txt": PAYLOAD_P4}), "!data.txt")
    add("zip_broken_cd.pt", break_central_directory(torch_like_zip(PAYLOAD_P2)), "!archive/data.pkl")
    add("zip_no_cd.pt", drop_central_directory(torch_like_zip(PAYLOAD_P2)), "!archive/data.pkl")
    add(
        "zip_descriptor_no_cd_stored.pt",
        drop_central_directory(torch_like_zip(PAYLOAD_P2, descriptors=True)),
        "!archive/data.pkl",
    )
    add(
        "zip_descriptor_no_cd_deflated.pt",
        drop_central_directory(torch_like_zip(PAYLOAD_P4, method=zipfile.ZIP_DEFLATED, descriptors=True)),
        "!archive/data.pkl",
    )
    add(
        "zip_descriptor.pt",
        torch_like_zip(PAYLOAD_P2, method=zipfile.ZIP_DEFLATED, descriptors=True),
        "!archive/",
    )
    add(
        "zip_prepended.pt",
        b"\x89PNG\r\n\x1a\n" + b"J" * 1000 + torch_like_zip(PAYLOAD_P2),
        "!archive/data.pkl",
    )
    add("pickle_then_zip.pt", PAYLOAD_P2 + torch_like_zip(BENIGN_PICKLE), "pickle_then_zip.pt#")
    add("zip_appended.pt", torch_like_zip(PAYLOAD_P2) + b"\x00trailing" * 100, "!archive/data.pkl")
    encrypted_flag = bytearray(zip_bytes({"m/data.pkl": PAYLOAD_P2}))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = encrypted_flag.find(sig)
        flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
        encrypted_flag[flag_at] |= 0x01
    add("zip_encrypted_flag.zip", bytes(encrypted_flag), "!m/data.pkl")
    add(
        "nested.zip",
        zip_bytes({"inner/model.pt": torch_like_zip(PAYLOAD_P2)}),
        "!inner/model.pt!archive/data.pkl",
    )
    add(
        "nested_deflated.zip",
        zip_bytes({"a.zip": zip_bytes({"b.pt": torch_like_zip(PAYLOAD_P4)}, zipfile.ZIP_DEFLATED)}),
        "!a.zip!b.pt!archive/data.pkl",
    )
    add("torch.pt.gz", gzip.compress(torch_like_zip(PAYLOAD_P2)), "!gzip!archive/data.pkl")
    add("raw.pkl.bz2", bz2.compress(PAYLOAD_P2), "!bz2")
    add("raw.pkl.xz", lzma.compress(PAYLOAD_P2), "!xz")
    # joblib's compressors: whole-file streams, each recognised by joblib's own prefix
    add("joblib_zlib.joblib", zlib.compress(PAYLOAD_P2, 3), "!zlib")
    add("joblib_gzip.joblib", gzip.compress(PAYLOAD_P2), "!gzip")
    add("joblib_bz2.joblib", bz2.compress(PAYLOAD_P2), "!bz2")
    add("joblib_lzma.joblib", lzma.compress(PAYLOAD_P2, format=lzma.FORMAT_ALONE), "!lzma")
    add("joblib_xz.joblib", lzma.compress(PAYLOAD_P2, format=lzma.FORMAT_XZ), "!xz")
    add("joblib_compat.joblib", b"ZF" + b"0x2a".ljust(19) + zlib.compress(PAYLOAD_P2), "!zfile")
    try:
        import lz4.frame

        add("joblib_lz4.joblib", lz4.frame.compress(PAYLOAD_P2), "!lz4")
    except ImportError:
        pass
    npy_header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    npy_header = npy_header.ljust(64 - 10 - 1) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(npy_header)) + npy_header + PAYLOAD_P2
    add("object.npy", npy, "object.npy")
    add("object.npz", zip_bytes({"arr_0.npy": npy}, zipfile.ZIP_DEFLATED), "!arr_0.npy")
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for member, body in (
            ("sys_info", BENIGN_PICKLE),
            ("pickle", PAYLOAD_P2),
            ("storages", b"\x80\x02K\x00." + b"\x00" * 64),
            ("tensors", b"\x80\x02K\x00."),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    add("old_torch.tar", tar_buf.getvalue(), "!pickle")
    try:
        import py7zr

        seven = io.BytesIO()
        with py7zr.SevenZipFile(seven, "w") as archive:
            archive.writestr(torch_like_zip(PAYLOAD_BROKEN), "model.pt")
        add("torch_broken.7z", seven.getvalue(), "!model.pt!archive/data.pkl")
    except ImportError:
        pass
    return samples


@pytest.fixture(scope="session")
def hostile_container_samples() -> list[HostileSample]:
    """Generated inert hostile files, one per container and container evasion."""
    return build_hostile_container_samples()


# --- parametrisation over the wild manifest and the hostile samples ------------------------------------

_HOSTILE_CACHE: list[HostileSample] = []


def read_wild_manifest() -> list[dict[str, str]]:
    """Return the wild MANIFEST.csv rows (with an added `path`), or [] when the corpus is absent."""
    import csv

    root = wild_corpus_dir()
    manifest = root / "MANIFEST.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="", encoding="utf-8") as f:
        return [{**row, "path": str((root / row["file"]).resolve())} for row in csv.DictReader(f)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise `wild_row` over the wild manifest and `hostile_sample` over the generated samples."""
    if "wild_row" in metafunc.fixturenames:
        rows = read_wild_manifest()
        if rows:
            metafunc.parametrize("wild_row", rows, ids=[r["file"] for r in rows])
        else:  # one placeholder case: the `wild_row` fixture below skips it locally and fails it under CI
            metafunc.parametrize("wild_row", [pytest.param(None, id="wild-corpus-missing")], indirect=True)
    if "hostile_sample" in metafunc.fixturenames:
        if not _HOSTILE_CACHE:
            _HOSTILE_CACHE.extend(build_hostile_container_samples())
        metafunc.parametrize("hostile_sample", _HOSTILE_CACHE, ids=[s.name for s in _HOSTILE_CACHE])


@pytest.fixture
def wild_row(request: pytest.FixtureRequest) -> dict[str, str]:
    """One row of the wild manifest (only reached indirectly when the corpus is missing: skip, or fail in CI)."""
    if request.param is None:
        missing_wild_corpus(wild_corpus_dir())
    return request.param
