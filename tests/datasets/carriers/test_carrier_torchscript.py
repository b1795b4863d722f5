"""TorchScript archives and whole modules of generated packages: same bytes per seed, analysed, loaded cleanly."""

from __future__ import annotations

import zipfile

import numpy as np

from safepickle_bench.datasets.carriers import torchscript, user_classes
from safepickle_bench.sandbox.runner import run_sandboxed


def test_torchscript_archives_are_reproducible_analysed_and_load_without_dangerous_events(
    produced, analyzer_reads, oracle_loads_clean
):
    files = produced(torchscript.PRODUCERS[:1], 5)
    for path, _ in files:
        names = zipfile.ZipFile(path).namelist()
        assert any(n.endswith("/data.pkl") for n in names) and any(n.endswith("/constants.pkl") for n in names)
    analyzer_reads([p for p, _ in files])
    oracle_loads_clean([(p, f.loader) for p, f in files])


def test_torchscript_bytes_do_not_depend_on_earlier_compilations(tmp_path):
    digests = []
    for i, seed in enumerate((3, 4, 3)):  # a different model in between must not shift the mangled names
        folder = tmp_path / str(i)
        folder.mkdir()
        (file,) = torchscript.make_torchscript(np.random.default_rng([seed]), folder)
        digests.append((folder / file.name).read_bytes())
    assert digests[0] == digests[2]


def test_whole_modules_of_generated_packages_load_with_their_sidecar_and_no_dangerous_event(
    produced, analyzer_reads
):
    files = produced(torchscript.PRODUCERS[1:], 4)
    assert all(f.loader == user_classes.TORCH_LOADER for _, f in files)
    analyzer_reads([p for p, _ in files])
    results = run_sandboxed([(p, f.loader) for p, f in files], "safepickle_bench.datasets.oracle",
                            timeout=120)
    for result in results:
        assert result.event == "", (result.path, result.event, result.detail)
        assert result.loaded, (result.path, result.error)
