"""Generalisation samples are oracle-proven: the real loader reaches each payload's event with its package
on sys.path (every family, every protocol, every route, a subset of carrier x injection combinations)."""

from __future__ import annotations

import random

import pandas as pd

from safepickle_bench.craft.families import (
    GENERALIZATION_FAMILIES,
    FamilyContext,
    Route,
    build_family_payload,
)
from safepickle_bench.craft.families.routes import reexport_routes
from safepickle_bench.craft.families.samples import write_sample
from safepickle_bench.datasets import oracle
from safepickle_bench.datasets.generalization import EXTRA_COLUMNS, build_generalization_samples


def test_every_family_at_every_protocol_is_proven_and_listed_in_the_manifest(tmp_path):
    build = build_generalization_samples(tmp_path, 3, 12, "test", injected_share=0.0)
    assert not build.dropped
    assert len(build.rows) == 12 * len(GENERALIZATION_FAMILIES)
    frame = pd.read_parquet(build.manifest)
    assert set(EXTRA_COLUMNS) <= set(frame.columns) and (frame["label"] == 1).all()
    for family in GENERALIZATION_FAMILIES:
        rows = frame[frame["family"] == family]
        assert set(rows["protocol"]) == set(range(6)), family
        assert (rows["oracle_event"] != "").all()
    assert (frame["namespace"] == "test").all()


def test_injected_samples_are_proven_in_every_carrier_kind(tmp_path):
    build = build_generalization_samples(tmp_path, 5, 14, "validation", injected_share=1.0, nested_share=0.3)
    assert not build.dropped, build.dropped
    frame = pd.DataFrame(build.rows)
    injected = frame[frame["injection"] != "standalone"]
    assert len(injected) >= 40
    assert set(injected["container"]) == {"pickle", "torch_zip", "torch_legacy", "joblib", "joblib_zlib",
                                          "joblib_gzip", "joblib_lz4", "npy", "npz"}
    assert set(injected["injection"]) == {"prepend", "append", "nested", "second_stream", "zip_entry",
                                          "between_arrays"}


def test_every_route_reaches_the_gadget_in_the_real_loader(tmp_path):
    items, events = [], []
    for protocol in range(6):
        routes = [Route.GLOBAL, Route.MEMO, Route.INST, Route.OBJ, Route.NEWOBJ, Route.BUILD,
                  Route.GETATTR_INSTANCE, Route.DOTTED, *((Route.STACK_GLOBAL,) if protocol >= 4 else ())]
        cases = [("unknown_gadget", r) for r in routes] + [("reexport", r) for r in reexport_routes(protocol)]
        for family, route in cases:
            tag = f"route|{family}|{route}|{protocol}"
            fp = build_family_payload(family, FamilyContext(random.Random(tag), "/tmp/m", "train", tag), protocol,
                                      route=route)
            sample = write_sample(tmp_path / tag.replace("|", "_"), fp, "train", random.Random(tag))
            items.append((sample.path, sample.loader))
            events.append((tag, fp.events))
    for (tag, expected), res in zip(events, oracle.confirm(items), strict=True):
        assert res.event in expected, (tag, res)


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    runs = [build_generalization_samples(tmp_path / name, 7, 14, "train", injected_share=0.7, nested_share=0.3,
                                         prove=False, write_manifest_file=False) for name in ("a", "b")]
    assert [r["sha256"] for r in runs[0].rows] == [r["sha256"] for r in runs[1].rows]
    assert {r["container"] for r in runs[0].rows} >= {"torch_zip", "torch_legacy", "joblib_lz4", "npz"}
