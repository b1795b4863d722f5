"""Write one generalisation sample: a stand-alone pickle or a payload injected into a carrier, plus the
throwaway gadget package and the `<file>.syspath.json` sidecar the oracle needs to load it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from safepickle_bench.craft.families.carriers import Carrier
from safepickle_bench.craft.families.common import FamilyPayload
from safepickle_bench.craft.gadget_package import write_gadget_package
from safepickle_bench.craft.injection import detect_container, inject, loader_for
from safepickle_bench.craft.writer_style import memoize_like_pickler

PACKAGE_DIR = "pkgs"
"""Folder, beside the sample, holding its throwaway gadget package."""
SIDECAR_SUFFIX = ".syspath.json"
"""The sandbox's sidecar suffix (`sandbox.sidecar.SIDECAR_SUFFIX`; the layers keep craft from importing it)."""
STANDALONE_NAMES: tuple[str, ...] = ("model.pkl", "data.pkl", "checkpoint.pkl", "state.pickle", "agent.pkl")


@dataclass(frozen=True)
class WrittenSample:
    """A sample on disk and how it was made."""

    path: Path
    family: str
    route: str
    protocol: int
    container: str
    injection: str
    """`standalone`, or the `craft.injection` mode used."""
    loader: str
    namespace: str
    gadget: str
    events: tuple[str, ...]
    shape: str
    imports: tuple[str, ...]
    has_sidecar: bool


def write_sample(folder: Path, fp: FamilyPayload, namespace: str | None, rng: random.Random,
                 carrier: Carrier | None = None, injection: str = "standalone",
                 memoize: bool = False) -> WrittenSample:
    """Write the sample (and its package + sidecar when it needs one) into a fresh `folder`; describe it.

    With `memoize`, a stand-alone stream carries the memo stores `pickle.dumps` would write
    (`writer_style.memoize_like_pickler`).

    Raises ValueError when the injection cannot carry the payload (e.g. a memo-aliased payload anywhere but
    at the start of a stream, or a combination `craft.injection` refuses).
    """
    folder.mkdir(parents=True, exist_ok=True)
    payload = fp.payload
    if carrier is None or injection == "standalone":
        name = rng.choice(STANDALONE_NAMES)
        data, container, loader, injection = payload.stream(), "pickle", "pickle", "standalone"
        if memoize:
            data = memoize_like_pickler(data)
    else:
        container = detect_container(carrier.data)
        if payload.memo and not (injection == "second_stream" and container == "pickle"):
            raise ValueError("a memo-aliased payload only goes into a fresh stream (stand-alone or second stream)")
        data = inject(carrier.data, payload, injection, rng=rng)
        name, loader = carrier.file_name, loader_for(container, injection)
    path = folder / name
    path.write_bytes(data)
    if fp.needs_package:
        write_gadget_package(folder / PACKAGE_DIR, fp.gadgets, fp.reexports)
        sidecar = {"sys_path": [PACKAGE_DIR], "main_module": None, "namespace": namespace}
        Path(f"{path}{SIDECAR_SUFFIX}").write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")
    return WrittenSample(path, fp.family, str(fp.route), payload.protocol, container, injection, loader,
                         namespace or "", fp.gadget, tuple(sorted(fp.events)), fp.shape, payload.imports,
                         fp.needs_package)
