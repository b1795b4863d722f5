"""Table 5: joblib — train on `hf`, test on the synthetic `joblib` set (every compressor); scanners beside.

    python experiments/tables/joblib_table.py [--small] [--models rf,catboost] [--out results]

Writes results/joblib.{md,csv}. Scanner rows come from results/scanners/joblib/ (never re-run here). The paper
uses synthetic joblib files too but publishes no joblib figure: its column is n/a.
"""

from __future__ import annotations

from safepickle_bench.pipeline.transfer import TransferTable, transfer_table_main

SPEC = TransferTable(
    dataset="joblib",
    experiment="rf_joblib",
    stem="joblib",
    title="Table 5 — joblib: train on hf, test on joblib",
    script="experiments/tables/joblib_table.py",
    description=(
        "`joblib` holds `joblib.dump` files of sklearn/xgboost/lightgbm/catboost estimators and numpy dicts under "
        "every joblib compressor (zlib, gzip, bz2, lzma, xz, lz4) and uncompressed; malicious ones carry an inert "
        "payload (prepended, appended, nested or between the arrays). The paper evaluates synthetic joblib files "
        "but publishes no figure for them: paper column n/a."
    ),
)

if __name__ == "__main__":
    raise SystemExit(transfer_table_main(SPEC, doc=__doc__))
