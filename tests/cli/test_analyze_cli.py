"""`python -m safepickle_bench analyze`: readable text, JSON Lines, and exit codes 0 / 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from safepickle_bench.analysis import analyze_bytes
from safepickle_bench.cli.analyze import format_analysis, format_reasons, main

PAYLOAD = b"\x80\x02cposix\nsystem\nX\x07\x00\x00\x00echo hi\x85R."
MALFORMED = b"\x80\x02cposix\nsystem\n\xff"


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    (tmp_path / "evil.pkl").write_bytes(PAYLOAD)
    (tmp_path / "broken.pkl").write_bytes(MALFORMED)
    return {p.name: p for p in tmp_path.iterdir()}


def test_text_output_has_one_block_per_stream_with_imports_calls_and_offsets(files, capsys):
    assert main([str(files["evil.pkl"])]) == 0
    out = capsys.readouterr().out
    assert "stream evil.pkl#0  protocol 2" in out
    assert "posix.system  [GLOBAL @2]" in out
    assert "calls (1):\n      posix.system ('echo hi',)  [REDUCE @29]" in out
    assert "containers: none (raw)" in out


def test_json_output_is_one_object_per_file(files, capsys):
    assert main(["--json", str(files["evil.pkl"]), str(files["broken.pkl"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    evil, broken = (json.loads(line) for line in lines)
    assert evil["path"] == str(files["evil.pkl"]) and evil["error"] is None
    stream = evil["streams"][0]
    assert {"location", "protocol", "imports", "calls", "anomalies"} <= stream.keys()
    assert stream["location"] == "evil.pkl#0" and stream["protocol"] == 2
    assert [c["callable"] for c in stream["calls"]] == ["posix.system"]
    assert broken["error"] is None  # a malformed pickle is an analysis with anomalies, not an error
    assert "unknown_opcode" in {a["kind"] for s in broken["streams"] for a in s["anomalies"]}


def test_unreadable_files_exit_2_but_every_file_is_still_reported(files, tmp_path, capsys):
    missing = tmp_path / "missing.pkl"
    assert main(["--json", str(missing), str(files["evil.pkl"])]) == 2
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["error"] is not None for r in records] == [True, False]
    assert main([str(missing)]) == 2
    assert "error: cannot read" in capsys.readouterr().out


def test_a_directory_is_walked_and_files_without_pickles_are_skipped(files, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a readme, not a model\n")
    assert main(["--json", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(r["path"]).name for r in records] == ["broken.pkl", "evil.pkl"]
    assert "skipped 1 file(s) holding no pickle" in captured.err


def test_a_file_named_explicitly_is_analysed_whatever_it_holds(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("a readme, not a model\n")
    assert main(["--json", str(text)]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(text)


def test_module_entry_point_runs_the_analyze_subcommand(files):
    proc = subprocess.run(
        [sys.executable, "-m", "safepickle_bench", "analyze", "--json", str(files["evil.pkl"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["streams"][0]["calls"][0]["callable"] == "posix.system"


def test_reason_formatters_extend_the_text_output():
    analysis = analyze_bytes(PAYLOAD, "evil.pkl")
    calls_reason = lambda a: [f"calls {c.callable}" for c in a.all_calls()]  # noqa: E731
    assert format_reasons(analysis) == []
    assert format_reasons(analysis, [calls_reason]) == ["calls posix.system"]
    assert format_analysis(analysis, [calls_reason]).endswith("  reasons:\n    calls posix.system")


def test_no_hash_flag_skips_the_sha256_but_not_the_analysis(files, capsys):
    assert main(["--json", "--no-hash", str(files["evil.pkl"])]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["sha256"] == ""
    assert record["streams"][0]["calls"][0]["callable"] == "posix.system"
    assert main(["--json", str(files["evil.pkl"])]) == 0
    hashed = json.loads(capsys.readouterr().out)
    assert len(hashed["sha256"]) == 64 and hashed["streams"] == record["streams"]
    assert main(["--no-hash", str(files["evil.pkl"])]) == 0
    assert "sha256 not computed" in capsys.readouterr().out


def test_analyze_text_lists_dangerous_calls_as_reasons_with_location(tmp_path, capsys):
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(b"\x80\x02cposix\nsystem\nX\x07\x00\x00\x00echo hi\x85R.")
    assert main([str(payload)]) == 0
    out = capsys.readouterr().out
    assert "reasons:" in out
    assert "call posix.system [process_shell] via REDUCE at payload.pkl#0@" in out
