"""Hugging Face inputs of `scan`/`analyze`: `hf://` repository references and the local Hub cache.

The cache has the layout `huggingface_hub` writes: `<cache>/models--owner--name/snapshots/<commit>/<file>`
(each file a symlink into `blobs/`), `datasets--...` and `spaces--...` beside it. Every cached snapshot of
every repository is listed, so each version a loader could read is scanned. A `hf://owner/name[@revision]`
reference is resolved with `huggingface_hub.snapshot_download` (imported only then) into the usual cache;
offline (`HF_HUB_OFFLINE=1`, or `local_files_only=True`) it is answered from the cache alone. Files whose
name marks a large non-pickle format (safetensors, GGUF, ONNX, images...) are not downloaded; everything
else is, and discovery then sniffs each file by its content.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

HF_SCHEME = "hf://"
REPO_TYPES: dict[str, str] = {"models": "model", "datasets": "dataset", "spaces": "space"}
"""Cache folder prefix (`models--...`) -> huggingface_hub repo type."""
NOT_DOWNLOADED: tuple[str, ...] = (
    "*.safetensors", "*.gguf", "*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*.tflite", "*.ot",
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.webp", "*.mp3", "*.mp4", "*.wav", "*.flac", "*.parquet",
    "*.arrow",
)
"""Formats that hold no pickle and are often large: an `hf://` scan does not download them."""
_REF = re.compile(r"^(?:(?P<kind>models|datasets|spaces)/)?(?P<repo>[^/@]+(?:/[^/@]+)?)(?:@(?P<rev>[^/]+))?"
                  r"(?:/(?P<sub>.+))?$")


@dataclass(frozen=True, slots=True)
class HubRef:
    """A repository on the Hub: type, `owner/name`, revision (None: the default branch), optional subpath."""

    repo_type: str
    repo_id: str
    revision: str | None = None
    subpath: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One revision of a repository on disk: its folder and the display prefix of its files."""

    folder: Path
    prefix: str
    """`hf://[datasets/]owner/name@<commit>`; a file shows as `<prefix>/<path in the repo>`."""
    subpath: str = ""
    """Only this file or folder of the snapshot (empty: all of it)."""


def is_hub_ref(text: str) -> bool:
    """Return True when `text` is an `hf://` reference."""
    return text.startswith(HF_SCHEME)


def parse_hub_ref(text: str) -> HubRef:
    """Parse `hf://[datasets/|spaces/]owner/name[@revision][/path]`; raise ValueError on anything else."""
    m = _REF.match(text[len(HF_SCHEME):]) if is_hub_ref(text) else None
    if m is None or ".." in (m["sub"] or "").split("/"):
        raise ValueError(f"not a Hugging Face reference hf://[datasets/]owner/name[@revision][/path]: {text!r}")
    kind = REPO_TYPES[m["kind"]] if m["kind"] else "model"
    rev = unquote(m["rev"]) if m["rev"] else None  # `refs%2Fpr%2F1` names a pull-request ref
    return HubRef(kind, m["repo"], rev, (m["sub"] or "").strip("/"))


def display_prefix(repo_type: str, repo_id: str, commit: str) -> str:
    """Return `hf://owner/name@commit` (models) or `hf://datasets/owner/name@commit`."""
    kind = "" if repo_type == "model" else f"{repo_type}s/"
    return f"{HF_SCHEME}{kind}{repo_id}@{commit}"


def default_cache_dir() -> Path:
    """Return the Hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_snapshots(cache_dir: Path) -> Iterator[Snapshot]:
    """Yield every snapshot of every repository in a Hub cache, sorted by repository then commit."""
    try:
        repos = sorted(p for p in Path(cache_dir).iterdir() if p.is_dir())
    except OSError:
        return
    for repo in repos:
        kind, sep, rest = repo.name.partition("--")
        if not sep or kind not in REPO_TYPES or not rest:
            continue  # `.locks`, `blobs` of a stray folder, anything huggingface_hub did not write
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        repo_id = rest.replace("--", "/")
        for commit in sorted(p for p in snapshots.iterdir() if p.is_dir() and not p.is_symlink()):
            yield Snapshot(commit, display_prefix(REPO_TYPES[kind], repo_id, commit.name))


def fetch(ref: HubRef, *, cache_dir: Path | None = None, local_files_only: bool | None = None) -> Snapshot:
    """Download (or find in the cache) the pickle-bearing files of `ref`; return the snapshot on disk."""
    from huggingface_hub import snapshot_download

    patterns = [ref.subpath, f"{ref.subpath}/**"] if ref.subpath else None
    kwargs: dict[str, object] = {}
    if local_files_only is not None:
        kwargs["local_files_only"] = local_files_only
    folder = Path(
        snapshot_download(
            ref.repo_id,
            repo_type=ref.repo_type,
            revision=ref.revision,
            cache_dir=cache_dir,
            allow_patterns=patterns,
            ignore_patterns=list(NOT_DOWNLOADED),
            **kwargs,
        )
    )
    return Snapshot(folder, display_prefix(ref.repo_type, ref.repo_id, folder.name), ref.subpath)
