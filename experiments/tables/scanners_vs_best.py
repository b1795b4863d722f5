"""Table 2: the scanners vs our best model on `hf` — merged from the scanner benchmark and Table 1 (no new runs).

    python experiments/tables/scanners_vs_best.py [--out results]

Reads results/scanners/hf/metrics.csv (or results/scanners.csv; written by experiments/run_scanners.py) and
results/main_comparison.csv. Our models cannot be scored as a scanner on the files they were trained on, so
our rows are the out-of-fold (group k-fold) figures of Table 1. Paper: the SOTA scanners (ModelScan, Fickling,
ClamAV, VirusTotal) reached 7.23 % to 62.75 % F1 on its HF set (per-scanner figures not public).
Writes results/scanners_vs_best.{md,csv} and results/figures/scanners_vs_best.png.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from safepickle_bench.pipeline.experiment_runs import (
    OUR_FEATURES,
    PAPER_FEATURES,
    add_context_args,
    context_from_args,
    log_table_run,
    setup_logging,
)
from safepickle_bench.reporting.paper import paper_pct
from safepickle_bench.reporting.results_figures import grouped_bars
from safepickle_bench.reporting.scanner_results import (
    missing_note,
    read_scanner_metrics,
    scanner_display_rows,
)
from safepickle_bench.reporting.tables import caption, num, pct, write_table

SCRIPT = "experiments/tables/scanners_vs_best.py"
PAPER_SCANNERS = ("modelscan", "fickling", "clamav", "virustotal")


def best_rows(main: pd.DataFrame) -> list[dict[str, object]]:
    """Return Table 1's best supervised model per feature set (highest F1, then ROC-AUC)."""
    out = []
    ok = main[(main["dataset"] == "hf") & (main["error"].fillna("") == "") & (main["kind"] == "supervised")]
    for features in (PAPER_FEATURES, OUR_FEATURES):
        part = ok[ok["features"] == features]
        if part.empty:
            continue
        best = part.sort_values(["f1", "roc_auc"], ascending=False).iloc[0]
        out.append(best.to_dict())
    return out


def main(argv: list[str] | None = None) -> int:
    """Merge the scanner metrics with our best models; write the table and the figure."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_context_args(ap)
    args = ap.parse_args(argv)
    setup_logging()
    ctx = context_from_args(args)
    started = time.perf_counter()
    paper_range = f"{paper_pct('hf_scanners_f1_min')}-{paper_pct('hf_scanners_f1_max')} (range)"
    main_csv = ctx.out_dir / "main_comparison.csv"
    ours = best_rows(pd.read_csv(main_csv)) if main_csv.is_file() else []
    display: list[dict[str, object]] = []
    for r in ours:
        display.append({"method": f"ours: {r['model']} ({r['features']}), group k-fold", "F1 % fail-closed":
                        pct(r["f1"], r["f1_std"]), "F1 % fail-open": pct(r["f1"], r["f1_std"]),
                        "paper %": paper_pct("hf_f1_rf") + " (RF)", "precision %": pct(r["precision"]),
                        "recall %": pct(r["recall"]), "FPR %": pct(r["fpr"]), "error %": "n/a (scores every file)",
                        "files": str(int(r["n_train_files"])),
                        "ms/file median": num(float(r["features_ms_median"]) + float(r["inference_ms_median"]), 2),
                        "mode": "in-process", "note": "Table 1, out-of-fold"})
    scanners = read_scanner_metrics(ctx.out_dir, "hf")
    frame = pd.DataFrame([{"method": f"ours:{r['model']}", **r} for r in ours])
    extra = []
    if scanners is None:
        extra.append(missing_note(ctx.out_dir, "hf"))
    else:
        display += scanner_display_rows(scanners, {s: paper_range for s in PAPER_SCANNERS})
        frame = pd.concat([frame, scanners.assign(method=scanners["scanner"])], ignore_index=True)
    if not ours:
        extra.append(f"{main_csv} not found: run experiments/tables/main_comparison.py first.")
    fig = ctx.figures_dir / "scanners_vs_best.png"
    bars = [(str(d["method"]).split(",")[0], d["F1 % fail-closed"], d["F1 % fail-open"]) for d in display]

    def share(text: object) -> float:
        """Turn a table percentage ("12.34 ± 1.0") back into a share, NaN when not a number."""
        try:
            return float(str(text).split()[0]) / 100
        except ValueError:
            return float("nan")

    grouped_bars([b[0] for b in bars], {"F1 fail-closed": [share(b[1]) for b in bars],
                                        "F1 fail-open": [share(b[2]) for b in bars]}, fig,
                 title=f"hf ({ctx.size}): scanners vs our best models",
                 reference={"paper scanners max 62.75 %": 0.6275, "paper scanners min 7.23 %": 0.0723})
    notes = [
        caption(SCRIPT, ctx.command_suffix(), time.perf_counter() - started),
        "",
        f"`hf` ({ctx.size}). Our rows: Table 1's best supervised model per feature set, out-of-fold over the group "
        "k-fold (our exported model is never scored on its own training files). Scanner rows: the scanner "
        "benchmark on hf (see its `files` column: slow scanners may run on a stratified sample, said in its note). "
        f"Paper: SOTA scanners (ModelScan, Fickling, ClamAV, VirusTotal) {paper_range} % F1 on the paper's HF set; "
        "no per-scanner figure is public, so the range stands beside each of those four. ClamAV and VirusTotal "
        "cannot run here (no signature database, no API key): `unavailable`, no figure invented.",
        *(["", *extra] if extra else []),
        *(["", "**Fast presets** (small datasets): a smoke run, not a result."] if ctx.fast else []),
    ]
    files = write_table(ctx.out_dir, "scanners_vs_best", "Table 2 — scanners vs our best model on hf", frame,
                        display, notes, ["![scanners vs best](figures/scanners_vs_best.png)"])
    log_table_run(ctx, "scanners_vs_best", [*files, fig])
    print((ctx.out_dir / "scanners_vs_best.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
