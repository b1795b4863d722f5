"""`read_streams` reaches every stream a loader runs: back to back, legacy torch, joblib arrays.

Real files come from the real writers (`torch.save`, `joblib.dump`); hostile bytes are written opcode by
opcode; nothing is loaded.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct

import joblib
import numpy as np
import pytest
import torch

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.streams import TORCH_STORAGE_ELEMENT_SIZE, read_stream, read_streams

PAYLOAD_STREAM = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x07echo hi\x85R."
PAYLOAD_BODY = PAYLOAD_STREAM[2:-1] + b"0"  # the call, then POP: fits inside another stream


def _calls(read: object) -> list[str]:
    return [c.callable for s in read.streams for c in s.calls]  # type: ignore[attr-defined]


def test_single_stream_has_location_index_and_no_region_anomaly() -> None:
    read = read_streams(pickle.dumps({"a": 1}), "f.pkl")
    assert [s.location for s in read.streams] == ["f.pkl#0"]
    assert read.kind == "pickle" and not read.anomalies and read.skipped_bytes == 0


def test_payload_in_second_of_two_streams_is_reported() -> None:
    data = pickle.dumps([1, 2]) + PAYLOAD_STREAM
    read = read_streams(data, "f")
    assert [s.location for s in read.streams] == ["f#0", "f#1"]
    assert [c.callable for c in read.streams[1].calls] == ["os.system"]
    assert [a.kind for a in read.anomalies] == ["multiple_streams"]


def test_junk_after_stop_is_trailing_bytes() -> None:
    read = read_streams(pickle.dumps("x") + b"\x00\x01junk", "f")
    assert len(read.streams) == 1
    assert [(a.kind, a.offset) for a in read.anomalies] == [("trailing_bytes", len(pickle.dumps("x")))]


def test_unterminated_payload_after_stop_is_still_a_stream() -> None:
    read = read_streams(pickle.dumps("x") + PAYLOAD_STREAM[:-1], "f")
    assert _calls(read) == ["os.system"]
    assert [a.kind for a in read.streams[1].anomalies] == ["no_stop"]


def test_region_without_opcodes_is_not_pickle() -> None:
    read = read_streams(b"\x00\x01\x02", "f")
    assert read.streams == [] and [a.kind for a in read.anomalies] == ["not_pickle"]
    assert [a.kind for a in read_streams(b"", "f").anomalies] == ["not_pickle"]


def test_stream_count_limit_is_an_anomaly() -> None:
    read = read_streams(pickle.dumps(1) * 10, "f", Limits(max_streams=3))
    assert len(read.streams) == 3 and "limit_streams" in [a.kind for a in read.anomalies]


def test_pickle_byte_limit_is_an_anomaly() -> None:
    data = pickle.dumps(list(range(5000)))
    read = read_streams(data, "f", Limits(max_pickle_bytes=1000))
    assert not read.streams[0].complete and "limit_bytes" in [a.kind for a in read.anomalies]


def test_memoryview_input_is_accepted() -> None:
    assert read_streams(memoryview(PAYLOAD_STREAM), "f").streams[0].calls[0].callable == "os.system"
    assert read_stream(PAYLOAD_STREAM, 0, "f").calls[0].callable == "os.system"


def _legacy_torch_bytes() -> tuple[bytes, int]:
    tensors = {
        "w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "d": torch.ones(3, dtype=torch.float64),
        "i8": torch.zeros(5, dtype=torch.int8),
        "h": torch.zeros(7, dtype=torch.bfloat16),
        "b": torch.ones(2, dtype=torch.bool),
        "view": torch.arange(10, dtype=torch.int64)[2:5],
    }
    buf = io.BytesIO()
    torch.save(tensors, buf, _use_new_zipfile_serialization=False)
    storages = {id(t.untyped_storage()): t.untyped_storage().nbytes() for t in tensors.values()}
    return buf.getvalue(), sum(8 + n for n in storages.values())


def test_legacy_torch_reads_five_streams_and_skips_storages() -> None:
    data, storage_bytes = _legacy_torch_bytes()
    read = read_streams(data, "m.pt")
    assert read.kind == "torch_legacy" and not read.anomalies
    assert [s.location for s in read.streams] == [f"m.pt#{i}" for i in range(5)]
    assert all(s.complete and not s.anomalies for s in read.streams)
    assert read.skipped_bytes == storage_bytes and read.end == len(data)
    # storages are never parsed as opcodes: the counts are exactly those of the five pickles
    f = io.BytesIO(data)
    expected = [sum(1 for _ in pickletools.genops(f)) for _ in range(5)]
    assert [s.n_opcodes for s in read.streams] == expected
    assert "torch._utils._rebuild_tensor_v2" in _calls(read)


def test_legacy_torch_with_payload_after_storages_is_reported() -> None:
    data, _ = _legacy_torch_bytes()
    read = read_streams(data + PAYLOAD_STREAM, "m.pt")
    assert _calls(read)[-1] == "os.system"
    assert read.streams[-1].location == "m.pt#5" and "multiple_streams" in [a.kind for a in read.anomalies]


@pytest.mark.filterwarnings("ignore")
def test_legacy_torch_storage_sizes_cover_torch_storage_types() -> None:
    for name, size in TORCH_STORAGE_ELEMENT_SIZE.items():
        cls = getattr(torch, name, None)
        if cls is not None and hasattr(cls, "dtype") and name != "UntypedStorage":
            assert torch.empty(0, dtype=cls.dtype).element_size() == size, name


def _joblib_bytes(value: object, protocol: int | None = None) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf, protocol=protocol)
    return buf.getvalue()


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_joblib_arrays_are_skipped_exactly(protocol: int) -> None:
    arrays = [
        np.arange(7, dtype=np.float64),
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.array(["ab", "c"]),
        np.zeros((0, 3)),
        np.asfortranarray(np.ones((2, 3), dtype=np.float32)),
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        np.array([1, "x", None], dtype=object),
    ]
    data = _joblib_bytes({"arrays": arrays, "note": "plain"}, protocol)
    read = read_streams(data, "j")
    assert read.kind == "joblib" and not read.anomalies, read.anomalies
    assert all(s.complete and not s.anomalies for s in read.streams)
    assert read.end == len(data)
    raw_bytes = sum(a.nbytes for a in arrays if not a.dtype.hasobject)
    assert raw_bytes <= read.skipped_bytes <= raw_bytes + 17 * len(arrays)
    assert [s.location for s in read.streams] == ["j#0", "j#0>objarray7"]


def test_joblib_sklearn_model_reads_without_anomalies() -> None:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, (x[:, 0] > 0.5).astype(int))
    data = _joblib_bytes(model)
    read = read_streams(data, "m.joblib")
    assert read.kind == "joblib" and read.end == len(data)
    assert not read.anomalies and not [a for s in read.streams for a in s.anomalies]
    assert "sklearn.ensemble._forest.RandomForestClassifier" in _calls(read)


def test_payload_between_joblib_arrays_is_seen() -> None:
    first = np.arange(5, dtype=np.int64)
    data = _joblib_bytes([first, np.arange(3.0)], protocol=2)
    cut = data.index(first.tobytes()) + first.nbytes
    hostile = data[:cut] + PAYLOAD_BODY + data[cut:]
    read = read_streams(hostile, "j")
    assert "os.system" in _calls(read) and read.end == len(hostile)
    assert not read.anomalies and not [a for s in read.streams for a in s.anomalies]


def test_joblib_array_running_past_the_end_is_truncated() -> None:
    data = _joblib_bytes(np.arange(100.0), protocol=4)
    read = read_streams(data[:-50], "j")
    assert "truncated" in [a.kind for s in read.streams for a in s.anomalies]


def test_joblib_wrapper_inside_an_unfinished_frame_jumps_after_the_frame() -> None:
    # A wrapper BUILD in the middle of a frame: the pure-Python unpickler has already read the whole frame,
    # so the array bytes come after the frame and the rest of the frame runs before them.
    dtype = b"\x8c\x05numpy\x8c\x05dtype\x93\x8c\x02i1\x89\x88\x87R(K\x03\x8c\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    state = b"}(\x8c\x05shape\x8c\x00K\x04\x85\x8c\x05dtype" + dtype + b"u"
    state = state.replace(b"\x8c\x00", b"")
    wrapper = b"\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81" + state + b"b"
    in_frame = wrapper + b"0" + PAYLOAD_BODY
    frame = b"\x95" + struct.pack("<Q", len(in_frame)) + in_frame
    data = b"\x80\x04" + frame + b"\x01\x02\x03\x04" + b"N."
    read = read_streams(data, "j")
    assert read.kind == "joblib" and read.skipped_bytes == 4 and read.end == len(data)
    assert "os.system" in _calls(read) and read.streams[0].complete
