"""Stdlib-object config pickles: protocols 0-5 and Python-2 opcodes, reproducible, read and loaded cleanly."""

from __future__ import annotations

import io
import pickle
import pickletools

import numpy as np

from safepickle_bench.datasets.carriers import stdlib_objects


def test_stdlib_config_files_are_reproducible_analysed_and_load_without_dangerous_events(
    produced, analyzer_reads, oracle_loads_clean
):
    files = produced(stdlib_objects.PRODUCERS, 4)
    assert {f.kind.rsplit("_p", 1)[0] for _, f in files} == {"stdlib_config", "py2_config", "stdlib_config_compat",
                                                             "stdlib_single_value"}
    analyzer_reads([p for p, _ in files])
    oracle_loads_clean([(p, f.loader) for p, f in files])


def test_python2_writer_round_trips_and_uses_python2_spellings():
    for seed in range(30):
        config = stdlib_objects.make_py2_config(np.random.default_rng(seed))
        for protocol in (0, 1, 2):
            data = stdlib_objects._Py2Writer(protocol).dumps(config)
            pickletools.dis(data, out=io.StringIO())  # well-formed opcode stream
            assert pickle.loads(data) == config  # our own generated inert bytes
            assert b"c__builtin__\nset\n" in data
    data = stdlib_objects._Py2Writer(0).dumps({"name": "x", "big": 2**40, "ns": __import__("argparse").Namespace(a=1)})
    assert b"S'name'" in data and b"L1099511627776L\n" in data and b"ccopy_reg\n_reconstructor\n" in data


def test_compat_protocols_name_modules_as_python2_did(tmp_path):
    seen = b""
    for seed in range(12):
        folder = tmp_path / str(seed)
        folder.mkdir()
        (file,) = stdlib_objects.make_fix_imports_pickle(np.random.default_rng(seed), folder)
        seen += (folder / file.name).read_bytes()
    assert b"c__builtin__\n" in seen and b"ccopy_reg\n_reconstructor\n" in seen


def test_single_values_are_as_small_as_a_payload(tmp_path):
    sizes = []
    for seed in range(60):
        folder = tmp_path / str(seed)
        folder.mkdir()
        (file,) = stdlib_objects.make_single_value_pickle(np.random.default_rng(seed), folder)
        sizes.append(sum(1 for _ in pickletools.genops((folder / file.name).read_bytes())))
    assert min(sizes) <= 3 and np.median(sizes) <= 12  # a handful of opcodes, like a stand-alone payload
