"""The real PickleBall artifact (Zenodo record 16974645) as a dataset, when a user has downloaded it.

Expected layout under `root` (benign models per library, malicious models in one archive or folder):

    root/<library>/<model>/...files...     benign (any folder except `malicious`)
    root/malicious.tar.gz                  malicious models (extracted into the dataset folder), or
    root/malicious/...files...             the same, already extracted

Only pickle-based model files are listed (by extension, confirmed by magic bytes). Files are never loaded:
labels come from where the artifact puts them; nothing is copied except the extracted malicious archive.
"""

from __future__ import annotations

import logging
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

from safepickle_bench import paths
from safepickle_bench.datasets.manifest import MANIFEST_NAME, sha256_file, to_frame, write_manifest

log = logging.getLogger(__name__)
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".model", ".pb"}
_MAGIC = (b"PK\x03\x04", b"\x80", b"\x93NUMPY", b"7z\xbc\xaf")


def default_pickleball_root() -> Path:
    """$SAFEPICKLE_PICKLEBALL_DIR, else `../shared/pickleball` beside the output root (see `paths.pickleball_dir`)."""
    return paths.pickleball_dir()


def _is_pickle_model(path: Path) -> bool:
    if path.suffix.lower() not in PICKLE_SUFFIXES or not path.is_file():
        return False
    with open(path, "rb") as handle:
        head = handle.read(8)
    return head.startswith(_MAGIC)


def _container(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PK\x03\x04"):
        return "npz" if path.suffix == ".npz" else "torch_zip"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"7z"):
        return "7z"
    return "torch_legacy" if path.suffix in {".bin", ".pt", ".pth", ".ckpt"} else "pickle"


def _extract_malicious(archive: Path, dest: Path) -> Path:
    """Extract `malicious.tar.gz` into dest (tar 'data' filter: no absolute paths, links or devices)."""
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".partial")
        tmp.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tmp.rename(dest)
    return dest


def _rows(folder: Path, base: Path, label: int, library_of: Callable[[Path], str]) -> list[dict]:
    rows = []
    for path in sorted(folder.rglob("*")):
        if not _is_pickle_model(path):
            continue
        rel = Path(os.path.relpath(path, base)).as_posix()
        library = library_of(path)
        rows.append({
            "path": rel, "sha256": sha256_file(path), "label": label,
            "group": f"pickleball:{library}:{path.parent.relative_to(folder).as_posix()}",
            "producer": library, "kind": "third_party", "container": _container(path), "payload_family": "",
            "injection": "", "evasion_technique": "", "loader": "", "seed": 0, "oracle_event": "",
        })
    return rows


def build_pickleball(out_dir: Path, root: Path | None = None) -> Path:
    """Write `out_dir/manifest.parquet` for a downloaded PickleBall artifact at `root` and return its path."""
    root = Path(root or default_pickleball_root()).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"PickleBall artifact not found at {root} (download Zenodo 16974645; set dataset.root)")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for library_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "malicious"):
        rows += _rows(library_dir, out_dir, 0, lambda _p, name=library_dir.name: name)
    malicious_dir = root / "malicious"
    if not malicious_dir.is_dir() and (root / "malicious.tar.gz").is_file():
        malicious_dir = _extract_malicious(root / "malicious.tar.gz", out_dir / "files" / "malicious")
    inner = list(malicious_dir.iterdir()) if malicious_dir.is_dir() else []
    if len(inner) == 1 and inner[0].is_dir() and inner[0].name == "malicious":  # archive with a top folder
        malicious_dir = inner[0]
    if malicious_dir.is_dir():
        rows += _rows(malicious_dir, out_dir, 1, lambda p: p.relative_to(malicious_dir).parts[0])
    else:
        log.warning("PickleBall: no malicious.tar.gz or malicious/ under %s", root)
    frame = to_frame(rows)
    return write_manifest(frame, out_dir / MANIFEST_NAME, {"dataset": "pickleball", "artifact_root": str(root)})
