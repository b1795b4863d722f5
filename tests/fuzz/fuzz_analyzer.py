"""Coverage-guided fuzz target for the static analyzer (atheris / libFuzzer), run outside the test suite.

Inputs are mutations of real samples: every file of the wild corpus (/work/shared/corpus/wild, read in place as
bytes, never loaded), generated benign torch zip / legacy torch / joblib (every compression) / numpy / plain
pickle files, and small hostile inputs (safepickle_bench.analysis.hostile_inputs). Each input goes through
`analyze_bytes` (containers + streams) and `read_streams` (the raw bytes as one pickle region), under
reduced limits, with every call summary and the JSON rendered. A finding is any of:

- an exception escaping the analyzer, or an `internal_error` anomaly (the analyzer caught its own bug);
- an input taking longer than PER_INPUT_SECONDS (the limits should stop it far earlier), or a libFuzzer
  `-timeout` hang;
- memory over libFuzzer's `-rss_limit_mb`;
- any code-execution / process / network / `find_class` audit event (the analyzer must never run a pickle).

Run (not collected by pytest: the file name does not start with `test_`):

    pip install atheris          # kept out of pyproject/CI on purpose
    nice -n 10 python tests/fuzz/fuzz_analyzer.py -max_total_time=600 -timeout=30 -rss_limit_mb=3072 \
        -print_final_stats=1 [-artifact_prefix=/tmp/fuzz-findings/]

With no corpus directory on the command line it builds the seed corpus under $FUZZ_WORKDIR (default
/tmp/safepickle-fuzz): `corpus/` (written by libFuzzer), `seeds/` (generated samples) and the wild corpus
directory itself (read only). Every finding is fixed and its (minimised, inert) input kept under
tests/analysis/regressions/, replayed by tests/analysis/test_fuzz_regressions.py.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import time
import zipfile
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

with atheris.instrument_imports(include=["safepickle_bench.analysis"]):
    from safepickle_bench.analysis import Limits, analyze_bytes
    from safepickle_bench.analysis.streams import read_streams
from safepickle_bench.paths import wild_dir  # noqa: E402
from safepickle_bench.sandbox.audit import STATIC_ANALYSIS_FORBIDDEN_EVENTS  # noqa: E402

WILD = wild_dir()
WORKDIR = Path(os.environ.get("FUZZ_WORKDIR", "/tmp/safepickle-fuzz"))
PER_INPUT_SECONDS = 8.0
"""Wall time past which an input counts as a hang (the limits below stop analysis after ~2 s)."""
LIMITS = Limits(
    max_decompressed_bytes=32 << 20,
    max_total_decompressed_bytes=64 << 20,
    max_pickle_bytes=32 << 20,
    max_opcodes=300_000,
    max_stack_depth=100_000,
    max_seconds=2.0,
)
"""Reduced limits: each execution stays fast, and every limit path is reachable by the fuzzer."""

DANGEROUS_EVENT_PREFIXES = STATIC_ANALYSIS_FORBIDDEN_EVENTS
_ARMED = False


def _from_import_system() -> bool:
    """Return True when the event comes from the import machinery (e.g. loading a stdlib codec's .pyc)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _audit(event: str, args: tuple[object, ...]) -> None:
    """Abort the fuzzer on any event that would mean the analyzer executed something."""
    if _ARMED and event.startswith(DANGEROUS_EVENT_PREFIXES):
        if event == "marshal.loads" and _from_import_system():
            return
        raise RuntimeError(f"dangerous audit event during analysis: {event} {args!r:.200}")


def check(data: bytes) -> None:
    """Analyse one input and raise on any finding (exception, internal_error, too slow, audit event)."""
    global _ARMED
    _ARMED = True
    try:
        start = time.monotonic()
        analysis = analyze_bytes(data, "fuzz.bin", LIMITS, compute_sha256=False)
        region = read_streams(data, "fuzz.bin", LIMITS)
        for call in [*analysis.all_calls(), *(c for s in region.streams for c in s.calls)]:
            if not isinstance(call.args, str):
                raise AssertionError("call summary is not text")
        analysis.to_json()
        elapsed = time.monotonic() - start
    finally:
        _ARMED = False
    errors = [a for a in analysis.all_anomalies() if a.kind == "internal_error"]
    if errors:
        raise AssertionError(f"analyzer internal_error: {errors[0].detail}")
    if analysis.error is not None:
        raise AssertionError(f"in-memory analysis reported a read error: {analysis.error}")
    if elapsed > PER_INPUT_SECONDS:
        raise AssertionError(f"input took {elapsed:.1f} s (limit max_seconds={LIMITS.max_seconds})")


def test_one_input(data: bytes) -> None:
    """libFuzzer entry point."""
    check(data)


def build_seeds(out: Path) -> int:
    """Write generated benign and hostile seed files to `out`; return how many."""
    import gzip

    import joblib
    import numpy as np

    from safepickle_bench.analysis.hostile_inputs import CASES

    out.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, bytes] = {}
    obj = {"w": [1.5, 2, "x" * 40], "t": (1, None, True), "b": b"\x00\x01", "n": np.arange(6.0)}
    for protocol in range(6):
        seeds[f"plain_p{protocol}.pkl"] = pickle.dumps(obj, protocol=protocol)
    seeds["two_streams.pkl"] = pickle.dumps([1], protocol=2) + pickle.dumps({"a": 1}, protocol=4)
    seeds["objarray.npy"] = _npy_object_array(np)
    npz = io.BytesIO()
    np.savez(npz, a=np.arange(4), b=np.array([None, "x"], dtype=object))
    seeds["arrays.npz"] = npz.getvalue()
    for compress in (0, "zlib", "gzip", "bz2", "xz", "lzma"):
        buf = io.BytesIO()
        joblib.dump({"a": np.arange(8.0), "o": np.array([1, "x"], dtype=object)}, buf, compress=compress)
        seeds[f"joblib_{compress}.joblib"] = buf.getvalue()
    try:
        import torch

        state = {"l.weight": torch.ones(2, 2), "l.bias": torch.zeros(2)}
        buf = io.BytesIO()
        torch.save(state, buf)
        seeds["state.pt"] = buf.getvalue()
        buf = io.BytesIO()
        torch.save(state, buf, _use_new_zipfile_serialization=False)
        seeds["state_legacy.pt"] = buf.getvalue()
    except ImportError:
        pass
    seeds["gz.pkl.gz"] = gzip.compress(pickle.dumps(obj, protocol=2))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/data/0", bytes(16))
    seeds["torchlike.zip"] = zbuf.getvalue()
    for case in CASES:
        data = case.build(0.0)  # every builder clamps to a small minimum size
        if len(data) <= 1 << 20:
            seeds[f"hostile_{case.name}.bin"] = data
    for name, data in seeds.items():
        (out / name).write_bytes(data)
    return len(seeds)


def _npy_object_array(np: object) -> bytes:
    """Return the bytes of a .npy file holding an object array (pickled by numpy)."""
    buf = io.BytesIO()
    np.save(buf, np.array([{"k": 1}, "s", 3], dtype=object), allow_pickle=True)  # type: ignore[attr-defined]
    return buf.getvalue()


def main() -> None:
    """Build the seed corpus when none is given, then hand over to libFuzzer."""
    import resource

    sys.setrecursionlimit(10_000)
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        corpus, seeds = WORKDIR / "corpus", WORKDIR / "seeds"
        corpus.mkdir(parents=True, exist_ok=True)
        n = build_seeds(seeds)
        print(f"fuzz: {n} generated seeds in {seeds}, wild corpus {WILD}, new inputs in {corpus}", flush=True)
        argv += [str(corpus), str(seeds)] + ([str(WILD)] if WILD.is_dir() else [])
    if not any(a.startswith("-max_len") for a in argv):
        argv.append("-max_len=262144")
    sys.addaudithook(_audit)
    print(
        f"fuzz: RSS before fuzzing {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB",
        flush=True,
    )
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
