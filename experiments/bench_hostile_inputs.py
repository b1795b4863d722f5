"""Measure the analyzer on every hostile input family at the DEFAULT limits: wall and CPU time, peak memory.

Each case (safepickle_bench.analysis.hostile_inputs.CASES, built at scale 1.0) is written to a temporary file
and analysed twice in a fresh subprocess each: once plainly, for wall time, CPU time and the growth of the
process's peak RSS (VmHWM of /proc/self/status after the analysis minus before it), and once under
`tracemalloc`, for the peak of Python-level allocations. Writes results/hostile_inputs.csv and
results/hostile_inputs.md (the fuzzing summary at the top of the .md is kept: see tests/fuzz/fuzz_analyzer.py).

Usage: python experiments/bench_hostile_inputs.py [--cases NAME ...] [--timeout 180]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from safepickle_bench.analysis import DEFAULT_LIMITS  # noqa: E402
from safepickle_bench.analysis.hostile_inputs import CASES  # noqa: E402
from safepickle_bench.reporting.tables import markdown_table  # noqa: E402

FUZZ_MARKER = "<!-- end of fuzzing summary -->"
"""Everything above this line in results/hostile_inputs.md is the fuzzing record and is preserved."""

RUNNER = r"""
import json, sys, time, tracemalloc
from safepickle_bench.analysis import analyze_bytes, analyze_path
def hwm_kib():
    # VmHWM: peak RSS of this process image (ru_maxrss would carry the parent's peak across fork+exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
path, traced = sys.argv[1], sys.argv[2] == "1"
analyze_bytes(b"\x80\x04N.", "warm-up")  # load every lazily imported module before the baseline
before = hwm_kib()
if traced:
    tracemalloc.start()
wall, cpu = time.perf_counter(), time.process_time()
analysis = analyze_path(path, compute_sha256=False)
summaries = [c.args for c in analysis.all_calls()]  # lazy summaries are part of the cost
text = analysis.to_json()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = tracemalloc.get_traced_memory()[1] if traced else 0
after = hwm_kib()
kinds = sorted({a.kind for a in analysis.all_anomalies()})
print(json.dumps({"wall": wall, "cpu": cpu, "rss_before_kib": before, "rss_after_kib": after, "peak": peak,
                  "kinds": kinds, "streams": len(analysis.streams), "calls": len(summaries),
                  "pickle_bytes": analysis.pickle_bytes, "json_bytes": len(text), "error": analysis.error}))
"""


def run_case(path: Path, traced: bool, timeout: float) -> dict[str, object]:
    """Analyse `path` in a fresh interpreter and return the runner's measurements (or the failure)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(path), "1" if traced else "0"],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"failure": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"failure": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Build every case, measure it, and write the CSV and the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", help="only these case names")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per subprocess")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "hostile_inputs")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    rows = []
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        for case in cases:
            t0 = time.perf_counter()
            data = case.build(1.0)
            build_s = time.perf_counter() - t0
            path = Path(tmp) / f"{case.name}.bin"
            path.write_bytes(data)
            size = len(data)
            del data
            plain = run_case(path, traced=False, timeout=args.timeout)
            traced = run_case(path, traced=True, timeout=args.timeout)
            path.unlink()
            failure = plain.get("failure") or traced.get("failure") or plain.get("error") or ""
            kinds = list(plain.get("kinds", []))
            expected_ok = not case.expected or bool(case.expected & set(kinds))
            row = {
                "case": case.name,
                "description": case.description,
                "input_bytes": size,
                "build_s": round(build_s, 2),
                "wall_s": round(float(plain.get("wall", float("nan"))), 3),
                "cpu_s": round(float(plain.get("cpu", float("nan"))), 3),
                "rss_growth_mib": round(
                    (int(plain.get("rss_after_kib", 0)) - int(plain.get("rss_before_kib", 0))) / 1024, 1
                ),
                "rss_peak_mib": round(int(plain.get("rss_after_kib", 0)) / 1024, 1),
                "tracemalloc_peak_mib": round(int(traced.get("peak", 0)) / 2**20, 1),
                "streams": plain.get("streams", ""),
                "calls": plain.get("calls", ""),
                "anomalies": " ".join(kinds),
                "expected": " ".join(sorted(case.expected)) or "(none needed)",
                "expected_recorded": expected_ok,
                "failure": failure,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    wall = time.perf_counter() - t_start
    out_csv = args.out.with_suffix(".csv")
    out_md = args.out.with_suffix(".md")
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = ""
    if out_md.exists() and FUZZ_MARKER in out_md.read_text():
        header = out_md.read_text().split(FUZZ_MARKER)[0] + FUZZ_MARKER + "\n\n"
    out_md.write_text(header + render(rows, load, wall))
    print(f"wrote {out_csv} and {out_md}")


def render(rows: list[dict[str, object]], load: str, wall: float) -> str:
    """Return the markdown table of the measurements."""
    lim = DEFAULT_LIMITS
    lines = [
        "## Hostile inputs at the default limits",
        "",
        "Generated by `python experiments/bench_hostile_inputs.py` (builders in "
        "`safepickle_bench/analysis/hostile_inputs.py`, scale 1.0); every figure below is measured in that run.",
        "",
        f"- Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average at "
        f"start {load}; benchmark wall time {wall:.0f} s.",
        f"- Default limits: max_decompressed_bytes={lim.max_decompressed_bytes:,}, "
        f"max_total_decompressed_bytes={lim.max_total_decompressed_bytes:,}, max_pickle_bytes={lim.max_pickle_bytes:,}, "
        f"max_opcodes={lim.max_opcodes:,}, max_stack_depth={lim.max_stack_depth:,}, max_streams={lim.max_streams}, "
        f"max_nested_pickle_depth={lim.max_nested_pickle_depth}, max_seconds={lim.max_seconds}.",
        "- Each case is analysed with `analyze_path(path, compute_sha256=False)` in a fresh subprocess (call "
        "summaries and the JSON included). `wall`/`CPU`: that call (wall time includes waiting for the shared "
        "CPUs; the benchmark runs under `nice`). `RSS growth`: peak RSS (VmHWM) after the call minus before it "
        "(the interpreter and imports are not counted); `tracemalloc peak`: peak of Python-level allocations "
        "during the call, in a second run.",
        "",
    ]
    columns = ["case", "input", "wall", "CPU", "RSS growth", "tracemalloc peak", "streams", "anomalies recorded",
               "expected", "ok"]
    cells = [{
        "case": f"{r['case']}: {r['description']}", "input": _size(int(r["input_bytes"])),
        "wall": f"{r['wall_s']:.2f} s", "CPU": f"{r['cpu_s']:.2f} s", "RSS growth": f"{r['rss_growth_mib']:,.1f} MiB",
        "tracemalloc peak": f"{r['tracemalloc_peak_mib']:,.1f} MiB", "streams": r["streams"],
        "anomalies recorded": r["anomalies"] or "-", "expected": r["expected"],
        "ok": "yes" if r["expected_recorded"] and not r["failure"] else f"NO {r['failure']}",
    } for r in rows]
    lines.append(markdown_table(cells, columns, right=columns[1:7]))
    worst_t = max(rows, key=lambda r: float(r["wall_s"]))
    worst_m = max(rows, key=lambda r: float(r["rss_growth_mib"]))
    lines += [
        "",
        f"Slowest case: {worst_t['case']} ({worst_t['wall_s']:.2f} s, budget {lim.max_seconds:.0f} s). Largest "
        f"memory growth: {worst_m['case']} ({worst_m['rss_growth_mib']:,.1f} MiB RSS; the decompression budget is "
        f"{lim.max_decompressed_bytes / 2**20:,.0f} MiB per output).",
        "The same families are checked at reduced limits, with time and memory bounds asserted, by "
        "`tests/analysis/test_hostile_inputs.py`.",
        "",
    ]
    return "\n".join(lines)


def _size(n: int) -> str:
    """Return a byte count as B, KiB or MiB text."""
    if n < 1024:
        return f"{n} B"
    if n < 2**20:
        return f"{n / 1024:,.1f} KiB"
    return f"{n / 2**20:,.1f} MiB"


if __name__ == "__main__":
    main()
