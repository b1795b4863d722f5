"""Feature columns: stable names and order, documented in COLUMNS.md, selectable by the Hydra configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from safepickle_bench.features import GROUPS, FeatureConfig, feature_columns, feature_groups, resolve_groups
from safepickle_bench.features.columns_doc import COLUMNS_DOC, render_columns_doc
from safepickle_bench.paths import CONF_DIR

CONF = CONF_DIR / "features"


def test_columns_are_named_by_group_unique_and_in_group_order():
    cols = feature_columns()
    assert len(cols) == len(set(cols))
    groups = feature_groups()
    assert list(groups) == list(GROUPS)
    assert cols == [c for g in GROUPS for c in groups[g]]
    for g, names in groups.items():
        assert all(c.startswith(f"{g}__") for c in names)


def test_columns_are_identical_across_processes_and_hash_seeds():
    code = "import json; from safepickle_bench.features import feature_columns; print(json.dumps(feature_columns()))"
    outs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.append(
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
                ).stdout
            )
        )
    assert outs[0] == outs[1] == feature_columns()


def test_columns_doc_is_current():
    assert COLUMNS_DOC.read_text(encoding="utf-8") == render_columns_doc(), (
        "regenerate with: python -m safepickle_bench.features.columns_doc"
    )


def test_group_selection_keeps_canonical_order_and_rejects_unknown_names():
    assert resolve_groups(["ngrams", "opcodes"]) == ("opcodes", "ngrams")
    assert resolve_groups("imports,structure") == ("structure", "imports")
    assert resolve_groups(None) == resolve_groups("all") == GROUPS
    with pytest.raises(ValueError):
        resolve_groups(["opcode"])


def test_every_features_config_selects_known_groups():
    files = sorted(CONF.glob("*.yaml"))
    names = {f.stem for f in files}
    assert {"opcodes", "all", *GROUPS, *(f"all_but_{g}" for g in GROUPS)} <= names
    for f in files:
        cfg = FeatureConfig.from_mapping(yaml.safe_load(f.read_text()))
        assert cfg.name == f.stem
        if f.stem.startswith("all_but_"):
            assert cfg.groups == tuple(g for g in GROUPS if g != f.stem.removeprefix("all_but_"))
    assert FeatureConfig.from_mapping(yaml.safe_load((CONF / "opcodes.yaml").read_text())).groups == (
        "opcodes",
    )
