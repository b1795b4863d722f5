"""Generalisation samples: the `craft.families` payloads written stand-alone or injected into carriers,
proven by the label oracle, with a manifest row per kept sample.

`build_generalization_samples` is the one entry point. It is not registered in any dataset yet: a later
step adds its rows to a dataset and to the leave-one-family-out and unseen-names protocols (the
`payload_family`, `namespace` and `gadget` columns carry what those need).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepickle_bench.craft.families import GENERALIZATION_FAMILIES, FamilyContext, build_family_payload
from safepickle_bench.craft.families.carriers import CARRIER_KINDS, Carrier, make_carrier
from safepickle_bench.craft.families.common import NEST_ENCODINGS, FamilyPayload, nest
from safepickle_bench.craft.families.samples import WrittenSample, write_sample
from safepickle_bench.craft.injection import INJECTIONS
from safepickle_bench.datasets.manifest import MANIFEST_NAME, sha256_file, to_frame, write_manifest
from safepickle_bench.datasets.oracle import OracleResult, confirm, discard_sample

MARKER_DIR = "/tmp/safepickle-out/markers"
"""Fixed marker directory embedded in the payloads (the same as the other generated datasets)."""
EXTRA_COLUMNS: tuple[str, ...] = (
    "family", "opcode_route", "protocol", "namespace", "gadget", "shape", "find_class",
)
"""Manifest columns beyond the dataset schema (`find_class`: the loader's imports, JSON)."""


@dataclass
class GeneralizationBuild:
    """What a build wrote and kept: manifest rows, oracle results of kept samples, drop counts."""

    rows: list[dict[str, Any]]
    results: list[OracleResult]
    dropped: Counter = field(default_factory=Counter)
    """(family, reason) -> count of samples the oracle could not prove (deleted)."""
    manifest: Path | None = None


def _sample_id(*parts: object) -> str:
    """Return a neutral deterministic folder id."""
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()[:12]


def _payload(family: str, ctx: FamilyContext, protocol: int, variant: int, nested_share: float) -> FamilyPayload:
    """Build a family payload, sometimes nested in a `pickle.loads` of its encoded stream."""
    nested = ctx.rng.random() < nested_share
    inner_protocol = ctx.rng.choice((0, 2, 4, 5)) if nested else protocol
    fp = build_family_payload(family, ctx, inner_protocol, variant)
    return nest(fp, protocol, ctx.rng.choice(NEST_ENCODINGS)) if nested else fp


def _write_injected(folder: Path, family: str, ctx: FamilyContext, carrier: Carrier, variant: int,
                    namespace: str | None, nested_share: float) -> WrittenSample | None:
    """Build a payload at the carrier's protocol and inject it by the first mode that works; None if none."""
    fp = _payload(family, ctx, carrier.protocol, variant, nested_share)
    modes = [m for m in INJECTIONS if m != "standalone"]
    ctx.rng.shuffle(modes)
    for mode in modes:
        try:
            return write_sample(folder, fp, namespace, ctx.rng, carrier, mode)
        except ValueError:
            continue
    return None


def build_generalization_samples(
    out_dir: Path | str,
    seed: int,
    n_per_family: int,
    namespace: str | None,
    *,
    families: Sequence[str] = GENERALIZATION_FAMILIES,
    protocols: Sequence[int] = (0, 1, 2, 3, 4, 5),
    injected_share: float = 0.5,
    nested_share: float = 0.0,
    memoized_share: float = 0.0,
    carrier_kinds: Sequence[str] = CARRIER_KINDS,
    carriers: Mapping[str, Carrier] | None = None,
    prove: bool = True,
    write_manifest_file: bool = True,
    timeout: float = 60.0,
) -> GeneralizationBuild:
    """Write `n_per_family` samples per family under `out_dir/files/`, prove them, return the kept rows.

    Stand-alone samples cycle through `protocols`; injected ones cycle through `carrier_kinds` and take their
    carrier's protocol (a payload no injection mode can carry is written stand-alone instead); `carriers`
    gives the carrier of a kind instead of `make_carrier` (e.g. a dataset's confirmed benign files, keyed by
    path: the row's `carrier` names the key of the carrier used, empty for a stand-alone sample); a share
    `nested_share` wraps the payload in `pickle.loads` of its encoded stream; a share `memoized_share` of the
    stand-alone ones carries the memo stores `pickle.dumps` would write. With `prove`
    the oracle loads every sample (its sidecar package on sys.path) and a sample whose load does not reach
    one of its payload's events is deleted with its package and counted in `dropped`, never kept.
    """
    out_dir = Path(out_dir)
    carriers = dict(carriers or {})
    written: list[WrittenSample] = []
    carrier_of: dict[Path, str] = {}
    for f, family in enumerate(families):
        for i in range(n_per_family):
            rng = random.Random(f"generalization|{seed}|{namespace}|{family}|{i}")
            ctx = FamilyContext(rng, MARKER_DIR, namespace, f"{seed}|{namespace}|{family}|{i}")
            folder = out_dir / "files" / _sample_id("generalization", seed, namespace, family, i)
            sample = None
            if rng.random() < injected_share and carrier_kinds:
                kind = carrier_kinds[(i + 3 * f) % len(carrier_kinds)]  # every kind in turn
                if kind not in carriers:
                    carriers[kind] = make_carrier(kind, seed)
                sample = _write_injected(folder, family, ctx, carriers[kind], i, namespace, nested_share)
                if sample is not None:
                    carrier_of[sample.path] = kind
            if sample is None:
                fp = _payload(family, ctx, protocols[i % len(protocols)], i, nested_share)
                sample = write_sample(folder, fp, namespace, rng, memoize=rng.random() < memoized_share)
            written.append(sample)
    build = GeneralizationBuild([], [])
    results = confirm([(s.path, s.loader) for s in written], timeout=timeout) if prove else [None] * len(written)
    for sample, res in zip(written, results, strict=True):
        if res is not None and res.event not in sample.events:
            reason = "no_event" if not res.event else f"other_event:{res.event}"
            build.dropped[(sample.family, reason)] += 1
            discard_sample(sample.path)
            _remove_empty(sample.path.parent)
            continue
        build.rows.append({**_row(sample, res, out_dir, seed), "carrier": carrier_of.get(sample.path, "")})
        if res is not None:
            build.results.append(res)
    if write_manifest_file and build.rows:
        frame = to_frame(build.rows)
        extras = {r["path"]: r for r in build.rows}
        for column in EXTRA_COLUMNS:
            frame[column] = [extras[p][column] for p in frame["path"]]
        build.manifest = out_dir / MANIFEST_NAME
        write_manifest(frame, build.manifest, {"seed": seed, "namespace": namespace, "families": list(families),
                                               "dropped": {f"{f}:{r}": n for (f, r), n in build.dropped.items()}})
    return build


def _row(sample: WrittenSample, res: OracleResult | None, out_dir: Path, seed: int) -> dict[str, Any]:
    """Return the manifest row of a kept sample."""
    rel = sample.path.relative_to(out_dir).as_posix()
    return {
        "path": rel, "sha256": sha256_file(sample.path), "label": 1,
        "group": f"generalization:{sample.path.parent.name}", "producer": f"generalization.{sample.family}",
        "kind": sample.shape, "container": sample.container, "payload_family": sample.family,
        "injection": sample.injection, "evasion_technique": "", "loader": sample.loader, "seed": seed,
        "oracle_event": res.event if res is not None else "",
        "family": sample.family, "opcode_route": sample.route, "protocol": sample.protocol,
        "namespace": sample.namespace, "gadget": sample.gadget, "shape": sample.shape,
        "find_class": json.dumps([list(p) for p in res.find_class]) if res is not None else "[]",
    }


def _remove_empty(folder: Path) -> None:
    """Remove a sample folder once nothing is left in it."""
    with contextlib.suppress(OSError):
        folder.rmdir()
