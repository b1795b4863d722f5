"""The container layer reaches every pickle a real loader runs, by content, within the limits.

Benign files are made with the real libraries (torch, joblib, numpy, py7zr); hostile ones are written
opcode by opcode (see `conftest.build_hostile_container_samples`): nothing here is ever unpickled.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import sys
import tarfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import Analysis, Limits, analyze_bytes, analyze_path
from safepickle_bench.analysis.containers import ContainerWalker, looks_like_pickle, sniff

PAYLOAD = "posix.system"
CONTAINER_ANOMALIES = {
    "container_corrupt",
    "container_prepended",
    "container_appended",
    "unsupported_container",
    "limit_decompressed",
    "limit_depth",
}


def payload_locations(analysis: Analysis) -> list[str]:
    """Return the locations of the streams that import and call the inert payload callable."""
    return [
        s.location
        for s in analysis.streams
        if any(c.callable == PAYLOAD for c in s.calls) and any(i.qualname == PAYLOAD for i in s.imports)
    ]


def kinds(analysis: Analysis) -> set[str]:
    """Return the anomaly kinds of the file and of its streams."""
    return {a.kind for a in analysis.all_anomalies()}


# --- hostile samples: the payload is found in every container -----------------------------------------


def test_payload_is_found_in_every_container(hostile_sample, tmp_path, no_dangerous_events):
    from_bytes = analyze_bytes(hostile_sample.data, hostile_sample.name)
    path = tmp_path / hostile_sample.name
    path.write_bytes(hostile_sample.data)
    from_file = analyze_path(path)
    for analysis in (from_bytes, from_file):
        assert analysis.error is None
        assert "internal_error" not in kinds(analysis)
        found = payload_locations(analysis)
        assert any(hostile_sample.where.rstrip("#") in loc for loc in found), (found, analysis.containers)
    assert from_file.sha256 == from_bytes.sha256
    assert [s.location for s in from_file.streams] == [s.location for s in from_bytes.streams]


def test_zip_with_broken_central_directory_is_read_from_local_headers(hostile_container_samples):
    by_name = {s.name: s for s in hostile_container_samples}
    for name in ("zip_broken_cd.pt", "zip_no_cd.pt", "zip_descriptor_no_cd_deflated.pt"):
        analysis = analyze_bytes(by_name[name].data, name)
        assert "container_corrupt" in kinds(analysis), name
        assert payload_locations(analysis) == [f"{name}!archive/data.pkl#0"]


def test_bytes_before_and_after_a_zip_are_recorded(hostile_container_samples):
    by_name = {s.name: s for s in hostile_container_samples}
    prepended = analyze_bytes(by_name["zip_prepended.pt"].data, "p.pt")
    appended = analyze_bytes(by_name["zip_appended.pt"].data, "a.pt")
    assert [a.detail for a in prepended.anomalies if a.kind == "container_prepended"] == [
        "1008 bytes before the zip archive"
    ]
    assert "container_appended" in kinds(appended)


def test_pickle_prefix_of_a_polyglot_zip_is_read_like_torch_legacy_load(hostile_container_samples):
    sample = next(s for s in hostile_container_samples if s.name == "pickle_then_zip.pt")
    analysis = analyze_bytes(sample.data, "poly.pt")
    assert payload_locations(analysis) == ["poly.pt#0"]
    assert "poly.pt!archive/data.pkl#0" in [s.location for s in analysis.streams]
    assert "container_prepended" in kinds(analysis)


def test_payload_before_a_parse_error_in_a_7z_packed_torch_archive_is_seen(hostile_container_samples):
    sample = next(s for s in hostile_container_samples if s.name == "torch_broken.7z")
    analysis = analyze_bytes(sample.data, "m.7z")
    assert analysis.containers[:3] == ["7z", "zip", "torch_zip"]
    assert payload_locations(analysis) == ["m.7z!model.pt!archive/data.pkl#0"]
    assert "unknown_opcode" in kinds(analysis)


# --- benign files written by the real libraries ---------------------------------------------------------


@pytest.fixture(scope="module")
def torch_files(tmp_path_factory) -> dict[str, Path]:
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("torch")
    state = {"weight": torch.ones(4, 3), "bias": torch.zeros(3)}
    torch.save(state, root / "model.pt")
    torch.save(state, root / "legacy.pt", _use_new_zipfile_serialization=False)
    buf = io.BytesIO()
    torch.save(state, buf)
    (root / "buffer.bin").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # torch.jit is deprecated, still loaded in the wild
        module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
        torch.jit.save(module, str(root / "scripted.pt"))
    return {p.name: p for p in root.iterdir()}


def test_torch_zip_is_read_from_its_data_pkl_named_after_the_file(torch_files):
    analysis = analyze_path(torch_files["model.pt"])
    assert analysis.containers == ["zip", "torch_zip"]
    assert [s.location for s in analysis.streams] == ["model.pt!model/data.pkl#0"]
    assert "torch._utils._rebuild_tensor_v2" in {i.qualname for i in analysis.all_imports()}
    assert not kinds(analysis) & CONTAINER_ANOMALIES


def test_torch_zip_saved_to_a_buffer_uses_the_archive_folder(torch_files):
    analysis = analyze_path(torch_files["buffer.bin"])
    assert [s.location for s in analysis.streams] == ["buffer.bin!archive/data.pkl#0"]


def test_legacy_torch_file_is_read_and_its_storages_skipped(torch_files):
    analysis = analyze_path(torch_files["legacy.pt"])
    assert "torch_legacy" in analysis.containers
    assert len(analysis.streams) == 5
    assert sum(s.skipped_bytes for s in analysis.streams) >= (12 + 3) * 4
    assert "torch._utils._rebuild_tensor_v2" in {i.qualname for i in analysis.all_imports()}


def test_torchscript_archive_pickles_are_read_and_code_is_not(torch_files):
    analysis = analyze_path(torch_files["scripted.pt"])
    assert analysis.containers == ["zip", "torchscript"]
    locations = [s.location.rsplit("#", 1)[0] for s in analysis.streams]
    assert "scripted.pt!scripted/data.pkl" in locations
    assert "scripted.pt!scripted/constants.pkl" in locations
    assert not [loc for loc in locations if loc.endswith(".py") or "/data/" in loc]
    assert "internal_error" not in kinds(analysis)


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (0, None),
        ("zlib", "zlib"),
        ("gzip", "gzip"),
        ("bz2", "bz2"),
        ("lzma", "lzma"),
        ("xz", "xz"),
        ("lz4", "lz4"),
    ],
)
def test_joblib_dump_is_read_with_every_compression(tmp_path, compress, kind):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    if compress == "lz4":
        pytest.importorskip("lz4")
    path = tmp_path / "model.joblib"
    joblib.dump(
        {"coef": np.arange(2000, dtype="float64"), "name": "m"},
        path,
        compress=(compress, 3) if compress else 0,
    )
    analysis = analyze_path(path)
    assert analysis.containers == ([kind] if kind else []) + ["joblib"]
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in {i.qualname for i in analysis.all_imports()}
    skipped = sum(s.skipped_bytes for s in analysis.streams)
    assert 2000 * 8 <= skipped <= 2000 * 8 + 16  # the array bytes plus joblib's alignment padding
    assert not kinds(analysis) & (CONTAINER_ANOMALIES | {"unknown_opcode", "trailing_bytes", "not_pickle"})


def test_numpy_object_arrays_are_read_and_numeric_arrays_are_data(tmp_path):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, "x"], dtype=object), allow_pickle=True)
    np.save(tmp_path / "num.npy", np.arange(10))
    np.savez(tmp_path / "mixed.npz", obj=np.array([None, 1], dtype=object), num=np.arange(3))
    np.savez_compressed(tmp_path / "packed.npz", obj=np.array([(1, 2)], dtype=object))
    obj = analyze_path(tmp_path / "obj.npy")
    assert obj.containers == ["npy"] and [s.location for s in obj.streams] == ["obj.npy#0"]
    assert obj.streams[0].complete
    num = analyze_path(tmp_path / "num.npy")
    assert num.containers == ["npy"] and num.streams == [] and num.all_anomalies() == []
    mixed = analyze_path(tmp_path / "mixed.npz")
    assert mixed.containers == ["zip", "npz", "npy"]
    assert [s.location for s in mixed.streams] == ["mixed.npz!obj.npy#0"]
    packed = analyze_path(tmp_path / "packed.npz")
    assert [s.location for s in packed.streams] == ["packed.npz!obj.npy#0"]


@pytest.mark.parametrize(
    ("wrap", "kind"),
    [(gzip.compress, "gzip"), (bz2.compress, "bz2"), (lzma.compress, "xz"), (zlib.compress, "zlib")],
)
def test_compressed_pickles_are_read(wrap, kind):
    data = wrap(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    analysis = analyze_bytes(data, "m.pkl.z")
    assert analysis.containers == [kind]
    assert [s.location for s in analysis.streams] == [f"m.pkl.z!{kind}#0"]
    assert analysis.streams[0].complete and not analysis.all_anomalies()


def test_seven_zip_archive_entries_are_read():
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(pickle.dumps([1, 2, 3]), "dir/a.pkl")
        archive.writestr(b"just text", "notes.txt")
    analysis = analyze_bytes(buf.getvalue(), "a.7z")
    assert analysis.containers == ["7z"]
    assert [s.location for s in analysis.streams] == ["a.7z!dir/a.pkl#0"]


def test_seven_zip_without_py7zr_is_reported_unsupported(monkeypatch, hostile_container_samples):
    sample = next(s for s in hostile_container_samples if s.name == "torch_broken.7z")
    monkeypatch.setitem(sys.modules, "py7zr", None)
    analysis = analyze_bytes(sample.data, "m.7z")
    assert [(a.kind, a.detail) for a in analysis.anomalies] == [
        ("unsupported_container", "7z: py7zr is not installed")
    ]


def test_unreadable_seven_zip_is_reported_unsupported():
    analysis = analyze_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, "bad.7z")
    assert analysis.error is None
    assert [a.kind for a in analysis.anomalies] == ["unsupported_container"]
    assert "unreadable" in analysis.anomalies[0].detail


def test_old_tar_torch_layout_reads_its_pickle_members():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, body in (
            ("sys_info", pickle.dumps({"protocol_version": 1001}, protocol=2)),
            ("pickle", pickle.dumps({"w": 1}, protocol=2)),
            ("storages", pickle.dumps(0, protocol=2) + b"\x01" * 32),
            ("tensors", pickle.dumps(0, protocol=2)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    analysis = analyze_bytes(buf.getvalue(), "old.pt")
    assert analysis.containers == ["tar", "torch_tar"]
    assert [s.location for s in analysis.streams] == [
        "old.pt!sys_info#0",
        "old.pt!pickle#0",
        "old.pt!storages#0",
        "old.pt!tensors#0",
    ]


def test_zip64_and_bzip2_and_lzma_entries_are_read():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        with zf.open("a/data.pkl", "w", force_zip64=True) as f:
            f.write(pickle.dumps("zip64"))
        zf.writestr("b.pkl", pickle.dumps("bz"), compress_type=zipfile.ZIP_BZIP2)
        zf.writestr("c.pkl", pickle.dumps("xz"), compress_type=zipfile.ZIP_LZMA)
    analysis = analyze_bytes(out.getvalue(), "z.zip")
    assert [s.location for s in analysis.streams] == ["z.zip!a/data.pkl#0", "z.zip!b.pkl#0", "z.zip!c.pkl#0"]
    assert all(s.complete for s in analysis.streams) and not kinds(analysis)


def test_encrypted_zip_entry_is_reported_unsupported():
    raw = bytearray(zipfile_bytes({"secret.txt": bytes(range(200, 240))}))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        raw[raw.find(sig) + flag_at] |= 0x01
    analysis = analyze_bytes(bytes(raw), "locked.zip")
    assert [(a.kind, a.location) for a in analysis.anomalies] == [
        ("unsupported_container", "locked.zip!secret.txt")
    ]


def zipfile_bytes(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


# --- limits and odd input ----------------------------------------------------------------------------------


def _gzip_of_zeros(megabytes: int) -> bytes:
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join([*(comp.compress(zeros) for _ in range(megabytes)), comp.flush()])


def test_decompression_bomb_stops_at_the_limit_quickly():
    bomb = _gzip_of_zeros(64)
    limits = Limits(max_decompressed_bytes=4 << 20)
    start = time.perf_counter()
    analysis = analyze_bytes(bomb, "bomb.gz", limits)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert [a.kind for a in analysis.anomalies][:1] == ["limit_decompressed"]
    deflated_entry = zipfile_bytes_deflated({"archive/data.pkl": bytes(16 << 20)})
    analysis = analyze_bytes(deflated_entry, "bomb.pt", limits)
    assert "limit_decompressed" in kinds(analysis)


def zipfile_bytes_deflated(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_total_decompressed_budget_covers_nested_containers():
    inner = gzip.compress(bytes(3 << 20), compresslevel=1)
    outer = zipfile_bytes({f"part{i}.gz": inner for i in range(4)})
    limits = Limits(max_decompressed_bytes=4 << 20, max_total_decompressed_bytes=7 << 20)
    analysis = analyze_bytes(outer, "many.zip", limits)
    cut = [a for a in analysis.anomalies if a.kind == "limit_decompressed"]
    assert cut and cut[0].location == "many.zip!part2.gz"


def test_container_nesting_deeper_than_the_limit_is_cut():
    data = pickle.dumps("core")
    for _ in range(5):
        data = gzip.compress(data)
    analysis = analyze_bytes(data, "deep.gz", Limits(max_container_depth=3))
    assert "limit_depth" in kinds(analysis)
    assert analysis.streams == []
    assert [s.location for s in analyze_bytes(data, "deep.gz").streams] == ["deep.gz" + "!gzip" * 5 + "#0"]


def test_tensor_bytes_of_a_large_torch_zip_are_not_read(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "big.pt"
    torch.save({"big": torch.zeros(50_000_000)}, path)  # 200 MB of tensor data
    assert path.stat().st_size > 200_000_000
    start = time.perf_counter()
    analysis = analyze_path(path)
    elapsed = time.perf_counter() - start
    assert analysis.pickle_bytes < 1024
    assert [s.location for s in analysis.streams] == ["big.pt!big/data.pkl#0"]
    assert analysis.timings["containers"] + analysis.timings["opcodes"] < 0.1
    assert elapsed < 2.0  # nearly all of it is the streaming sha256 of the 200 MB file
    assert len(analysis.sha256) == 64
    start = time.perf_counter()
    unhashed = analyze_path(path, compute_sha256=False)
    elapsed = time.perf_counter() - start
    assert unhashed.sha256 == "" and "hash" not in unhashed.timings
    assert [c.callable for c in unhashed.all_calls()] == [c.callable for c in analysis.all_calls()]
    assert elapsed < 0.25  # without the hash, only the zip directory and data.pkl are read


def test_file_without_any_pickle_gets_an_anomaly_not_an_error():
    pdf = analyze_bytes(b"%PDF-1.7\n" + bytes(100), "paper.pt")
    empty = analyze_bytes(b"", "empty.pkl")
    for analysis in (pdf, empty):
        assert analysis.error is None
        assert "not_pickle" in kinds(analysis)
    png = analyze_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100), "image.pt")  # 0x89 happens to be NEWFALSE
    assert png.error is None and not any(s.complete for s in png.streams) and png.all_anomalies()


def test_missing_and_directory_paths_give_an_error_not_an_exception(tmp_path):
    assert "cannot read" in (analyze_path(tmp_path / "missing.pkl").error or "")
    assert "directory" in (analyze_path(tmp_path).error or "")


def test_container_is_chosen_by_content_not_by_extension(hostile_container_samples):
    sample = next(s for s in hostile_container_samples if s.name == "torch.pt.gz")
    for name in ("model.pkl", "model.txt", "model"):
        analysis = analyze_bytes(sample.data, name)
        assert analysis.containers == ["gzip", "zip", "torch_zip"]


def test_sniffing_recognises_magic_bytes_and_pickle_starts():
    assert sniff(b"PK\x03\x04rest") == "zip"
    assert sniff(gzip.compress(b"x")[:16]) == "gzip"
    assert sniff(bz2.compress(b"x")[:16]) == "bz2"
    assert sniff(lzma.compress(b"x")[:16]) == "xz"
    assert sniff(lzma.compress(b"x", format=lzma.FORMAT_ALONE)[:16]) == "lzma"
    assert sniff(zlib.compress(b"x")[:16]) == "zlib"
    assert sniff(b"\x93NUMPY\x01\x00") == "npy"
    assert sniff(b"\x80\x04\x95") is None
    assert looks_like_pickle(b"\x80\x02}q\x00.") and looks_like_pickle(b"cos\nsystem\n")
    assert not looks_like_pickle(b"hello world") and not looks_like_pickle(b"\x80\x09")


def test_walker_yields_regions_lazily_and_records_kinds():
    walker = ContainerWalker(Limits())
    regions = list(walker.walk(gzip.compress(zipfile_bytes({"x/data.pkl": b"N."})), "f"))
    assert [(r.location, bytes(r.data), r.chain) for r in regions] == [
        ("f!gzip!x/data.pkl", b"N.", ("gzip", "zip", "torch_zip"))
    ]
    assert walker.kinds == ["gzip", "zip", "torch_zip"]


def test_file_over_max_file_bytes_is_skipped_with_an_anomaly(tmp_path):
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(list(range(100))))
    analysis = analyze_path(path, Limits(max_file_bytes=64))
    assert analysis.error is None and analysis.streams == []
    assert [a.kind for a in analysis.anomalies] == ["limit_bytes"]


def test_pickle_region_over_max_pickle_bytes_is_cut():
    data = pickle.dumps(b"x" * 10_000, protocol=4)
    analysis = analyze_bytes(data, "long.pkl", Limits(max_pickle_bytes=1_000))
    assert "limit_bytes" in kinds(analysis)
    assert analysis.pickle_bytes == 1_000


def test_time_budget_stops_the_walk_with_an_anomaly(hostile_container_samples):
    sample = next(s for s in hostile_container_samples if s.name == "nested.zip")
    analysis = analyze_bytes(sample.data, "slow.zip", Limits(max_seconds=0.0))
    assert "limit_time" in kinds(analysis)
    assert analysis.error is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_containers_never_raise(hostile_container_samples, data):
    sample = data.draw(st.sampled_from(hostile_container_samples))
    raw = bytearray(sample.data)
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))]
    start = time.perf_counter()
    analysis = analyze_bytes(bytes(raw), sample.name, Limits(max_seconds=2.0))
    assert time.perf_counter() - start < 3.0
    assert analysis.error is None
    assert "internal_error" not in kinds(analysis)
