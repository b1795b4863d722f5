"""The `hf_hub` dataset: third-party files fetched from the Hugging Face Hub listed in a user's manifest.

A user lists files as CSV or parquet with the columns `repo_id, filename, revision, label` (label
`malicious`/`benign` or 1/0; optional `producer`, `notes`, `repo_type`). Each file is fetched with the real
`huggingface_hub.hf_hub_download` into a Hugging Face cache inside the dataset folder (by default
`data/hf_hub/<size>/hf_cache`, so manifest paths stay relative), hashed and described from its bytes.

Files are never loaded and never run through the label oracle: labels come from the user's manifest. A file
that cannot be fetched (unknown repo or file, gated repo, no network, not in the cache when offline) is
recorded in `build_log.json` and left out of the manifest, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from safepickle_bench.datasets.manifest import (
    MANIFEST_NAME,
    ManifestError,
    sha256_file,
    to_frame,
    write_manifest,
)

log = logging.getLogger(__name__)

MANIFEST_ENV = "SAFEPICKLE_HF_HUB_MANIFEST"
"""Environment variable naming the source list when a build is started without `dataset.manifest`."""
REQUIRED_COLUMNS: tuple[str, ...] = ("repo_id", "filename", "revision", "label")
OPTIONAL_COLUMNS: tuple[str, ...] = ("producer", "notes", "repo_type")
LABELS: dict[str, int] = {"malicious": 1, "benign": 0, "1": 1, "0": 0, "1.0": 1, "0.0": 0}
DEFAULT_PRODUCER = "huggingface_hub"
DEFAULT_REVISION = "main"
REPO_TYPES = ("model", "dataset", "space")
_HEAD = 1 << 20
_SHARD = re.compile(r"-\d{5}-of-\d{5}\.")
_KIND_BY_STEM: tuple[tuple[str, str], ...] = (
    ("training_args", "training_args"),
    ("optimizer", "optimizer_state"),
    ("scheduler", "scheduler_state"),
    ("rng_state", "rng_state"),
)
_KIND_BY_SUFFIX: dict[str, str] = {
    ".ckpt": "checkpoint",
    ".joblib": "estimator",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".npy": "object_array",
    ".npz": "object_arrays",
    ".safetensors": "safetensors",
    ".h5": "keras",
    ".keras": "keras",
    ".onnx": "onnx",
    ".gguf": "gguf",
}


@dataclass(frozen=True)
class HubSource:
    """One file a user listed: where it lives on the Hub, its label and optional provenance notes."""

    line: int
    repo_id: str
    filename: str
    revision: str
    label: int
    producer: str = DEFAULT_PRODUCER
    notes: str = ""
    repo_type: str = "model"


@dataclass(frozen=True)
class HubOptions:
    """How files are fetched: offline (cache only), cache folder, Hub endpoint and HEAD-request timeout."""

    offline: bool = False
    cache_dir: Path | None = None
    endpoint: str | None = None
    etag_timeout: float = 10.0


# ---------------------------------------------------------------- the user's list
def _read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or parquet list as strings (missing values become empty strings)."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame = pd.read_parquet(path)
        return frame.astype(object).where(frame.notna(), "").astype(str)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def parse_label(value: object) -> int | None:
    """Map a user label (`malicious`/`benign`/1/0, any case) to 1/0, or None when it is not one of them."""
    return LABELS.get(str(value).strip().lower())


def _check_filename(filename: str) -> str | None:
    """Why a Hub filename cannot be fetched safely (absolute, `..`, empty), or None when it is fine."""
    if not filename:
        return "empty filename"
    pure = PurePosixPath(filename)
    if pure.is_absolute() or ".." in pure.parts or "\\" in filename:
        return f"filename {filename!r} must be a relative path inside the repository"
    return None


def _row_problem(rec: dict[str, str], label: int | None, repo_type: str) -> str | None:
    """Why a listed row cannot be fetched (empty repo_id, unsafe filename, bad label or repo_type), or None."""
    if not rec["repo_id"]:
        return "empty repo_id"
    if label is None:
        return f"label {rec['label']!r} is not malicious/benign/1/0"
    if repo_type not in REPO_TYPES:
        return f"repo_type {repo_type!r} is not one of {REPO_TYPES}"
    return _check_filename(rec["filename"])


def read_sources(path: Path) -> tuple[list[HubSource], list[dict[str, Any]]]:
    """Read the user's list; return (valid sources, rejected rows with the reason). Bad columns raise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"hf_hub source list not found: {path}")
    table = _read_table(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {missing}; need {list(REQUIRED_COLUMNS)} "
            f"(optional: {list(OPTIONAL_COLUMNS)})"
        )
    sources: list[HubSource] = []
    rejected: list[dict[str, Any]] = []
    for line, rec in enumerate(table.to_dict("records"), start=2):  # line 1 is the CSV header
        rec = {k: str(v).strip() for k, v in rec.items()}
        label = parse_label(rec["label"])
        repo_type = rec.get("repo_type") or "model"
        problem = _row_problem(rec, label, repo_type)
        if problem or label is None:
            rejected.append(
                {
                    "line": line,
                    "repo_id": rec["repo_id"],
                    "filename": rec["filename"],
                    "revision": rec["revision"],
                    "error_kind": "invalid_row",
                    "error": problem,
                }
            )
            continue
        sources.append(
            HubSource(
                line=line,
                repo_id=rec["repo_id"],
                filename=rec["filename"],
                revision=rec["revision"] or DEFAULT_REVISION,
                label=label,
                producer=rec.get("producer") or DEFAULT_PRODUCER,
                notes=rec.get("notes", ""),
                repo_type=repo_type,
            )
        )
    return sources, rejected


# ---------------------------------------------------------------- fetching
def download(source: HubSource, cache_dir: Path, options: HubOptions) -> Path:
    """Fetch one listed file with `huggingface_hub.hf_hub_download` into `cache_dir`; return its cache path."""
    from huggingface_hub import hf_hub_download

    local = hf_hub_download(
        source.repo_id,
        source.filename,
        repo_type=source.repo_type,
        revision=source.revision,
        cache_dir=str(cache_dir),
        local_files_only=options.offline,
        endpoint=options.endpoint,
        etag_timeout=options.etag_timeout,
        library_name="safepickle_bench",
    )
    return Path(local)


def hub_reachable(endpoint: str | None, timeout: float) -> bool:
    """Whether the Hub endpoint answers one HEAD request (any HTTP status) within `timeout` seconds.

    Checked once before fetching: huggingface_hub retries a failed request for about 20 s, so with the
    network down every listed file would wait that long before falling back to the cache.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(endpoint or constants.ENDPOINT, timeout=timeout, allow_redirects=False)
    except Exception as exc:  # refused, DNS failure, timeout, HF_HUB_OFFLINE: all mean "cache only"
        log.warning(
            "hf_hub: cannot reach %s (%s): fetching from the local cache only", endpoint or "the Hub", exc
        )
        return False
    return True


def classify_error(exc: BaseException, offline: bool) -> str:
    """Name why a fetch failed: gated, repo/revision/file not found, not cached, offline, http_<code>..."""
    from huggingface_hub import errors

    ordered: tuple[tuple[type[BaseException], str], ...] = (
        (errors.GatedRepoError, "gated_repo"),
        (errors.DisabledRepoError, "disabled_repo"),
        (errors.RepositoryNotFoundError, "repo_not_found"),
        (errors.RevisionNotFoundError, "revision_not_found"),
        (errors.LocalEntryNotFoundError, "not_in_local_cache" if offline else "unreachable_and_not_cached"),
        (errors.EntryNotFoundError, "file_not_found"),
        (errors.OfflineModeIsEnabled, "offline"),
    )
    for kind, name in ordered:
        if isinstance(exc, kind):
            return name
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"http_{status}" if status else "http_error"
    if isinstance(exc, errors.HFValidationError | ValueError):
        return "invalid_request"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "network"
    if isinstance(exc, OSError):
        return "os_error"
    return type(exc).__name__


# ---------------------------------------------------------------- describing a fetched file (bytes only)
def infer_kind(filename: str) -> str:
    """Guess what a Hub file holds from its name (state_dict, optimizer_state, checkpoint, estimator...)."""
    name = PurePosixPath(filename).name.lower()
    stem = name.split(".")[0]
    for prefix, kind in _KIND_BY_STEM:
        if stem.startswith(prefix):
            return kind
    suffix = PurePosixPath(name).suffix
    if suffix in {".bin", ".pt", ".pth"}:
        return "state_dict_shard" if _SHARD.search(name) else "state_dict"
    return _KIND_BY_SUFFIX.get(suffix, "third_party")


def sniff_container(path: Path) -> str:
    """Name a file's container from its content: zip layouts by entry names, the rest by magic bytes."""
    from safepickle_bench.craft.injection import detect_container

    with open(path, "rb") as handle:
        head = handle.read(_HEAD)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:  # reads the central directory only
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "zip"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "torch_zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        return "zip"
    container = detect_container(head)
    if container == "unknown" and len(head) > 9 and head[8:9] == b"{":
        return "safetensors"  # 8-byte little-endian header length, then a JSON header
    return container


def _commit_of(local: Path) -> str:
    """The snapshot commit hash in a cache path (`.../snapshots/<commit>/<filename>`), or ''."""
    parts = local.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else ""


# ---------------------------------------------------------------- the build
def default_manifest() -> Path | None:
    """The source list named by $SAFEPICKLE_HF_HUB_MANIFEST, if set."""
    env = os.environ.get(MANIFEST_ENV)
    return Path(env) if env else None


def _failure(source: HubSource, kind: str, error: str) -> dict[str, Any]:
    return {
        "line": source.line,
        "repo_id": source.repo_id,
        "filename": source.filename,
        "revision": source.revision,
        "error_kind": kind,
        "error": error[:500],
    }


def build_hf_hub(
    out_dir: Path,
    manifest: Path | None = None,
    *,
    offline: bool = False,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    etag_timeout: float = 10.0,
    seed: int = 0,
) -> Path:
    """Fetch every listed file, write `out_dir/manifest.parquet` and `build_log.json`; return the manifest path."""
    manifest = Path(manifest) if manifest else default_manifest()
    if manifest is None:
        raise FileNotFoundError(
            "dataset hf_hub needs a source list: `task=build_data dataset=hf_hub dataset.manifest=/path/list.csv` "
            f"(columns {', '.join(REQUIRED_COLUMNS)}) or set ${MANIFEST_ENV}"
        )
    out_dir = Path(out_dir).absolute()
    cache = Path(cache_dir).absolute() if cache_dir else out_dir / "hf_cache"
    inside = cache.is_relative_to(out_dir)
    base = out_dir if inside else cache  # manifest paths are relative to `base`
    started = time.perf_counter()
    sources, failures = read_sources(manifest)
    reachable = None if offline or not sources else hub_reachable(endpoint, etag_timeout)
    offline = offline or reachable is False
    options = HubOptions(offline=offline, cache_dir=cache, endpoint=endpoint, etag_timeout=etag_timeout)
    cache.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    duplicates: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for source in tqdm(sources, desc="hf_hub: fetch", unit="file"):
        try:
            local = download(source, cache, options)
            if not local.is_file():
                raise FileNotFoundError(f"{local} is not a readable file (broken cache link?)")
            digest, size = sha256_file(local), local.stat().st_size
            container = sniff_container(local)
        except Exception as exc:  # any per-file failure is recorded, never fatal
            kind = classify_error(exc, offline)
            failures.append(_failure(source, kind, f"{type(exc).__name__}: {exc}"))
            log.warning(
                "hf_hub: %s/%s@%s not fetched (%s): %s",
                source.repo_id,
                source.filename,
                source.revision,
                kind,
                exc,
            )
            continue
        rel = Path(os.path.relpath(local, base)).as_posix()
        record = {
            **asdict(source),
            "commit": _commit_of(local),
            "path": rel,
            "sha256": digest,
            "size": size,
            "container": container,
        }
        if digest in seen:
            first = seen[digest]
            duplicates.append(
                {**record, "duplicate_of": first["path"], "label_conflict": first["label"] != source.label}
            )
            continue
        seen[digest] = record
        files.append(record)
        rows.append(
            {
                "path": rel,
                "sha256": digest,
                "label": source.label,
                "group": source.repo_id,
                "producer": source.producer,
                "kind": infer_kind(source.filename),
                "container": container,
                "payload_family": "",
                "injection": "",
                "evasion_technique": "",
                "loader": "",
                "seed": seed,
                "oracle_event": "",
            }
        )
    conflicts = {d["sha256"] for d in duplicates if d["label_conflict"]}
    if conflicts:  # the same bytes listed as both benign and malicious: keep neither
        log.warning("hf_hub: %d files listed with contradicting labels were left out", len(conflicts))
        rows = [r for r in rows if r["sha256"] not in conflicts]
        files = [f for f in files if f["sha256"] not in conflicts]
    frame = to_frame(rows)
    meta: dict[str, Any] = {"dataset": "hf_hub", "source_list": str(manifest.absolute()), "seed": seed}
    if not inside:
        meta["root"] = str(cache)
    from huggingface_hub import __version__ as hub_version
    from huggingface_hub import constants

    build_log = {
        "dataset": "hf_hub",
        "source_list": str(manifest.absolute()),
        "cache_dir": str(cache),
        "offline": bool(offline or constants.HF_HUB_OFFLINE),
        "hub_reachable": reachable,
        "endpoint": endpoint or constants.ENDPOINT,
        "huggingface_hub": hub_version,
        "seconds": {"total": time.perf_counter() - started},
        "counts": {
            "listed": len(sources) + sum(f["error_kind"] == "invalid_row" for f in failures),
            "kept": len(frame),
            "benign": int((frame.label == 0).sum()),
            "malicious": int((frame.label == 1).sum()),
            "failed": len(failures),
            "duplicates": len(duplicates),
            "label_conflicts": len(conflicts),
        },
        "files": files,
        "failures": failures,
        "duplicates": duplicates,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(frame, out_dir / MANIFEST_NAME, meta)
    (out_dir / "build_log.json").write_text(json.dumps(build_log, indent=2, sort_keys=True, default=str))
    if failures:
        log.warning(
            "hf_hub: %d of %d listed files not fetched (see %s)",
            len(failures),
            build_log["counts"]["listed"],
            out_dir / "build_log.json",
        )
    log.info("hf_hub built in %.1fs: %s", build_log["seconds"]["total"], build_log["counts"])
    return out_dir / MANIFEST_NAME


def build_from_config(cfg: Any) -> Path:
    """Hydra entry for `task=build_data dataset=hf_hub`: fetch cfg.dataset.manifest under cfg.paths.data_dir."""
    dataset = cfg.dataset
    size = str(dataset.get("size", "full"))
    manifest, cache_dir = dataset.get("manifest"), dataset.get("cache_dir")
    return build_hf_hub(
        Path(str(cfg.paths.data_dir)) / "hf_hub" / size,
        Path(str(manifest)) if manifest else None,
        offline=bool(dataset.get("offline", False)),
        cache_dir=Path(str(cache_dir)) if cache_dir else None,
        endpoint=str(dataset.endpoint) if dataset.get("endpoint") else None,
        etag_timeout=float(dataset.get("etag_timeout", 10.0)),
        seed=int(dataset.get("seed", 0)),
    )
