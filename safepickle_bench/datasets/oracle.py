"""The label oracle: load OUR generated, inert samples with their real loader behind a blocking audit hook.

This is the only module that loads pickles, and only files this project generated (never third-party
files). Each load runs in a throwaway `python -I` subprocess (temp HOME and cwd) that pre-imports the
loader's libraries, arms `sandbox.audit`'s hook, and loads the file; the hook records the first dangerous
event and raises, so the action never happens. The event list and the exec/compile rule are documented in
`safepickle_bench/sandbox/audit.py`.

Label rule: malicious iff a dangerous event is reached; benign iff the load completes with none.

Samples that need a throwaway package (generated gadgets, user classes) carry a sidecar
`<file>.syspath.json` (`sandbox.sidecar`); every loader honours it: the child puts its folders on sys.path
before arming the hook and forgets them after the file. `discard_sample` removes a file together with its
sidecar and package folders.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safepickle_bench.sandbox.runner import run_sandboxed
from safepickle_bench.sandbox.sidecar import SIDECAR_SUFFIX, read_sidecar, sidecar_path
from safepickle_bench.sandbox.spec import LoaderSpec, pass_path

LOADERS: tuple[str, ...] = ("pickle", "pickle_multi", "torch", "joblib", "numpy", "7z_pickle", "zip_pickle", "dill",
                            "pickle_syspath", "torch_syspath")
"""Loaders the oracle can run (each honours a sidecar, see above):

- `pickle`: `pickle.load(f)` once (the C unpickler).
- `pickle_multi`: `pickle.load(f)` repeatedly until the end of the file (loaders that read several streams).
- `torch`: `torch.load(path, weights_only=False, map_location="cpu")`.
- `joblib`: `joblib.load(path)` (any compression).
- `numpy`: `numpy.load(path, allow_pickle=True)`; for `.npz` every key is read.
- `7z_pickle`: extract a 7z archive with py7zr, then `pickle` the first `data.pkl` (else first `*.pkl`) with a
  persistent_load that returns the persistent id (nullifAI-style loader of a 7z-packed torch archive).
- `dill`: `dill.load(f)` (dill pickles refer to names only dill registers, e.g. `__builtin__`).
- `zip_pickle`: open with `zipfile` (which tolerates prepended bytes) and load the first `data.pkl` the same way.
- `pickle_syspath`, `torch_syspath`: `pickle` and `torch` under the names the user-class carriers record
  (their sidecar is honoured like any other file's).
"""


ORACLE_ENV: dict[str, str] = {"BROWSER": "echo"}
"""Extra environment of the oracle's child: a registered browser command (as on a desktop; `echo` here),
without which `webbrowser.open` finds no browser and returns False before reaching its audit event."""


@dataclass
class OracleResult:
    """What the oracle saw when it loaded one file."""

    path: str
    loader: str
    event: str
    """First dangerous event label (see `sandbox.audit.DANGEROUS_LABELS`), "" when none."""
    loaded: bool
    """The loader returned normally (always False when an event was blocked, since blocking raises)."""
    error: str | None
    detail: str = ""
    seconds: float = 0.0
    find_class: tuple[tuple[str, str], ...] = ()
    """(module, name) of every `pickle.find_class` audit event of the load, in order, up to the blocked event."""

    @property
    def label(self) -> int | None:
        """Return 1 (malicious: event reached), 0 (benign: loaded, no event) or None (undecided)."""
        if self.event:
            return 1
        return 0 if self.loaded else None


class _PidUnpickler(pickle.Unpickler):
    """Unpickler whose persistent ids load as themselves (for data.pkl outside torch)."""

    def persistent_load(self, pid: Any) -> Any:
        """Return the persistent id unchanged."""
        return pid


def _load_pickle(path: str) -> Any:
    """Load one pickle stream from a file."""
    with open(path, "rb") as f:
        return pickle.load(f)


def _load_pickle_multi(path: str) -> list[Any]:
    """Load pickle streams one after another until the end of the file."""
    out = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while f.tell() < size:
            out.append(pickle.load(f))
    return out


def _load_dill(path: str) -> Any:
    """Load one stream with dill.load."""
    import dill

    with open(path, "rb") as f:
        return dill.load(f)


def _load_torch(path: str) -> Any:
    """Load with torch.load(weights_only=False) on CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _load_joblib(path: str) -> Any:
    """Load with joblib.load."""
    import joblib

    return joblib.load(path)


def _load_numpy(path: str) -> Any:
    """Load with numpy.load(allow_pickle=True), reading every member of an npz."""
    import numpy as np

    result = np.load(path, allow_pickle=True)
    if hasattr(result, "files"):
        try:
            return {key: result[key] for key in result.files}
        finally:
            result.close()
    return result


def _pick_pickle_member(names: Sequence[str]) -> str:
    """Return the archive member a data.pkl loader would read."""
    for name in names:
        if name.endswith("data.pkl"):
            return name
    for name in names:
        if name.endswith(".pkl"):
            return name
    raise FileNotFoundError("archive holds no data.pkl or .pkl member")


def _prepare_7z(path: str) -> bytes:
    """Extract a 7z archive (unarmed) and return its data.pkl bytes."""
    import py7zr

    with tempfile.TemporaryDirectory() as tmp, py7zr.SevenZipFile(path, "r") as archive:
        member = _pick_pickle_member(archive.getnames())
        archive.extract(path=tmp, targets=[member])
        return (Path(tmp) / member).read_bytes()


def _prepare_zip(path: str) -> bytes:
    """Read the data.pkl member of a zip archive (unarmed)."""
    with zipfile.ZipFile(path) as archive:
        return archive.read(_pick_pickle_member(archive.namelist()))


def _load_pickle_bytes(data: bytes) -> Any:
    """Unpickle bytes with persistent ids passed through."""
    return _PidUnpickler(io.BytesIO(data)).load()


SANDBOX_LOADERS: dict[str, LoaderSpec] = {
    "pickle": LoaderSpec(load=_load_pickle, prepare=pass_path, preimport=("numpy",)),
    "pickle_multi": LoaderSpec(load=_load_pickle_multi, prepare=pass_path, preimport=("numpy",)),
    "torch": LoaderSpec(load=_load_torch, prepare=pass_path, preimport=("torch",)),
    "joblib": LoaderSpec(load=_load_joblib, prepare=pass_path, preimport=("numpy", "joblib")),
    "numpy": LoaderSpec(load=_load_numpy, prepare=pass_path, preimport=("numpy",)),
    "7z_pickle": LoaderSpec(load=_load_pickle_bytes, prepare=_prepare_7z, preimport=("py7zr",)),
    "zip_pickle": LoaderSpec(load=_load_pickle_bytes, prepare=_prepare_zip),
    "dill": LoaderSpec(load=_load_dill, prepare=pass_path, preimport=("numpy", "dill")),
    "pickle_syspath": LoaderSpec(load=_load_pickle, prepare=pass_path, preimport=("numpy",)),
    "torch_syspath": LoaderSpec(load=_load_torch, prepare=pass_path, preimport=("torch",)),
}
assert set(SANDBOX_LOADERS) == set(LOADERS)


def confirm(
    items: Sequence[tuple[Path, str]],
    *,
    timeout: float = 60.0,
    batch_size: int = 200,
) -> list[OracleResult]:
    """Load each (path, loader) in the sandbox and report the first dangerous event; one result per item.

    A file that hangs past `timeout` seconds or crashes its child process becomes a result with `error`
    set, and the remaining files continue in a fresh child.
    """
    for _, loader in items:
        if loader not in SANDBOX_LOADERS:
            raise ValueError(f"unknown oracle loader {loader!r}; known: {', '.join(LOADERS)}")
    raw = run_sandboxed(items, __name__, timeout=timeout, batch_size=batch_size, extra_env=ORACLE_ENV)
    return [
        OracleResult(path=r.path, loader=r.loader, event=r.event, loaded=r.loaded, error=r.error,
                     detail=r.detail, seconds=r.seconds, find_class=r.find_class)
        for r in raw
    ]


def discard_sample(path: Path | str) -> None:
    """Delete a sample file, its sidecar, and the package folders only that sidecar names.

    Only folders inside the file's own folder are removed, and none that another sidecar there still names.
    """
    path = Path(path)
    try:
        sidecar = read_sidecar(path)
    except ValueError:
        sidecar = None
    path.unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)
    if sidecar is None:
        return
    folder = path.parent.resolve()
    still_used: set[str] = set()
    for other in folder.glob("*" + SIDECAR_SUFFIX):
        try:
            remaining = read_sidecar(str(other)[: -len(SIDECAR_SUFFIX)])
        except ValueError:
            continue
        if remaining is not None:
            still_used.update(remaining.sys_path)
    for entry in sidecar.sys_path:
        target = Path(entry)
        if entry not in still_used and target.is_dir() and folder in target.parents:
            shutil.rmtree(target, ignore_errors=True)
