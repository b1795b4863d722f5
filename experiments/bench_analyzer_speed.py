"""Time our static analysis plus every feature group against picklescan's in-process scan of the same files.

Writes results/analyzer_speed.md (and results/analyzer_speed.csv, one row per file). Corpora: the wild corpus
(every file of its MANIFEST, read in place, never loaded) and the `hf` dataset at data/hf/full (every file of
its manifest). For each file, in one process and interleaved so that all see the same machine load, `--repeats`
times each:

- `ours`: `analyze_path(path, compute_sha256=False)` then `featurize_array(analysis, GROUPS)` (every feature
  group), with the cyclic collector paused for the file, exactly as `features.extract` runs it per file;
- `picklescan`: picklescan's own in-process library scan of the file (`picklescan.scanner.scan_file_path`);
- `genops` (reference only): a full `pickletools.genops` pass over the file's pickle bytes (the `.pkl`
  entries of a zip, else the whole file) read into memory beforehand: a tokenizer that does far less.

Times are CPU seconds of this process (`time.process_time`); the median of the repeats is kept per file.
Usage: python experiments/bench_analyzer_speed.py [--repeats 5] [--hf-limit N] [--out results/analyzer_speed.md]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import pickletools
import platform
import statistics
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from safepickle_bench.analysis import analyze_path  # noqa: E402
from safepickle_bench.features import GROUPS, featurize_array  # noqa: E402
from safepickle_bench.features.extraction import gc_paused  # noqa: E402

clock = time.process_time
"""CPU time of this process: the machine is shared, and wall time would charge other jobs' load to us."""


def wild_dir() -> Path:
    """Return the wild corpus folder ($SAFEPICKLE_WILD_DIR, else ../shared/corpus/wild beside the repo)."""
    try:
        from safepickle_bench.paths import wild_dir as package_wild_dir

        return Path(package_wild_dir())
    except ImportError:  # an older package without the paths module: the same rule, spelled out
        override = os.environ.get("SAFEPICKLE_WILD_DIR")
        return Path(override) if override else REPO / ".." / "shared" / "corpus" / "wild"


@dataclass
class FileTiming:
    """Median CPU seconds per method on one file."""

    corpus: str
    path: str
    size: int
    ours_s: float
    picklescan_s: float
    genops_s: float
    opcodes: int


def wild_files() -> list[str]:
    """Return every file of the wild corpus MANIFEST (empty when the corpus is absent)."""
    root = wild_dir()
    manifest = root / "MANIFEST.csv"
    if not manifest.exists():
        return []
    with manifest.open(newline="", encoding="utf-8") as fh:
        return [str(root / r["file"]) for r in csv.DictReader(fh) if (root / r["file"]).is_file()]


def hf_files(limit: int | None) -> list[str]:
    """Return the files of data/hf/full in manifest order (empty when the dataset is not built)."""
    import pandas as pd

    folder = REPO / "data" / "hf" / "full"
    manifest = folder / "manifest.parquet"
    if not manifest.exists():
        return []
    paths = [str(folder / p) for p in pd.read_parquet(manifest, columns=["path"])["path"]]
    return paths[:limit] if limit else paths


def pickle_regions(path: str) -> list[bytes]:
    """Return the pickle bytes a tokenizer would walk: the `.pkl` entries of a zip, else the whole file."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return [zf.read(n) for n in zf.namelist() if n.endswith(".pkl")]
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        pass  # broken or encrypted wild zips: the raw bytes
    return [Path(path).read_bytes()]


def genops_pass(regions: list[bytes]) -> int:
    """Walk every back-to-back stream of every region with pickletools.genops; return the opcode count."""
    n = 0
    for data in regions:
        pos = 0
        try:
            while pos < len(data):
                for _, _, p in pickletools.genops(data[pos:]):
                    n += 1
                    last = p
                pos += last + 1
        except Exception:  # noqa: BLE001 - malformed wild samples: genops stops with an error
            pass
    return n


def ours(path: str) -> int:
    """Analyse one file and compute every feature group (as `extract` does per file); return its opcodes."""
    with gc_paused():
        analysis = analyze_path(path, compute_sha256=False)
        featurize_array(analysis, GROUPS)
        n = sum(s.n_opcodes for s in analysis.streams)
        del analysis  # freed while the collector is paused, as analyze_row does (counted in the time)
    return n


def picklescan_scan(path: str) -> None:
    """Scan one file with picklescan's in-process library function."""
    from picklescan.scanner import scan_file_path

    scan_file_path(path)


def time_file(corpus: str, path: str, repeats: int) -> FileTiming:
    """Median CPU time of ours, picklescan and genops on one file, interleaved repeat by repeat."""
    regions = pickle_regions(path)
    opcodes = ours(path)  # warm the OS cache for this file
    o, s, g = [], [], []
    for _ in range(repeats):
        t0 = clock()
        ours(path)
        t1 = clock()
        picklescan_scan(path)
        t2 = clock()
        genops_pass(regions)
        t3 = clock()
        o.append(t1 - t0)
        s.append(t2 - t1)
        g.append(t3 - t2)
    return FileTiming(
        corpus, path, os.path.getsize(path), statistics.median(o), statistics.median(s), statistics.median(g), opcodes
    )


def summarize(timings: list[FileTiming]) -> dict[str, float]:
    """Return per-corpus figures: ms per file (mean and median) of each method and the ratios."""
    n = len(timings)
    mean = {k: sum(getattr(t, f"{k}_s") for t in timings) / n * 1e3 for k in ("ours", "picklescan", "genops")}
    med = {k: statistics.median(getattr(t, f"{k}_s") for t in timings) * 1e3 for k in ("ours", "picklescan", "genops")}
    per_file = [t.ours_s / t.picklescan_s for t in timings if t.picklescan_s > 0]
    return {
        "n": n,
        **{f"mean_{k}": v for k, v in mean.items()},
        **{f"median_{k}": v for k, v in med.items()},
        "ratio_mean": mean["ours"] / mean["picklescan"],
        "ratio_median_file": statistics.median(per_file) if per_file else float("nan"),
        "slower_files": sum(r > 1.0 for r in per_file),
        "genops_ratio_mean": mean["ours"] / mean["genops"] if mean["genops"] else float("nan"),
    }


def render(summary: dict[str, dict[str, float]], repeats: int, load: tuple[float, float], wall: float) -> str:
    """Return the markdown report."""
    import picklescan

    lines = [
        "# Analyzer speed: analysis + all features vs picklescan's in-process scan",
        "",
        "Generated by `python experiments/bench_analyzer_speed.py`; every figure below is measured in that run",
        "(per-file medians in `results/analyzer_speed.csv`).",
        "",
        f"- Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs shared with other "
        f"jobs (1-minute load average {load[0]:.1f} before, {load[1]:.1f} after). Times are CPU seconds of this "
        "process (`time.process_time`); the three methods run interleaved on each file, in one process.",
        f"- {repeats} repeats per file, median per file. Benchmark wall time: {wall:.0f} s.",
        "- `ours` = `analyze_path(path, compute_sha256=False)` + `featurize_array(analysis, GROUPS)` (every feature "
        "group), cyclic GC paused per file, as `features.extract` runs each file (the pure-Python engine: the "
        "package has no compiled code).",
        f"- `picklescan` = `picklescan.scanner.scan_file_path(path)` (picklescan {picklescan.__version__ if hasattr(picklescan, '__version__') else '1.0.5'}, "
        "in-process library call: it opens the file, walks zips, and tokenizes each pickle with `pickletools.genops`).",
        "- `genops` (reference) = a bare `pickletools.genops` pass over the file's pickle bytes, already in "
        "memory (`.pkl` entries of a zip, else the whole file): tokenizing only, far less than either scanner.",
        "- ratio = ours / picklescan (<= 1.00: we are at least as fast as picklescan).",
        "",
        "| corpus | files | ours mean ms/file | picklescan mean ms/file | genops mean ms/file | ours median "
        "| picklescan median | genops median | ratio of means | median per-file ratio | files slower than "
        "picklescan | ours / genops (means) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in summary.items():
        lines.append(
            f"| {name} | {r['n']} | {r['mean_ours']:.3f} | {r['mean_picklescan']:.3f} | {r['mean_genops']:.3f} | "
            f"{r['median_ours']:.3f} | {r['median_picklescan']:.3f} | {r['median_genops']:.3f} | "
            f"{r['ratio_mean']:.2f} | {r['ratio_median_file']:.2f} | {int(r['slower_files'])} | "
            f"{r['genops_ratio_mean']:.2f} |"
        )
    lines.append("")
    for what, key in (("ratio of means", "ratio_mean"), ("median per-file ratio", "ratio_median_file")):
        met = [n for n, r in summary.items() if r[key] <= 1.0]
        missed = [n for n in summary if n not in met]
        lines.append(
            f"Goal: analysis + all features per file at most picklescan's in-process scan on the same files ({what} "
            "<= 1.00). "
            + (f"Met on: {', '.join(met)}. " if met else "")
            + (f"Missed on: {', '.join(missed)}." if missed else "Met on every corpus.")
        )
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark and write the report and the per-file CSV."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--hf-limit", type=int, default=None, help="time only the first N hf files")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "analyzer_speed.md")
    args = ap.parse_args()
    logging.getLogger("picklescan").setLevel(logging.CRITICAL)  # it logs every parse error of hostile files

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    corpora = {"wild corpus": wild_files(), "hf full": hf_files(args.hf_limit)}
    timings: list[FileTiming] = []
    summary: dict[str, dict[str, float]] = {}
    for name, paths in corpora.items():
        if not paths:
            print(f"{name}: no files, skipped", file=sys.stderr)
            continue
        rows = [time_file(name, p, args.repeats) for p in paths]
        timings += rows
        summary[name] = summarize(rows)
        print(name, {k: round(v, 4) for k, v in summary[name].items()}, file=sys.stderr)
    wall = time.perf_counter() - started
    report = render(summary, args.repeats, (load_before, os.getloadavg()[0]), wall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    with args.out.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["corpus", "file", "bytes", "opcodes", "ours_ms", "picklescan_ms", "genops_ms"])
        for i, t in enumerate(timings):
            # wild files by index only: names from the hostile corpus stay out of the repository
            rel = os.path.relpath(t.path, REPO) if t.corpus == "hf full" else f"wild#{i}"
            w.writerow([t.corpus, rel, t.size, t.opcodes, f"{t.ours_s * 1e3:.4f}", f"{t.picklescan_s * 1e3:.4f}",
                        f"{t.genops_s * 1e3:.4f}"])  # fmt: skip
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
