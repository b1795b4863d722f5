"""Table 3: out of distribution — train on `hf`, test on `pickleball_ood`; scanners and the policy loader on the
same files.

    python experiments/tables/ood.py [--small] [--models rf,catboost] [--out results]

Writes results/ood.{md,csv}. Scanner rows come from the scanner benchmark (results/scanners/pickleball_ood/),
never re-run here. Paper: SafePickle 81.22 % F1 on the PickleBall data, PickleBall's loader 76.09 %.
"""

from __future__ import annotations

from safepickle_bench.pipeline.transfer import TransferTable, transfer_table_main
from safepickle_bench.reporting.paper import PAPER_OOD_SCANNER, paper_pct

SPEC = TransferTable(
    dataset="pickleball_ood",
    experiment="rf_pickleball_ood",
    stem="ood",
    title="Table 3 — out of distribution: train on hf, test on pickleball_ood",
    script="experiments/tables/ood.py",
    description=(
        "`pickleball_ood` is our re-creation of the PickleBall data's shape (models saved by libraries PickleBall "
        "covers: ultralytics, flair, gliner, pyannote, sentence-transformers, ...; producers never seen in `hf`), "
        "not PickleBall's Zenodo files (not downloadable here). Paper: SafePickle "
        f"{paper_pct('ood_f1')} % F1 on PickleBall's data (RandomForest, opcode features), PickleBall's own loader "
        f"{paper_pct('ood_pickleball_f1')} %. The `policy_loader` row is OUR re-implementation of PickleBall's "
        "idea (allow-lists learned from hf's benign files), not PickleBall; the scanners' paper column is "
        "PickleBall's Table 2 on its own data."
    ),
    paper_rf_opcodes=paper_pct("ood_f1"),
    paper_scanners={s: paper_pct(k) for s, k in PAPER_OOD_SCANNER.items()},
)

if __name__ == "__main__":
    raise SystemExit(transfer_table_main(SPEC, doc=__doc__))
