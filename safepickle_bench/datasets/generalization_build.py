"""The `generalization` dataset's share of the build: the new payload families in every name namespace,
stand-alone and injected into the dataset's confirmed carriers, and the name namespace of every benign file.

`build.build_dataset` calls `build_family_rows` after the old families (same staging folder, same seed) and
`annotate_namespaces` on the confirmed benign rows. The samples are written and proven by
`generalization.build_generalization_samples` (the oracle loads each with its throwaway package; a sample
whose load does not reach one of its payload's events is deleted and counted). An injected sample takes
its carrier's split group, so a carrier and its injected twins fall in the same fold.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

from safepickle_bench.craft.families import GENERALIZATION_FAMILIES
from safepickle_bench.craft.families.carriers import Carrier
from safepickle_bench.craft.gadget_names import NAMESPACES, namespace_of
from safepickle_bench.craft.injection import detect_container
from safepickle_bench.datasets.generalization import build_generalization_samples
from safepickle_bench.sandbox.sidecar import read_sidecar

INJECTED_SHARE = 0.5
"""Share of family samples injected into a carrier (the rest are stand-alone pickles at protocols 0-5)."""
NESTED_SHARE = 0.15
"""Share of family samples whose stream is run by `pickle.loads` of its encoded bytes."""
TORCHSCRIPT_CODE = "/code/__torch__/"
"""Where a TorchScript archive keeps the sources of its classes, one folder per module path."""


def stream_protocol(data: bytes) -> int:
    """Return the protocol of the pickle a payload injected into `data` joins (2 for torch, else the PROTO)."""
    container = detect_container(data)
    if container in ("torch_zip", "torch_legacy"):
        return 2
    if container == "pickle":
        return data[1] if data[:1] == b"\x80" and len(data) > 1 and data[1] <= pickle.HIGHEST_PROTOCOL else 0
    return 4  # joblib and numpy pickle at the default protocol


def _carrier(root: Path, row: dict[str, Any]) -> Carrier:
    """Return a dataset carrier row as an injection carrier (its bytes, file name and stream protocol)."""
    data = (root / row["path"]).read_bytes()
    return Carrier(row["container"], Path(row["path"]).name, data, stream_protocol(data))


def build_family_rows(
    name: str, per_namespace: int, carriers: list[dict[str, Any]], root: Path, seed: int,
    memoized_share: float = 0.0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Write and prove `per_namespace` samples of every new family in every namespace under `root/files/`.

    Returns (manifest rows of the kept samples, one drop record per deleted sample)."""
    by_path = {c["path"]: c for c in sorted(carriers, key=lambda c: c["path"])}
    rows: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for namespace in NAMESPACES:
        order = list(by_path)
        random.Random(f"{name}|{seed}|{namespace}|carriers").shuffle(order)
        wanted = order[: per_namespace * len(GENERALIZATION_FAMILIES)]
        chosen = {path: _carrier(root, by_path[path]) for path in wanted}
        build = build_generalization_samples(
            root, seed, per_namespace, namespace, injected_share=INJECTED_SHARE if chosen else 0.0,
            nested_share=NESTED_SHARE, memoized_share=memoized_share, carrier_kinds=tuple(chosen), carriers=chosen, write_manifest_file=False,
        )
        for row in build.rows:
            carrier = by_path.get(row["carrier"])
            if carrier is not None:
                row["group"] = carrier["group"]
            rows.append(row)
        for (family, reason), count in sorted(build.dropped.items()):
            dropped += [{"path": "", "label": 1, "producer": f"generalization.{family}", "injection": "",
                         "event": reason, "loaded": False, "error": f"namespace {namespace}"}] * count
    return rows, dropped


def benign_namespace(path: Path) -> str:
    """Return the name namespace of a benign file's generated names ('' when it has none).

    Files of generated packages say it in their sidecar; a TorchScript archive names its module path in the
    folders of its code (`<archive>/code/__torch__/<package>/...`), whose package gives the namespace."""
    sidecar = read_sidecar(path)
    if sidecar is not None:
        return sidecar.namespace or ""
    if not zipfile.is_zipfile(path):
        return ""
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            at = member.find(TORCHSCRIPT_CODE)
            if at >= 0:
                package = member[at + len(TORCHSCRIPT_CODE):].split("/", 1)[0].removesuffix(".py")
                if package and package not in ("torch", "__torch__"):
                    return namespace_of(package)
    return ""


def annotate_namespaces(rows: list[dict[str, Any]], root: Path) -> None:
    """Set `namespace` on every benign row (in place) from its file (see `benign_namespace`)."""
    for row in rows:
        row["namespace"] = benign_namespace(root / row["path"])
