"""gensim and scikit-learn NLP models saved by the real libraries: reproducible, analysed, loaded cleanly."""

from __future__ import annotations

import pytest

from safepickle_bench.datasets.carriers import nlp_models

pytest.importorskip("gensim")


def test_nlp_model_files_are_reproducible_analysed_and_load_without_dangerous_events(
    produced, analyzer_reads, oracle_loads_clean
):
    files = produced(nlp_models.PRODUCERS, 4)
    kinds = {f.kind for _, f in files}
    assert any(k.startswith("gensim_") for k in kinds) and any(k.startswith("sklearn_") for k in kinds)
    analyzer_reads([p for p, _ in files])
    oracle_loads_clean([(p, f.loader) for p, f in files])


def test_gensim_save_writes_npy_side_files_with_a_low_sep_limit(produced):
    files = produced(nlp_models.PRODUCERS[:2], 6)
    side = [p for path, _ in files for p in path.parent.iterdir() if p.name.startswith(path.name + ".")]
    assert any(p.suffix == ".npy" for p in side)
    assert all(p.read_bytes()[:6] == b"\x93NUMPY" for p in side if p.suffix == ".npy")
