"""Differential check: every import the real loader made (its `pickle.find_class` audit events, recorded by the
oracle's sandbox) is among the analyzer's imports for that file, over randomly composed generalisation samples
(families x protocols x opcode routes x argument encodings x nesting x carriers and injections)."""

from __future__ import annotations

import json
from collections import Counter

from safepickle_bench.datasets.differential import missed_imports
from safepickle_bench.datasets.generalization import build_generalization_samples


def test_the_analyzer_names_every_import_the_loader_made(tmp_path):
    build = build_generalization_samples(tmp_path, 11, 40, "test", injected_share=0.5, nested_share=0.25)
    assert not build.dropped, build.dropped
    assert len(build.rows) == 160
    events = sum(len(json.loads(r["find_class"])) for r in build.rows)
    assert events >= len(build.rows)  # every sample's loader imported at least one name
    shapes: Counter = Counter()
    for row in build.rows:
        for miss in missed_imports(tmp_path / row["path"], json.loads(row["find_class"])):
            shapes[(row["family"], row["container"], row["injection"], row["opcode_route"], row["protocol"],
                    miss.qualname)] += 1
    assert not shapes, "\n".join(f"{n} x {shape}" for shape, n in shapes.most_common())


def test_a_loader_import_the_file_does_not_name_is_reported_and_dotted_spellings_match(tmp_path):
    path = tmp_path / "x.pkl"
    # protocol 4: STACK_GLOBAL('pkgq.mod', 'os.system')('echo'), built by hand (never loaded here)
    path.write_bytes(b"\x80\x04\x8c\x08pkgq.mod\x8c\x09os.system\x93\x8c\x04echo\x85R.")
    assert missed_imports(path, [("pkgq.mod", "os.system"), ("pkgq.mod.os", "system")]) == []
    missed = missed_imports(path, [("pkgq.mod", "os.system"), ("builtins", "exec"), ("builtins", "exec")])
    assert [m.qualname for m in missed] == ["builtins.exec"]
