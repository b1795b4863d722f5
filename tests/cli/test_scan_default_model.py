"""`scan` end to end with the real engine and the detector shipped in the package (no `--model`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_reports import sarif_validator


def _scan(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "safepickle_bench", "scan", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_mixed_folder_reports_only_its_model_files_and_exits_1(mixed_folder, tmp_path):
    root, expected = mixed_folder
    sarif = tmp_path / "scan.sarif"
    proc = _scan(["--json", "--sarif", str(sarif), str(root)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    got = {r["path"][len(str(root)) + 1 :]: r["verdict"] for r in records}
    assert got == {k: v for k, v in expected.items() if v != "skipped"}
    for r in records:
        if r["verdict"] == "malicious":
            assert {x.get("global") for x in r["reasons"]} >= {"posix.system"}
    assert "skipped 6 (no pickle)" in proc.stderr
    log = json.loads(sarif.read_text())
    assert not list(sarif_validator().iter_errors(log))
    assert len(log["runs"][0]["results"]) == 4


def test_clean_files_exit_0_and_an_unreadable_one_exits_2(mixed_folder, tmp_path):
    root, _ = mixed_folder
    clean = _scan(["--quiet", str(root / "models" / "weights.bin"), str(root / "README.md")], cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines()[-1].startswith("summary: scanned 1, flagged 0, clean 1, errors 0, skipped 1")
    error = _scan([str(root / "models" / "evil.pkl"), str(root / "missing.pkl")], cwd=tmp_path)
    assert error.returncode == 2 and "missing.pkl: ERROR cannot read" in error.stdout


def test_json_lines_on_the_wild_corpus_parse_record_by_record_and_flagged_files_name_a_callable(wild_corpus,
                                                                                                 tmp_path):
    proc = _scan(["--json", str(wild_corpus)], cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stdout.isascii()
    lines = proc.stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == len(proc.stdout.split("\n")) - 1 > 150
    flagged = [r for r in records if r["verdict"] == "malicious"]
    assert flagged
    unnamed = [r["path"] for r in flagged if not any(x.get("global") for x in r["reasons"])]
    assert unnamed == []


@pytest.mark.slow
def test_scan_on_a_dask_cluster_gives_the_local_verdicts(mixed_folder, capsys):
    from distributed import LocalCluster

    from safepickle_bench.cli.scan import main as scan_main

    root, _ = mixed_folder
    assert scan_main(["--json", "--jobs", "1", str(root)]) == 1
    local = capsys.readouterr().out.splitlines()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        assert scan_main(["--json", "--backend", "dask", "--address", cluster.scheduler_address, str(root)]) == 1
    remote = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in remote] == [json.loads(line) for line in local] and len(local) == 7
