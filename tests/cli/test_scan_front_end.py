"""`scan` front end with a stand-in engine: inputs, order, reports, SARIF, exit codes, options, progress."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from safepickle_bench.cli import scan
from safepickle_bench.cli.scan import main as scan_main
from tests.cli.conftest import COMMIT_EVIL
from tests.cli.test_reports import sarif_validator
from tests.conftest import BENIGN_PICKLE, PAYLOAD_P2


def _relative(root: Path, display: str) -> str:
    return display[len(str(root)) + 1 :]


def test_a_mixed_folder_reports_only_the_model_files_and_exits_1(mixed_folder, fake_engine, capsys):
    root, expected = mixed_folder
    assert scan_main(["--json", str(root)]) == 1
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    got = {_relative(root, r["path"]): r["verdict"] for r in records}
    assert got == {k: v for k, v in expected.items() if v != "skipped"}
    assert [_relative(root, r["path"]) for r in records] == [  # a folder's files, then its sub-folders, sorted
        "bundle.zip!inner/evil.pkl", "bundle.zip!inner/ok.joblib", "release.tar.gz!model/evil.bin",
        "models/evil.pkl", "models/evil_torch.pt", "models/no_extension", "models/weights.bin"]
    assert captured.err.startswith("summary: scanned 7, flagged 4, clean 3, errors 0, skipped 6 (no pickle)")
    member = next(i for i in fake_engine.items if i.display.endswith("!inner/evil.pkl"))
    assert member.path is None and member.data


def test_text_report_names_the_callable_and_location_and_ends_with_a_summary(mixed_folder, fake_engine, capsys):
    root, _ = mixed_folder
    assert scan_main([str(root / "models")]) == 1
    lines = capsys.readouterr().out.splitlines()
    flagged = [line for line in lines if "MALICIOUS" in line]
    assert flagged == [
        f"{root}/models/evil.pkl: MALICIOUS score=0.9700 threshold=0.5000: call posix.system [process_shell] "
        "via REDUCE at evil.pkl#0@29",
        f"{root}/models/evil_torch.pt: MALICIOUS score=0.9700 threshold=0.5000: call posix.system "
        "[process_shell] via REDUCE at evil_torch.pt!archive/data.pkl#0@33",
    ]
    assert f"{root}/models/weights.bin: clean score=0.0200" in lines
    assert lines[-1].startswith("summary: scanned 4, flagged 2, clean 2, errors 0, skipped 0 (no pickle), seconds ")


def test_quiet_prints_only_flagged_files_and_the_summary(mixed_folder, fake_engine, capsys):
    root, _ = mixed_folder
    assert scan_main(["--quiet", str(root)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all("MALICIOUS" in line for line in lines[:4]) and lines[4].startswith("summary:")


def test_clean_inputs_exit_0_and_nothing_to_scan_exits_0(tmp_path, fake_engine, capsys):
    (tmp_path / "ok.pkl").write_bytes(BENIGN_PICKLE)
    (tmp_path / "notes.txt").write_text("hello")
    assert scan_main([str(tmp_path)]) == 0
    assert scan_main([str(tmp_path / "notes.txt")]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("summary: scanned 0, flagged 0, clean 0, errors 0, skipped 1")


def test_errors_win_over_malicious_and_keep_their_place_in_the_output(tmp_path, fake_engine, capsys):
    (tmp_path / "a.pkl").write_bytes(PAYLOAD_P2)
    (tmp_path / "c.pkl").write_bytes(BENIGN_PICKLE)
    args = ["--json", str(tmp_path / "a.pkl"), str(tmp_path / "missing.pkl"), str(tmp_path / "c.pkl")]
    assert scan_main(args) == 2
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(r["path"]).name, r["verdict"]) for r in records] == [
        ("a.pkl", "malicious"), ("missing.pkl", "error"), ("c.pkl", "clean")]
    assert "No such file" in records[1]["error"] and records[1]["threshold"] is None


def test_merge_keeps_input_order_when_the_engine_reads_ahead(fake_engine):
    from safepickle_bench.cli.discover import Failed, Found, Skipped

    entries = [Skipped("s0", "x"), Found("f1"), Failed("e2", "boom"), Skipped("s3", "x"), Found("f4"),
               Found("f5"), Failed("e6", "boom")]

    def greedy(items):  # reads every item before answering, like a pool with a deep window
        return [f"v:{i.display}" for i in list(items)]

    merged = [(e.display, v) for e, v in scan.merge(entries, greedy)]
    assert merged == [("s0", None), ("f1", "v:f1"), ("e2", None), ("s3", None), ("f4", "v:f4"), ("f5", "v:f5"),
                      ("e6", None)]


def test_sarif_file_validates_and_holds_one_result_per_flagged_file(mixed_folder, fake_engine, tmp_path, capsys,
                                                                    monkeypatch):
    root, expected = mixed_folder
    monkeypatch.chdir(root)
    out = tmp_path / "report.sarif"
    assert scan_main(["--sarif", str(out), "--quiet", "."]) == 1
    log = json.loads(out.read_text())
    assert not list(sarif_validator().iter_errors(log))
    results = log["runs"][0]["results"]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)
    assert uris == ["bundle.zip", "models/evil.pkl", "models/evil_torch.pt", "release.tar.gz"]
    members = sorted(loc["fullyQualifiedName"] for r in results for loc in r["locations"][0].get("logicalLocations", []))
    assert members == ["./bundle.zip!inner/evil.pkl", "./release.tar.gz!model/evil.bin"]
    assert all(r["properties"]["callable"] == "posix.system" for r in results)
    assert len(capsys.readouterr().out.splitlines()) == 5  # the text report still goes to stdout


def test_options_reach_the_engine(tmp_path, fake_engine, capsys):
    (tmp_path / "a.pkl").write_bytes(PAYLOAD_P2)
    scan_main(["--jobs", "3", "--backend", "dask", "--address", "tcp://127.0.0.1:8786", "--explain", str(tmp_path)])
    assert fake_engine.kwargs == {"model_dir": None, "jobs": 3, "backend": "dask", "address": "tcp://127.0.0.1:8786",
                                  "explain": "all", "top_k": 5}
    scan_main(["--no-explain", "--top-features", "2", str(tmp_path)])
    assert fake_engine.kwargs["explain"] == "none" and fake_engine.kwargs["top_k"] == 2
    scan_main([str(tmp_path)])
    assert fake_engine.kwargs["explain"] == "flagged" and fake_engine.kwargs["backend"] == "local"


@pytest.mark.parametrize("argv", [[], ["--address", "tcp://127.0.0.1:1", "x.pkl"], ["--backend", "spark", "x"]])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        scan_main(argv)
    assert exc.value.code == 2


def test_a_model_folder_without_detector_json_is_refused_before_scanning(tmp_path, capsys):
    assert scan_main(["--model", str(tmp_path), str(tmp_path)]) == 2
    assert "detector.json" in capsys.readouterr().err


def test_an_engine_failure_keeps_earlier_results_and_exits_2(tmp_path, fake_engine, capsys):
    for i in range(3):
        (tmp_path / f"{i}.pkl").write_bytes(BENIGN_PICKLE)
    fake_engine.fail_after = 2
    assert scan_main(["--json", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and "error: scan stopped: RuntimeError: worker lost" in captured.err


def test_progress_bar_goes_to_stderr_only_when_asked_or_on_a_terminal(tmp_path, fake_engine, capsys):
    for i in range(3):
        (tmp_path / f"{i}.pkl").write_bytes(BENIGN_PICKLE)
    assert scan_main(["--progress", "--quiet", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "/3 [" in captured.err and "file/s" in captured.err and "file/s" not in captured.out
    assert scan_main(["--quiet", str(tmp_path)]) == 0  # stderr is not a terminal here
    assert capsys.readouterr().err == ""
    assert scan._want_progress(None, scan.PROGRESS_MIN_FILES - 1) is False


def test_the_hub_cache_and_hf_references_are_scanned_offline(hub_cache, fake_engine, capsys, monkeypatch):
    assert scan_main(["--json", "--hf-cache", str(hub_cache)]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["verdict"] for r in records] == ["clean", "clean", "clean", "malicious"]
    assert records[-1]["path"] == f"hf://evil/rce-model@{COMMIT_EVIL}/sub/model.pkl"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    assert scan_main(["--quiet", "--hf-cache"]) == 1
    options = scan.Options
    monkeypatch.setattr(scan, "Options", lambda **kw: options(**kw, hf_cache_dir=hub_cache, hf_local_only=True))
    assert scan_main(["--json", "hf://evil/rce-model"]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["verdict"] == "malicious"


def test_front_end_modules_import_no_model_library(tmp_path):
    code = (
        "import sys\n"
        "import safepickle_bench.cli.scan, safepickle_bench.cli.analyze, safepickle_bench.cli.discover\n"
        "import safepickle_bench.cli.reports, safepickle_bench.cli.hub\n"
        "from safepickle_bench.cli.analyze import main\n"
        f"main(['--json', {str(tmp_path)!r}])\n"
        "heavy = {'sklearn', 'torch', 'dask', 'distributed', 'mlflow', 'huggingface_hub', 'pandas', 'xgboost',\n"
        "         'lightgbm', 'catboost', 'skops', 'tqdm'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    (tmp_path / "a.pkl").write_bytes(PAYLOAD_P2)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"
