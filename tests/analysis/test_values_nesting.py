"""`nesting` measures how deeply containers nest in a symbolic value, long runs of scalars included."""

from __future__ import annotations

import random

from safepickle_bench.analysis.values import nesting


def reference_depth(value: object) -> int:
    """Return the nesting depth of an acyclic value of tuples, lists, sets, frozensets and dicts."""
    if isinstance(value, dict):
        return 1 + max((reference_depth(x) for x in value.values()), default=0)
    if isinstance(value, tuple | list | set | frozenset):
        return 1 + max((reference_depth(x) for x in value), default=0)
    return 0


def random_value(rng: random.Random, depth: int) -> object:
    """Return a random acyclic value, sometimes a long run of scalars with a container hidden in it."""
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([1, 2.5, "s", b"b", None])
    width = rng.choice([0, 1, 3, 40, 200])
    items = [random_value(rng, depth - 1) if rng.random() < 0.1 else rng.random() for _ in range(width)]
    if items and rng.random() < 0.5:
        items[rng.randrange(len(items))] = random_value(rng, depth - 1)
    kind = rng.choice(["list", "tuple", "dict"])
    if kind == "dict":
        return {i: x for i, x in enumerate(items)}
    return items if kind == "list" else tuple(items)


def test_nesting_matches_the_recursive_depth_on_random_values():
    rng = random.Random(11)
    for _ in range(300):
        value = random_value(rng, 5)
        assert nesting(value) == reference_depth(value)


def test_a_container_after_a_long_run_of_scalars_still_counts():
    assert nesting([0.5] * 10_000 + [[[]]]) == 3
    assert nesting({i: i for i in range(1000)} | {"x": ([],)}) == 3
    assert nesting([0.5] * 10_000) == 1
