"""The reproduction's step list: the generalisation protocols come first, and every step builds its command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def reproduce_all(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the script as a module
    """Import experiments/reproduce_all.py as a module."""
    monkeypatch.syspath_prepend(str(REPO / "experiments"))
    sys.modules.pop("reproduce_all", None)
    import reproduce_all

    return reproduce_all


def _args(**kw: object) -> argparse.Namespace:
    base = {"small": False, "tracking_uri": None, "models_dir": None, "models": None, "feature_sets": None,
            "scanners": None}
    return argparse.Namespace(**{**base, **kw})


def test_generalisation_is_the_first_step_and_every_script_exists(reproduce_all):
    names = [s.name for s in reproduce_all.STEPS]
    assert names[0] == "generalization"
    assert {"default_detector", "notebooks", "readme"} <= set(names)
    assert names[-1] == "readme"  # the index is written last, from every table
    assert all(s.script.is_file() for s in reproduce_all.STEPS)


def test_default_detector_step_compares_candidates_without_touching_the_package(reproduce_all, tmp_path):
    step = next(s for s in reproduce_all.STEPS if s.name == "default_detector")
    cmd = reproduce_all.step_command(step, _args(small=True), tmp_path)
    assert cmd[1] == str(REPO / "experiments" / "train_default_detector.py")
    assert {"--compare", "--no-install", "--small"} <= set(cmd)
    assert cmd[cmd.index("--out") + 1] == str(tmp_path)


def test_generalization_step_passes_size_and_output_folder(reproduce_all, tmp_path):
    step = reproduce_all.STEPS[0]
    full = reproduce_all.step_command(step, _args(), tmp_path)
    small = reproduce_all.step_command(step, _args(small=True), tmp_path)
    assert "--small" not in full and "--small" in small
    assert full[full.index("--out") + 1] == str(tmp_path)
