"""Write results/datasets.md: counts per dataset by label, producer, container, payload family and technique,
with build times and oracle drops (from each dataset's build_log.json).

Usage: python experiments/report_datasets.py [--size full] [--data-dir data] [--build] [--out results/datasets.md]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from safepickle_bench.datasets import DATASETS, ensure_dataset, read_manifest
from safepickle_bench.reporting.tables import markdown_table


def _table(frame: pd.DataFrame, column: str) -> str:
    counts = frame.groupby([column, "label"]).size().unstack(fill_value=0).reindex(columns=[0, 1], fill_value=0)
    counts.columns = ["benign", "malicious"]
    counts = counts.sort_values(["malicious", "benign"], ascending=False)
    rows = [{column: idx or "(none)", "benign": row.benign, "malicious": row.malicious}
            for idx, row in counts.iterrows()]
    return markdown_table(rows, [column, "benign", "malicious"], right=("benign", "malicious"))


def section(name: str, size: str, data_dir: Path) -> str:
    """One dataset's markdown section."""
    frame = read_manifest(name, size, data_dir)
    log_path = data_dir / name / size / "build_log.json"
    build_log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    out = [f"## {name} ({size})", ""]
    out.append(f"{len(frame)} files: {int((frame.label == 0).sum())} benign, {int((frame.label == 1).sum())} malicious, "
               f"{frame['group'].nunique()} split groups.")
    if build_log:
        seconds = build_log.get("seconds", {})
        dropped = build_log.get("dropped_by_oracle", {})
        out.append(f"Build: {seconds.get('total', 0):.1f} s with n_jobs={build_log.get('n_jobs')} (seed "
                   f"{build_log.get('seed')}; " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items() if k != "total")
                   + f"). Dropped by the label oracle: {dropped.get('benign', 0)} benign, "
                   f"{dropped.get('malicious', 0)} malicious; duplicate benign files removed: "
                   f"{build_log.get('duplicate_benign_removed', 0)}; surplus trimmed: {build_log.get('trimmed_surplus', 0)}.")
        for record in dropped.get("files", [])[:20]:
            out.append(f"- dropped `{record['path']}` (intended label {record['label']}, producer {record['producer']}, "
                       f"injection {record.get('injection') or '-'}): event `{record['event'] or '-'}`, "
                       f"error `{(record['error'] or '-')[:120]}`")
    elif name == "wild":
        out.append("Read in place from the shared corpus; labels from its MANIFEST.csv (never loaded, no oracle).")
    out.append("")
    for column in ("producer", "kind", "container", "payload_family", "injection", "evasion_technique", "loader"):
        if frame[column].nunique() > 1 or (frame[column] != "").any():
            out += [_table(frame, column), ""]
    descriptions = (build_log.get("technique_descriptions") or {}) if build_log else {}
    if descriptions:
        out.append(markdown_table([{"technique": k, "description": v} for k, v in sorted(descriptions.items())],
                                  ["technique", "description"]))
        out.append("")
    return "\n".join(out)


def main() -> None:
    """Build (optionally) and describe every dataset at the given size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="full")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("results/datasets.md"))
    parser.add_argument("--build", action="store_true", help="build missing datasets first")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--also", nargs="*", default=["hf:paper"], help="extra name:size pairs, when built")
    args = parser.parse_args()
    parts = ["# Datasets", "",
             f"Written by `experiments/report_datasets.py --size {args.size}` on {time.strftime('%Y-%m-%d')}. "
             "Every generated file's label was proven by the label oracle (a sandboxed load with its real loader); "
             "files the oracle contradicted were dropped and are counted below.", ""]
    summary: list[dict[str, object]] = []
    sections = []
    total_seconds = 0.0
    pairs = [(name, "full" if name == "wild" else args.size) for name in args.datasets]
    pairs += [tuple(item.split(":", 1)) for item in args.also if tuple(item.split(":", 1)) not in pairs]
    for name, size in pairs:
        if args.build:
            ensure_dataset(name, size, args.data_dir)
        if not (args.data_dir / name / size / "manifest.parquet").is_file():
            summary.append({"dataset": name, "size": size, "files": "not built"})
            continue
        frame = read_manifest(name, size, args.data_dir)
        log_path = args.data_dir / name / size / "build_log.json"
        build_log = json.loads(log_path.read_text()) if log_path.is_file() else {}
        drops = build_log.get("dropped_by_oracle", {})
        seconds = build_log.get("seconds", {}).get("total")
        if size == args.size and seconds:
            total_seconds += seconds
        summary.append({"dataset": name, "size": size, "files": len(frame), "benign": int((frame.label == 0).sum()),
                        "malicious": int(frame.label.sum()), "groups": frame["group"].nunique(),
                        "build s": "" if seconds is None else f"{seconds:.0f}",
                        "oracle drops": drops.get("benign", 0) + drops.get("malicious", 0) if build_log else "n/a"})
        sections.append(section(name, size, args.data_dir))
    columns = ["dataset", "size", "files", "benign", "malicious", "groups", "build s", "oracle drops"]
    lines = [markdown_table(summary, columns, right=columns[2:]), "",
             f"Building every generated dataset at `{args.size}` took {total_seconds:.0f} s in total "
             "(2 workers on a 2-core machine shared with other jobs)."]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts + lines + [""] + sections))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
