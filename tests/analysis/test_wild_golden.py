"""`analyze --json` of every wild-corpus file stays what it was when the golden was recorded.

The golden (`golden/wild_analyze.json`) holds, per file (keyed by the sha256 of its content, never by its name),
the sha256 of the canonical JSON record (sorted keys, `timings` removed), never the files, their names or the
records themselves: the corpus is hostile and stays outside the repository.

Regenerate (only when a change of the output is intended, and say why in the commit):
    python tests/analysis/test_wild_golden.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

from safepickle_bench.cli.analyze import run as analyze_cli_run
from safepickle_bench.models import explain  # noqa: F401 - imported before the audit hook is armed
from safepickle_bench.paths import wild_dir

GOLDEN = Path(__file__).parent / "golden" / "wild_analyze.json"


def record_digest(record: dict[str, Any]) -> str:
    """Return the sha256 of a JSON record's canonical form (sorted keys, `timings` removed)."""
    kept = {k: v for k, v in record.items() if k != "timings"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def wild_records(wild: Path) -> dict[str, dict[str, Any]]:
    """Return the `analyze --json` record of every corpus file (run from inside `wild` with relative paths),
    keyed by the sha256 of the file's content."""
    files = sorted(
        f.relative_to(wild).as_posix() for f in wild.rglob("*") if f.is_file() and f.parent != wild
    )
    out = io.StringIO()
    here = Path.cwd()
    os.chdir(wild)
    try:
        analyze_cli_run(files, as_json=True, out=out)
    finally:
        os.chdir(here)
    # "\n" only: records keep U+2028 and other line separators unescaped (ensure_ascii=False)
    records = [json.loads(line) for line in out.getvalue().split("\n") if line]
    keyed: dict[str, dict[str, Any]] = {}
    for r in records:
        sha = hashlib.sha256((wild / r["path"]).read_bytes()).hexdigest()
        if sha in keyed:
            raise ValueError("two wild-corpus files have the same content: the golden keys files by content")
        keyed[sha] = r
    return keyed


def test_analyze_json_of_the_wild_corpus_matches_the_golden(wild_corpus, no_dangerous_events):
    wild = wild_corpus
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["records"]
    got = wild_records(wild)
    assert sorted(got) == sorted(golden), "the wild corpus does not hold the files the golden was made from"
    mismatched = [sha for sha, record in got.items() if record_digest(record) != golden[sha]]
    for sha in mismatched[:3]:
        print(json.dumps(got[sha], sort_keys=True, ensure_ascii=False)[:6000])
    assert mismatched == [], f"{len(mismatched)} records changed (file sha256): {mismatched[:10]}"


def _regenerate() -> None:
    records = {sha: record_digest(r) for sha, r in wild_records(wild_dir()).items()}
    about = __doc__.split("\n\n")[1].replace("\n", " ")
    GOLDEN.write_text(json.dumps({"about": about, "records": records}, indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {len(records)} records to {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate()
