"""Seeded random names for "unknown gadgets": plausible packages, dotted modules, functions, classes, methods.

Names are composed from invented word-piece inventories, so no list of real packages or real gadgets is
involved. Some names contain action-like words (run, exec, shell, cmd...), most do not, so a token is never
the shortcut. A `namespace` (one of `NAMESPACES`) partitions the name space by construction: every package
name, class name and callable name belongs to exactly one namespace (`namespace_of`, a keyed hash of the
name), and a generator asked for a namespace only emits names of that namespace, so the train and test name
sets are disjoint whatever the seeds.

Re-export paths reach a real dangerous stdlib callable through an attribute of a generated module
(`<pkg>.<mod>` + `os.system`); the stdlib targets in `DANGEROUS_STDLIB_TARGETS` are the ground-truth actions.
"""

from __future__ import annotations

import hashlib
import keyword
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

NAMESPACES: tuple[str, ...] = ("train", "validation", "test")
"""The namespaces that partition generated names (a name belongs to exactly one)."""

_NAMESPACE_KEY = b"safepickle-bench-gadget-names"

# Invented word pieces: generic English and technical morphemes, none taken from any corpus.
_NEUTRAL = (
    "task", "flow", "kit", "data", "pipe", "graph", "node", "mesh", "core", "hub", "forge", "loom", "quill",
    "vector", "ember", "orbit", "pixel", "nimbus", "cobalt", "delta", "relay", "spark", "stack", "batch",
    "queue", "agent", "tool", "chain", "signal", "bridge", "cargo", "harbor", "atlas", "prism", "fable",
    "glyph", "hatch", "lumen", "nexus", "onyx", "pulse", "quartz", "ripple", "sable", "tidal", "umbra",
    "vertex", "willow", "yarrow", "zephyr", "meadow", "cinder", "fern", "grove", "kestrel", "lattice",
    "marble", "nova", "opal", "pebble", "raven", "slate", "thistle", "tundra", "vale", "wren", "axiom",
    "beacon", "canopy", "drift", "echo", "fjord", "gable", "helix", "iris", "jade", "karma", "lotus",
    "mosaic", "nectar", "oasis", "plume", "quiver", "rune", "sprout", "tensor", "unity", "vortex", "weave",
    "xenon", "yield", "zenith", "model", "train", "infer", "metric", "token", "embed", "layer", "shard",
    "cache", "store", "index", "sched", "plan", "probe", "trace", "audit", "sync", "bench", "lab", "studio",
)
_ACTIONISH = (
    "run", "exec", "shell", "cmd", "spawn", "invoke", "launch", "dispatch", "execute", "process", "command",
    "script", "job", "worker", "eval", "proc", "sh", "call", "system", "hook",
)
_VERBS = (
    "load", "save", "fetch", "parse", "build", "render", "compute", "apply", "merge", "split", "sync", "map",
    "fit", "score", "encode", "decode", "format", "resolve", "collect", "handle", "prepare", "update",
    "refresh", "emit", "flush", "bind", "attach", "restore", "export", "import", "convert", "register",
    "open", "close", "start", "stop", "submit", "queue", "schedule", "tick", "step", "warm", "prime",
)
_NOUNS = (
    "batch", "config", "state", "record", "entry", "payload", "blob", "frame", "chunk", "shard", "buffer",
    "session", "context", "request", "result", "report", "item", "task", "job", "step", "stage", "plan",
    "graph", "node", "edge", "token", "vocab", "weights", "params", "cache", "index", "table", "schema",
    "spec", "template", "prompt", "query", "callback", "handler", "hook", "plugin", "backend", "driver",
    "command", "script", "snippet", "expr", "source", "action", "tool", "line", "args", "options",
)
_ROLES = (
    "Runner", "Executor", "Handler", "Manager", "Loader", "Session", "Client", "Tool", "Agent", "Pipeline",
    "Config", "Helper", "Worker", "Engine", "Context", "Builder", "Adapter", "Wrapper", "Bridge", "Driver",
    "Store", "Registry", "Provider", "Service", "Controller", "Dispatcher", "Scheduler", "Plugin", "Module",
    "Model", "State", "Spec", "Backend", "Invoker", "Shell", "Task", "Job", "Record", "Proxy", "Factory",
)
_SUBMODULES = (
    "utils", "helpers", "core", "runtime", "internal", "_impl", "backends", "contrib", "compat", "ops",
    "tools", "agents", "jobs", "plugins", "tasks", "cli", "_vendor", "base", "common", "api", "engine",
    "exec", "shell", "process", "serving", "training", "io_utils", "hub", "registry", "integrations",
    "extensions", "legacy", "experimental", "lib", "support", "adapters", "drivers", "handlers", "workers",
    "scheduling", "pipeline", "models", "data", "loaders", "runners", "commands", "actions", "hooks",
)
_PKG_PREFIXES = ("py", "open", "auto", "fast", "easy", "micro", "deep", "hyper", "meta", "neo", "tiny", "mini")
_PKG_SUFFIXES = ("kit", "lib", "py", "io", "ly", "ify", "x", "hub", "lab", "ai", "ml", "ops", "flow", "stack")
_VERSIONS = ("2", "3", "_v2", "_v3", "_next", "_legacy", "_compat", "_ng", "_lite", "_core")
_CONSONANTS = "bcdfghjklmnprstvwz"
_VOWELS = "aeiou"

_RESERVED: frozenset[str] = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names) | frozenset(
    {"os", "subprocess", "builtins", "socket", "marshal", "pickle", "torch", "numpy", "test", "tests", "setup"}
)


class GadgetKind(StrEnum):
    """What a gadget's attribute path names."""

    FUNCTION = "function"
    """A module-level function: `attr_path = "run_batch"`."""
    CLASS = "class"
    """A class whose construction or state restoration runs the action: `attr_path = "TaskRunner"`."""
    METHOD = "method"
    """A method of a class, reached via getattr on an instance: `attr_path = "TaskRunner.launch"`."""


@dataclass(frozen=True)
class GadgetName:
    """A generated gadget: importable module path (starting with its package) and attribute path inside it."""

    package: str
    module_path: str
    attr_path: str
    kind: GadgetKind = GadgetKind.FUNCTION

    @property
    def qualname(self) -> str:
        """Return the fully dotted name `module_path.attr_path`."""
        return f"{self.module_path}.{self.attr_path}"

    @property
    def top_attr(self) -> str:
        """Return the module-level attribute the path starts with (the function or class name)."""
        return self.attr_path.split(".", 1)[0]


@dataclass(frozen=True)
class StdlibTarget:
    """A real dangerous stdlib callable (a ground-truth action, not a name taken from any corpus)."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        """Return `module.name`."""
        return f"{self.module}.{self.name}"


DANGEROUS_STDLIB_TARGETS: tuple[StdlibTarget, ...] = (
    StdlibTarget("os", "system"),
    StdlibTarget("os", "popen"),
    StdlibTarget("os", "execv"),
    StdlibTarget("posix", "system"),
    StdlibTarget("subprocess", "Popen"),
    StdlibTarget("subprocess", "run"),
    StdlibTarget("subprocess", "call"),
    StdlibTarget("subprocess", "check_call"),
    StdlibTarget("subprocess", "check_output"),
    StdlibTarget("subprocess", "getoutput"),
    StdlibTarget("builtins", "exec"),
    StdlibTarget("builtins", "eval"),
    StdlibTarget("builtins", "compile"),
    StdlibTarget("builtins", "open"),
    StdlibTarget("socket", "create_connection"),
)
"""Dangerous stdlib callables a re-export path may reach."""


@dataclass(frozen=True)
class ReexportPath:
    """A dangerous stdlib callable reached through a generated module's attribute (`host.alias.name`)."""

    package: str
    host_module: str
    alias: str
    """The host module's attribute bound to the stdlib module (`import os` -> "os", `import os as _os` -> "_os")."""
    target: StdlibTarget

    @property
    def attr_path(self) -> str:
        """Return the dotted attribute path inside the host module (`os.system`)."""
        return f"{self.alias}.{self.target.name}"

    @property
    def qualname(self) -> str:
        """Return the full dotted path `host_module.alias.name`."""
        return f"{self.host_module}.{self.attr_path}"


def namespace_of(name: str) -> str:
    """Return the namespace a generated identifier belongs to (a keyed hash of the name: stable everywhere)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, key=_NAMESPACE_KEY).digest()
    return NAMESPACES[int.from_bytes(digest, "big") % len(NAMESPACES)]


def _check_namespace(namespace: str | None) -> None:
    """Raise ValueError for a namespace outside `NAMESPACES`."""
    if namespace is not None and namespace not in NAMESPACES:
        raise ValueError(f"unknown namespace {namespace!r}; expected one of {NAMESPACES} or None")


def _valid_identifier(name: str) -> bool:
    """Return True for a usable, non-reserved Python identifier."""
    return name.isidentifier() and not keyword.iskeyword(name) and name not in _RESERVED


def _pseudo_word(rng: random.Random) -> str:
    """Return a pronounceable made-up word of 2-3 syllables."""
    return "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) + rng.choice(("", "", "n", "r", "l", "x"))
                   for _ in range(rng.randint(2, 3)))


def _piece(rng: random.Random) -> str:
    """Return one word piece: mostly neutral, sometimes action-like, sometimes made up."""
    r = rng.random()
    if r < 0.15:
        return rng.choice(_ACTIONISH)
    if r < 0.3:
        return _pseudo_word(rng)
    return rng.choice(_NEUTRAL)


def _package_candidate(rng: random.Random) -> str:
    """Return one candidate top-level package name."""
    shape = rng.randrange(7)
    if shape == 0:
        name = _piece(rng) + _piece(rng)
    elif shape == 1:
        name = f"{_piece(rng)}_{_piece(rng)}"
    elif shape == 2:
        name = rng.choice(_PKG_PREFIXES) + _piece(rng)
    elif shape == 3:
        name = _piece(rng) + rng.choice(_PKG_SUFFIXES)
    elif shape == 4:
        name = _pseudo_word(rng) + rng.choice(("", "_" + rng.choice(_NEUTRAL)))
    elif shape == 5:
        name = f"{_piece(rng)}{rng.choice(_PKG_SUFFIXES)}{rng.choice(_VERSIONS)}"
    else:
        name = f"{_piece(rng)}_{_piece(rng)}_{rng.choice(_PKG_SUFFIXES)}"
    return name.lower()


def _submodule(rng: random.Random) -> str:
    """Return one submodule name."""
    r = rng.random()
    if r < 0.55:
        return rng.choice(_SUBMODULES)
    if r < 0.8:
        return f"{rng.choice(_NOUNS)}_{rng.choice(_SUBMODULES).lstrip('_')}"
    if r < 0.9:
        return "_" + _piece(rng)
    return _piece(rng) + rng.choice(("", "s", "_utils", "_ops", rng.choice(_VERSIONS)))


def _function_candidate(rng: random.Random) -> str:
    """Return one snake_case function or method name."""
    shape = rng.randrange(6)
    if shape == 0:
        name = f"{rng.choice(_VERBS)}_{rng.choice(_NOUNS)}"
    elif shape == 1:
        name = f"{rng.choice(_VERBS)}_{rng.choice(_NOUNS)}_{rng.choice(_NOUNS)}"
    elif shape == 2:
        name = f"{rng.choice(_ACTIONISH)}_{rng.choice(_NOUNS)}"
    elif shape == 3:
        name = f"{rng.choice(_VERBS)}_{_piece(rng)}"
    elif shape == 4:
        name = f"{rng.choice(_NOUNS)}_{rng.choice(_VERBS)}{rng.choice(('', 'er', 's'))}"
    else:
        name = f"{_piece(rng)}_{rng.choice(_VERBS)}_{rng.choice(_NOUNS)}{rng.choice(('', '', '2', '_v2', '_impl'))}"
    return ("_" if rng.random() < 0.12 else "") + name


def _class_candidate(rng: random.Random) -> str:
    """Return one CamelCase class name."""
    parts = [_piece(rng).capitalize() for _ in range(rng.randint(1, 2))]
    name = "".join(parts) + rng.choice(_ROLES)
    if rng.random() < 0.1:
        name += rng.choice(("V2", "2", "Base", "Impl", "Mixin"))
    return ("_" if rng.random() < 0.08 else "") + name


def _draw(rng: random.Random, make: Callable[[random.Random], str], namespace: str | None, tries: int = 200) -> str:
    """Return the first candidate from `make(rng)` that is a valid identifier of the namespace."""
    for _ in range(tries):
        name = make(rng)
        if _valid_identifier(name) and (namespace is None or namespace_of(name) == namespace):
            return name
    raise RuntimeError("could not draw a valid name; the inventories are too small for this namespace")


class _Registry:
    """Top-level attributes already used per module, and submodule names, to keep the generated tree consistent."""

    def __init__(self) -> None:
        self.top: dict[str, dict[str, GadgetKind]] = {}
        self.children: dict[str, set[str]] = {}

    def add_module(self, module_path: str) -> None:
        parts = module_path.split(".")
        for i in range(1, len(parts)):
            self.children.setdefault(".".join(parts[:i]), set()).add(parts[i])

    def conflicts(self, module_path: str, top_attr: str, is_class: bool) -> bool:
        """Return True when `top_attr` in `module_path` clashes with a submodule or with another kind."""
        if top_attr in self.children.get(module_path, ()):
            return True
        previous = self.top.get(module_path, {}).get(top_attr)
        return previous is not None and (previous != GadgetKind.FUNCTION) != is_class

    def module_clashes(self, module_path: str) -> bool:
        """Return True when a new module path would shadow an attribute of its parent module."""
        parts = module_path.split(".")
        return any(parts[i] in self.top.get(".".join(parts[:i]), {}) for i in range(1, len(parts)))

    def record(self, name: GadgetName) -> None:
        kind = GadgetKind.FUNCTION if name.kind == GadgetKind.FUNCTION else GadgetKind.CLASS
        self.top.setdefault(name.module_path, {})[name.top_attr] = kind
        self.add_module(name.module_path)


def _module_path(rng: random.Random, package: str) -> str:
    """Return a dotted module path of depth 1-4 starting with `package`."""
    depth = rng.choices((1, 2, 3, 4), weights=(3, 4, 3, 1))[0]
    return ".".join([package] + [_submodule(rng) for _ in range(depth - 1)])


def generate_names(
    seed: int | str,
    n: int,
    *,
    namespace: str | None = None,
    kinds: tuple[GadgetKind, ...] = tuple(GadgetKind),
) -> list[GadgetName]:
    """Return `n` distinct generated gadget names (deterministic for a seed; disjoint across namespaces)."""
    _check_namespace(namespace)
    rng = random.Random(f"gadget-names|{seed}|{namespace}")
    registry = _Registry()
    packages: list[str] = []
    modules: list[str] = []
    package_set: set[str] = set()
    module_set: set[str] = set()
    seen: set[str] = set()
    out: list[GadgetName] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could only draw {len(out)} distinct names out of {n}")
        r = rng.random()
        if modules and r < 0.25:
            module_path = rng.choice(modules)
            package = module_path.split(".", 1)[0]
        else:
            package = rng.choice(packages) if packages and r < 0.5 else _draw(rng, _package_candidate, namespace)
            module_path = _module_path(rng, package)
            if registry.module_clashes(module_path):
                continue
        kind = rng.choice(kinds)
        if kind == GadgetKind.FUNCTION:
            attr_path = _draw(rng, _function_candidate, namespace)
        elif kind == GadgetKind.CLASS:
            attr_path = _draw(rng, _class_candidate, namespace)
        else:
            existing = [a for a, k in registry.top.get(module_path, {}).items() if k == GadgetKind.CLASS]
            cls = rng.choice(existing) if existing and rng.random() < 0.5 else _draw(rng, _class_candidate, namespace)
            attr_path = f"{cls}.{_draw(rng, _function_candidate, namespace)}"
        name = GadgetName(package, module_path, attr_path, kind)
        if name.qualname in seen or registry.conflicts(module_path, name.top_attr, kind != GadgetKind.FUNCTION):
            continue
        seen.add(name.qualname)
        registry.record(name)
        out.append(name)
        if package not in package_set:
            package_set.add(package)
            packages.append(package)
        if module_path not in module_set:
            module_set.add(module_path)
            modules.append(module_path)
    return out


def _alias(rng: random.Random, module: str) -> str:
    """Return the name a host module binds a stdlib module to."""
    r = rng.random()
    if r < 0.55:
        return module
    if r < 0.8:
        return "_" + module
    short = {"subprocess": "sp", "builtins": "bi", "socket": "sock", "posix": "px", "os": "osmod"}[module]
    return rng.choice((short, "_" + short, f"{module}_mod", f"_{module}_impl"))


def generate_reexports(
    seed: int | str,
    n: int,
    *,
    namespace: str | None = None,
    targets: tuple[StdlibTarget, ...] = DANGEROUS_STDLIB_TARGETS,
) -> list[ReexportPath]:
    """Return `n` distinct re-export paths (generated host modules exposing dangerous stdlib callables, each in turn)."""
    _check_namespace(namespace)
    rng = random.Random(f"reexports|{seed}|{namespace}")
    hosts = generate_names(f"reexport-hosts|{seed}", n, namespace=namespace, kinds=(GadgetKind.FUNCTION,))
    out: list[ReexportPath] = []
    seen: set[str] = set()
    order: list[StdlibTarget] = []
    for host in hosts:
        if not order:  # every target once per round, in a seeded order
            order = list(targets)
            rng.shuffle(order)
        target = order.pop()
        for attempt in range(50):
            if attempt >= 10:  # this host already exposes the target under every alias drawn: take another
                target = rng.choice(targets)
            path = ReexportPath(host.package, host.module_path, _alias(rng, target.module), target)
            if path.qualname not in seen:
                break
        else:
            raise RuntimeError(f"could not draw a new re-export path in {host.module_path}")
        seen.add(path.qualname)
        out.append(path)
    return out
