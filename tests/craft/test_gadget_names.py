"""Generated gadget names: determinism, variety, validity, and namespaces disjoint by construction."""

from __future__ import annotations

import keyword
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safepickle_bench.craft.gadget_names import (
    DANGEROUS_STDLIB_TARGETS,
    NAMESPACES,
    GadgetKind,
    generate_names,
    generate_reexports,
    namespace_of,
)

ACTION_TOKENS = ("run", "exec", "shell", "cmd", "spawn", "system", "eval", "command", "process")


def _identifiers(qualname: str) -> list[str]:
    return qualname.split(".")


def test_same_seed_gives_same_names_and_different_seeds_differ():
    assert generate_names(3, 200) == generate_names(3, 200)
    assert generate_names(3, 200) != generate_names(4, 200)
    assert generate_reexports(3, 50) == generate_reexports(3, 50)
    assert generate_reexports(3, 50) != generate_reexports(4, 50)


def test_one_seed_gives_thousands_of_distinct_names_packages_and_modules():
    names = generate_names(0, 3000)
    assert len({n.qualname for n in names}) == 3000
    assert len({n.package for n in names}) > 1000
    assert len({n.module_path for n in names}) > 1500


def test_names_are_valid_non_reserved_identifiers_of_every_shape():
    names = generate_names(1, 1500)
    for n in names:
        assert n.qualname.startswith(n.module_path + ".")
        assert n.module_path == n.package or n.module_path.startswith(n.package + ".")
        for part in _identifiers(n.qualname):
            assert part.isidentifier() and not keyword.iskeyword(part), n
        assert n.package not in sys.stdlib_module_names
        assert 1 <= n.module_path.count(".") + 1 <= 4
        assert n.attr_path.count(".") == (1 if n.kind == GadgetKind.METHOD else 0)
        if n.kind == GadgetKind.CLASS:
            assert n.top_attr.lstrip("_")[0].isupper()
        if n.kind == GadgetKind.FUNCTION:
            assert n.attr_path == n.attr_path.lower()
    assert {n.kind for n in names} == set(GadgetKind)
    depths = {n.module_path.count(".") + 1 for n in names}
    assert depths == {1, 2, 3, 4}
    assert any("_" in n.package for n in names) and any(n.package[-1].isdigit() for n in names)


def test_action_words_appear_in_some_names_but_are_never_the_rule():
    names = generate_names(2, 2000)
    share = sum(any(t in n.qualname.lower() for t in ACTION_TOKENS) for n in names) / len(names)
    assert 0.1 < share < 0.6


def test_generated_module_tree_is_consistent():
    # a module attribute is never also a submodule name, and a top-level name is a function or a class, not both
    names = generate_names(5, 3000)
    modules = {n.module_path for n in names}
    children = {(m.rsplit(".", 1)[0], m.rsplit(".", 1)[1]) for m in modules if "." in m}
    kinds: dict[tuple[str, str], bool] = {}
    for n in names:
        assert (n.module_path, n.top_attr) not in children, n
        is_class = n.kind != GadgetKind.FUNCTION
        assert kinds.setdefault((n.module_path, n.top_attr), is_class) == is_class, n


def test_namespaces_partition_packages_classes_and_callables():
    per_namespace = {ns: generate_names(7, 1500, namespace=ns) for ns in NAMESPACES}
    for ns, names in per_namespace.items():
        for n in names:
            assert namespace_of(n.package) == ns
            for part in n.attr_path.split("."):
                assert namespace_of(part) == ns
    train, test = per_namespace["train"], per_namespace["test"]
    assert not {n.package for n in train} & {n.package for n in test}
    assert not {n.module_path for n in train} & {n.module_path for n in test}
    assert not {p for n in train for p in n.attr_path.split(".")} & {p for n in test for p in n.attr_path.split(".")}


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_train_and_test_names_are_disjoint_for_any_seeds(seed_a, seed_b):
    train = [*generate_names(seed_a, 100, namespace="train"), *generate_reexports(seed_a, 20, namespace="train")]
    test = [*generate_names(seed_b, 100, namespace="test"), *generate_reexports(seed_b, 20, namespace="test")]
    assert not {n.qualname for n in train} & {n.qualname for n in test}
    assert not {n.package for n in train} & {n.package for n in test}


def test_unknown_namespace_is_rejected():
    with pytest.raises(ValueError, match="namespace"):
        generate_names(0, 1, namespace="holdout")


def test_reexport_paths_reach_real_stdlib_callables_through_a_generated_module():
    paths = generate_reexports(11, 300)
    assert len({p.qualname for p in paths}) == 300
    assert {p.target for p in paths} == set(DANGEROUS_STDLIB_TARGETS)
    for p in paths:
        assert p.qualname == f"{p.host_module}.{p.alias}.{p.target.name}"
        assert p.host_module.split(".")[0] == p.package
        assert p.alias.isidentifier() and not p.alias.startswith("__")
    assert any(p.alias == p.target.module for p in paths) and any(p.alias != p.target.module for p in paths)
