"""The `wild` dataset: a manifest of the real third-party files in the shared corpus, read in place.

Files are never copied and never loaded: labels come from the corpus MANIFEST.csv, hashes from the bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from safepickle_bench import paths
from safepickle_bench.datasets.manifest import MANIFEST_NAME, sha256_file, to_frame, write_manifest

log = logging.getLogger(__name__)
LABELS = {"malicious": 1, "benign": 0}
# Corpus MANIFEST `format` -> our container names.
CONTAINERS = {"torch-zip": "torch_zip", "torch-legacy": "torch_legacy"}


def default_wild_root() -> Path:
    """$SAFEPICKLE_WILD_DIR, else `../shared/corpus/wild` beside the output root (see `paths.wild_dir`)."""
    return paths.wild_dir()


def wild_rows(root: Path) -> pd.DataFrame:
    """Manifest rows for every file listed in `root/MANIFEST.csv` (missing files are skipped and logged)."""
    listing = pd.read_csv(root / "MANIFEST.csv", dtype=str, keep_default_na=False)
    rows, missing, mismatched = [], 0, 0
    for rec in listing.to_dict("records"):
        path = root / rec["file"]
        if not path.is_file():
            missing += 1
            continue
        digest = sha256_file(path)
        if rec.get("sha256") and digest != rec["sha256"]:
            mismatched += 1
            log.warning("wild: sha256 of %s differs from MANIFEST.csv (using the file's)", rec["file"])
        label = LABELS.get(rec["label"].strip().lower())
        if label is None:
            log.warning("wild: unknown label %r for %s: skipped", rec["label"], rec["file"])
            continue
        rows.append({
            "path": rec["file"],
            "sha256": digest,
            "label": label,
            "group": f"wild:{rec['source_repo']}:{Path(rec['file']).name}",
            "producer": rec["source_repo"],
            "kind": "third_party",
            "container": CONTAINERS.get(rec["format"], rec["format"]),
            "payload_family": rec.get("callables", ""),
            "injection": "",
            "evasion_technique": rec.get("technique", ""),
            "loader": "",
            "seed": 0,
            "oracle_event": "",
        })
    if missing:
        log.warning("wild: %d files listed in MANIFEST.csv are missing under %s", missing, root)
    return to_frame(rows)


def build_wild(out_dir: Path, root: Path | None = None) -> Path:
    """Write `out_dir/manifest.parquet` for the wild corpus at `root`; paths stay relative to that root."""
    root = Path(root or default_wild_root()).resolve()
    if not (root / "MANIFEST.csv").is_file():
        raise FileNotFoundError(f"wild corpus not found: {root}/MANIFEST.csv (set dataset.root or SAFEPICKLE_WILD_DIR)")
    frame = wild_rows(root)
    return write_manifest(frame, out_dir / MANIFEST_NAME, {"root": str(root), "dataset": "wild"})
