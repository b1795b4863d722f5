"""The shipped detector generalises: every new attack family, under gadget names no build ever drew, injected
into real carriers of the dataset producers and proven by the oracle, is flagged; files of every new benign
producer, from a seed no build uses, score below its stored threshold."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from safepickle_bench.craft.families import GENERALIZATION_FAMILIES
from safepickle_bench.craft.families.carriers import Carrier
from safepickle_bench.craft.gadget_names import namespace_of
from safepickle_bench.datasets.generalization import GeneralizationBuild, build_generalization_samples
from safepickle_bench.datasets.generalization_build import NESTED_SHARE, stream_protocol
from safepickle_bench.features.call_allowlist import load_allowlist
from safepickle_bench.features.taxonomy import UNKNOWN, load_taxonomy
from safepickle_bench.models.detector import LoadedDetector, load_detector
from safepickle_bench.paths import PACKAGE_DIR

pytestmark = pytest.mark.slow

SEED = int.from_bytes(hashlib.sha256(b"never-seen-test").digest()[:4], "big")
"""A seed derived from a fixed string: no dataset build uses it (checked against every dataset config)."""
NAMESPACE = "test"
PER_FAMILY = 8
BENIGN_FILES_PER_PRODUCER = 3
CARRIER_CALLS = 2
"""Calls of each carrier producer (a torch state dict, a pickled and a joblib-dumped sklearn model)."""


def _carrier_producers() -> list[Any]:
    """Return the dataset producers whose files carry the payloads: torch state dicts and sklearn models."""
    from safepickle_bench.datasets.carriers import sklearn_models, torch_models

    by_name = {p.name: p for p in [*torch_models.PRODUCERS, *sklearn_models.PRODUCERS]}
    return [by_name["transformers.state_dict"], by_name["sklearn.pickle"], by_name["sklearn.joblib"]]


def _real_carriers(root: Path) -> dict[str, Carrier]:
    """Write the carrier producers' files from the never-seen seed; return them as injection carriers by key."""
    carriers: dict[str, Carrier] = {}
    for producer in _carrier_producers():
        for call in range(CARRIER_CALLS):
            folder = root / f"{producer.name}-{call}"
            folder.mkdir(parents=True)
            for f in producer.make(np.random.default_rng([SEED, call]), folder):
                data = (folder / f.name).read_bytes()
                carriers[f"{producer.name}/{call}/{f.name}"] = Carrier(f.container, f.name, data,
                                                                      stream_protocol(data))
    return carriers


@pytest.fixture(scope="module")
def detector() -> LoadedDetector:
    return load_detector()


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GeneralizationBuild]:
    """Samples of every new family, injected into real carriers where an injection fits, kept only if proven."""
    root = tmp_path_factory.mktemp("never_seen")
    carriers = _real_carriers(root / "carriers")
    build = build_generalization_samples(
        root / "samples", SEED, PER_FAMILY, NAMESPACE, injected_share=1.0, nested_share=NESTED_SHARE,
        carrier_kinds=tuple(carriers), carriers=carriers, prove=True, write_manifest_file=False,
    )
    return root / "samples", build


@pytest.fixture(scope="module")
def new_benign_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Files of every benign producer `generalization` adds to `hf`, from the never-seen seed, by producer."""
    from safepickle_bench.datasets.carriers import generalization_producers, hf_producers

    root = tmp_path_factory.mktemp("new_benign")
    old = {p.name for p in hf_producers()}
    files: dict[str, list[Path]] = {}
    for producer in (p for p in generalization_producers() if p.name not in old):
        for call in range(BENIGN_FILES_PER_PRODUCER):
            folder = root / f"{producer.name}-{call}"
            folder.mkdir(parents=True)
            made = producer.make(np.random.default_rng([SEED, call]), folder)
            files.setdefault(producer.name, []).extend(folder / f.name for f in made)
    return files


def test_the_seed_is_used_by_no_dataset_config():
    seeds = {yaml.safe_load(p.read_text(encoding="utf-8")).get("seed")
             for p in (PACKAGE_DIR / "conf" / "dataset").glob("*.yaml")}
    assert seeds and SEED not in seeds


def test_generated_gadgets_are_named_by_no_list_and_no_feature_column(proven, detector):
    _, build = proven
    taxonomy, allowlist = load_taxonomy(), load_allowlist()
    gadgets = {r["gadget"] for r in build.rows if r["gadget"]}
    assert {r["family"] for r in build.rows if r["gadget"]} == set(GENERALIZATION_FAMILIES)
    column_parts = {part for column in detector.feature_columns for part in column.split("__")}
    for gadget in gadgets:
        package = gadget.split(".", 1)[0]
        assert namespace_of(package) == NAMESPACE, gadget
        assert taxonomy.categorize(gadget) == UNKNOWN, gadget
        assert not any(entry == package or entry.startswith(f"{package}.") for entry in taxonomy.prefixes), gadget
        assert gadget not in allowlist and not any(e.startswith(f"{package}.") for e in allowlist.reasons), gadget
        assert package not in column_parts, gadget


def test_every_family_is_proven_inside_a_torch_state_dict_and_an_sklearn_model(proven):
    _, build = proven
    assert all(r["oracle_event"] for r in build.rows)
    injected = {(r["family"], r["carrier"].split("/", 1)[0]) for r in build.rows if r["carrier"]}
    for family in GENERALIZATION_FAMILIES:
        for producer in ("transformers.state_dict", "sklearn.pickle", "sklearn.joblib"):
            assert (family, producer) in injected, (family, producer, dict(build.dropped))


def test_shipped_detector_flags_every_proven_sample_with_a_never_seen_name(proven, detector, no_dangerous_events):
    root, build = proven
    assert {r["family"] for r in build.rows} == set(GENERALIZATION_FAMILIES), dict(build.dropped)
    verdicts = detector.score_paths([root / r["path"] for r in build.rows], top_k=0)
    missed = [(r["family"], r["opcode_route"], r["protocol"], r["shape"], r["container"], r["injection"],
               r["gadget"], v.verdict, round(v.score, 4))
              for r, v in zip(build.rows, verdicts, strict=True) if v.verdict != "malicious"]
    assert not missed, f"threshold {detector.threshold:.4g}; missed {len(missed)}/{len(build.rows)}: {missed}"


def test_shipped_detector_scores_every_new_benign_producer_clean(new_benign_files, detector, no_dangerous_events):
    assert new_benign_files and all(new_benign_files.values())
    flagged, top = [], {}
    for producer, paths in sorted(new_benign_files.items()):
        verdicts = detector.score_paths(paths, top_k=0)
        assert all(v.error is None for v in verdicts), [(v.path, v.error) for v in verdicts if v.error]
        top[producer] = round(max(v.score for v in verdicts), 4)
        flagged += [(producer, Path(v.path).name, round(v.score, 4)) for v in verdicts if v.score >= detector.threshold]
    assert not flagged, f"threshold {detector.threshold:.4g}; flagged {flagged}; max score per producer {top}"
