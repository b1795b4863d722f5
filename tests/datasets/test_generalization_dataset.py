"""The `generalization` dataset: registered producers and families, proven labels, carrier groups, namespaces,
and manifests of the other datasets left as they were."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from safepickle_bench.datasets import build_dataset, read_manifest
from safepickle_bench.datasets.build import PRESETS, _injectable
from safepickle_bench.datasets.carriers import (
    GENERALIZATION_NEW_SHARE,
    generalization_producers,
    hf_producers,
)
from safepickle_bench.datasets.manifest import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    load_manifest,
    to_frame,
    write_manifest,
)

NEW_FAMILIES = ("unknown_gadget", "reexport", "obfuscated", "staged")
NAMESPACES = ("train", "validation", "test")


def _row(path: str, **extra: object) -> dict[str, object]:
    return {"path": path, "sha256": "0" * 64, "label": 0, "group": f"g:{path}", "seed": 0, **extra}


def test_a_manifest_without_generalisation_rows_keeps_exactly_the_schema_columns(tmp_path):
    frame = to_frame([_row("a.pkl"), _row("b.pkl")])
    assert list(frame.columns) == list(COLUMNS)
    write_manifest(frame, tmp_path / "m.parquet")
    read, _ = load_manifest(tmp_path / "m.parquet")
    assert list(read.columns) == list(COLUMNS)


def test_optional_columns_follow_the_schema_when_a_row_has_one():
    frame = to_frame([_row("a.pkl", namespace="test", gadget="pkg.mod.run"), _row("b.pkl")])
    assert list(frame.columns) == [*COLUMNS, "namespace", "gadget"]  # only the optional columns rows have
    assert set(OPTIONAL_COLUMNS) > {"namespace", "gadget"}
    assert frame.set_index("path").loc["b.pkl", "namespace"] == ""


def test_generalization_producers_add_every_new_producer_and_keep_hf_at_the_configured_share():
    producers = generalization_producers()
    names = {p.name for p in producers}
    hf = {p.name for p in hf_producers()}
    assert hf < names
    for prefix in ("stdlib.", "user_classes.", "mentions.", "nlp.", "torchscript."):
        assert any(n.startswith(prefix) for n in names - hf), prefix
    old = sum(p.weight for p in producers if p.name in hf)
    assert old / sum(p.weight for p in producers) == pytest.approx(1 - GENERALIZATION_NEW_SHARE)


def test_payloads_go_only_into_carriers_that_load_without_their_own_package():
    rows = [{"loader": "pickle_syspath", "container": "pickle"}, {"loader": "torch", "container": "torchscript"},
            {"loader": "torch", "container": "torch_zip"}]
    assert _injectable("generalization", rows) == rows[2:]
    assert _injectable("hf", rows) == rows


def test_other_presets_gain_no_family_samples():
    for name, sizes in PRESETS.items():
        for preset in sizes.values():
            assert (preset.families_per_namespace > 0) == (name == "generalization")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> pd.DataFrame:
    data = tmp_path_factory.mktemp("data")
    build_dataset("generalization", "tiny", data)
    return read_manifest("generalization", "tiny", data)


@pytest.mark.slow
def test_tiny_build_has_every_new_family_in_every_namespace_proven(tiny):
    new = tiny[tiny["payload_family"].isin(NEW_FAMILIES)]
    counts = new.groupby(["payload_family", "namespace"]).size()
    per = PRESETS["generalization"]["tiny"].families_per_namespace
    for family in NEW_FAMILIES:
        for namespace in NAMESPACES:
            assert counts.get((family, namespace), 0) >= per - 1, (family, namespace)  # at most one oracle drop
    assert (tiny.loc[tiny["label"] == 1, "oracle_event"] != "").all()
    assert (tiny.loc[tiny["label"] == 0, "oracle_event"] == "").all()
    assert (new["find_class"].map(json.loads).map(len) > 0).all()


@pytest.mark.slow
def test_tiny_build_has_old_families_and_new_benign_producers(tiny):
    old = tiny[(tiny["label"] == 1) & ~tiny["payload_family"].isin(NEW_FAMILIES)]
    assert len(old) == PRESETS["generalization"]["tiny"].malicious
    benign = tiny[tiny["label"] == 0]
    assert benign["producer"].str.startswith("user_classes.").any()
    assert set(benign.loc[benign["namespace"] != "", "producer"]) <= {
        "user_classes.objects", "torchscript.archive", "torch.generated_package_module"}


@pytest.mark.slow
def test_injected_family_samples_share_their_carriers_group(tiny):
    by_path = tiny.set_index("path")
    injected = tiny[tiny["payload_family"].isin(NEW_FAMILIES) & (tiny["injection"] != "standalone")]
    assert len(injected)
    benign_groups = set(tiny.loc[tiny["label"] == 0, "group"])
    for row in injected.itertuples():
        assert row.group in benign_groups, row.path  # the carrier's group, where its benign twin is
    standalone = tiny[tiny["payload_family"].isin(NEW_FAMILIES) & (tiny["injection"] == "standalone")]
    assert all(by_path.loc[p, "group"].startswith("generalization:") for p in standalone["path"])
