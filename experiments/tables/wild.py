"""Table 7: real-world check — train on `hf`, test on `wild` (third-party files read in place, never loaded).

    python experiments/tables/wild.py [--small] [--models rf,catboost] [--out results]

Writes results/wild.{md,csv}. Scanner rows come from results/scanners/wild/ (never re-run here). `wild` exists
at one size only (the shared corpus), so --small changes only the training set.
"""

from __future__ import annotations

from safepickle_bench.pipeline.transfer import TransferTable, transfer_table_main

SPEC = TransferTable(
    dataset="wild",
    experiment="rf_wild",
    stem="wild",
    title="Table 7 — real-world check: train on hf, test on wild",
    script="experiments/tables/wild.py",
    description=(
        "`wild` is the shared corpus of third-party files (scanner projects' test samples: picklescan, modelaudit, "
        "modelscan), read in place and never unpickled; labels from its MANIFEST.csv. Many of its malicious files "
        "use gadgets and tricks our generator never produced, so this is the honest out-of-sample check. The paper "
        "has no such experiment: paper column n/a."
    ),
)

if __name__ == "__main__":
    raise SystemExit(transfer_table_main(SPEC, doc=__doc__))
