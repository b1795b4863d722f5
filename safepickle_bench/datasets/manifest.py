"""The dataset manifest: schema, parquet read/write and validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST_NAME = "manifest.parquet"
COLUMNS: dict[str, str] = {
    "path": "string",
    "sha256": "string",
    "label": "int64",
    "group": "string",
    "producer": "string",
    "kind": "string",
    "container": "string",
    "payload_family": "string",
    "injection": "string",
    "evasion_technique": "string",
    "loader": "string",
    "seed": "int64",
    "oracle_event": "string",
}
OPTIONAL_COLUMNS: dict[str, str] = {
    "namespace": "string",
    "gadget": "string",
    "opcode_route": "string",
    "find_class": "string",
}
"""Columns only the generalisation samples fill (name namespace train/validation/test, the generated gadget,
the opcode route that reaches it, the loader's find_class events as JSON). A manifest holds them, after the
schema's columns, only when one of its rows has one, so other datasets' manifests are unchanged."""
_META_KEY = b"safepickle_bench"


class ManifestError(ValueError):
    """A manifest that does not follow the schema."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes (read only, never parsed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Turn manifest rows into a DataFrame with exactly the schema's columns, order and dtypes (plus the
    optional columns some row has)."""
    optional = {c: t for c, t in OPTIONAL_COLUMNS.items() if any(c in r for r in rows)}
    schema = {**COLUMNS, **optional}
    frame = pd.DataFrame(rows, columns=list(schema))
    for column, dtype in schema.items():
        if dtype == "string":
            frame[column] = frame[column].fillna("").astype(str)
        else:
            frame[column] = frame[column].astype(dtype)
    return frame.sort_values("path", kind="stable").reset_index(drop=True)


def validate(frame: pd.DataFrame) -> None:
    """Raise ManifestError unless the frame has the exact columns, 0/1 labels, unique paths and sha256s."""
    if list(frame.columns[: len(COLUMNS)]) != list(COLUMNS):
        raise ManifestError(f"manifest columns {list(frame.columns)} != {list(COLUMNS)}")
    if not frame["label"].isin([0, 1]).all():
        raise ManifestError("labels must be 0 (benign) or 1 (malicious)")
    if frame["path"].duplicated().any():
        raise ManifestError(f"duplicate paths: {frame.loc[frame['path'].duplicated(), 'path'].tolist()[:5]}")
    if not frame["sha256"].str.fullmatch(r"[0-9a-f]{64}").all():
        raise ManifestError("every sha256 must be 64 lowercase hex digits")
    if (frame["group"] == "").any():
        raise ManifestError("every row needs a split group")


def write_manifest(frame: pd.DataFrame, path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """Validate and write the manifest parquet (with optional JSON metadata, e.g. the wild corpus root)."""
    validate(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps(metadata or {}, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(path)
    return path


def load_manifest(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and validate a manifest parquet; return (frame, metadata)."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_META_KEY, b"{}")
    frame = table.to_pandas()
    validate(frame)
    return frame, json.loads(raw)
