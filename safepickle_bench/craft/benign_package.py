"""Throwaway packages of harmless user code under generated names, for benign pickles of user-defined objects.

The twin of `gadget_package`: the same generated names (`gadget_names.generate_names`), but every class is
a plain data holder and every function returns its input. The classes cover the ways real user classes
pickle: default reduction (NEWOBJ + BUILD, or `copyreg._reconstructor` at protocols 0-1), `__slots__`,
`__getstate__`/`__setstate__`, `__reduce__` returning the class with data arguments, `__reduce_ex__` with a
state, `__reduce__` returning a module-level rebuild function called with a string and a dict, dataclasses,
enums and namedtuples. Importing or loading any of it raises no dangerous audit event.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from safepickle_bench.craft.gadget_names import GadgetKind, GadgetName


class Shape(StrEnum):
    """How instances of a generated class pickle."""

    PLAIN = "plain"
    """Attributes in `__dict__`, default reduction."""
    SLOTS = "slots"
    """`__slots__`, default reduction (protocol 2 and above only, as in CPython)."""
    SETSTATE = "setstate"
    """`__getstate__` returning a versioned state, `__setstate__` restoring it."""
    REDUCE = "reduce"
    """`__reduce__` returning `(cls, data_args)`."""
    REDUCE_EX = "reduce_ex"
    """`__reduce_ex__(protocol)` returning `(cls, first_args, state_dict)`."""
    FACTORY = "factory"
    """`__reduce__` returning `(rebuild_function, (class_name, fields_dict))`."""
    DATACLASS = "dataclass"
    """A `dataclasses.dataclass` (sometimes frozen)."""
    ENUM = "enum"
    """An `enum.Enum` whose members pickle as `cls(value)`."""
    NAMEDTUPLE = "namedtuple"
    """A `collections.namedtuple` class."""


SHAPES_WITH_METHODS: tuple[Shape, ...] = (
    Shape.PLAIN, Shape.SLOTS, Shape.SETSTATE, Shape.REDUCE, Shape.REDUCE_EX, Shape.DATACLASS,
)
"""Shapes a class may take when the generator gave it methods."""

_FIELD_WORDS = ("name", "size", "dim", "rate", "labels", "vocab", "weights", "mode", "path", "steps", "scale",
                "layers", "config", "threshold", "tokens", "classes", "history", "version", "alpha", "items")


@dataclass
class BenignClass:
    """A generated harmless class: its name, shape, field names, methods and (FACTORY) rebuild function."""

    name: GadgetName
    shape: Shape
    fields: tuple[str, ...]
    methods: list[str] = field(default_factory=list)
    factory: GadgetName | None = None

    @property
    def module_path(self) -> str:
        """Return the module the class is defined in."""
        return self.name.module_path

    @property
    def class_name(self) -> str:
        """Return the class's attribute name in its module."""
        return self.name.top_attr


@dataclass
class BenignPlan:
    """The classes and functions of one throwaway package tree."""

    classes: list[BenignClass]
    functions: list[GadgetName]
    """Harmless module-level functions (referenced as values, or rebuild functions of FACTORY classes)."""


def plan_benign_package(names: Sequence[GadgetName], rng: random.Random) -> BenignPlan:
    """Turn generated names into harmless classes (one shape each), methods and functions."""
    classes: dict[tuple[str, str], BenignClass] = {}
    functions = [n for n in names if n.kind == GadgetKind.FUNCTION]
    for n in names:
        if n.kind == GadgetKind.FUNCTION:
            continue
        key = (n.module_path, n.top_attr)
        cls = classes.get(key)
        if cls is None:
            fields = tuple(rng.sample(_FIELD_WORDS, rng.randint(1, 4)))
            cls = classes[key] = BenignClass(GadgetName(n.package, n.module_path, n.top_attr, GadgetKind.CLASS),
                                             Shape.PLAIN, fields)
        if n.kind == GadgetKind.METHOD:
            cls.methods.append(n.attr_path.split(".", 1)[1])
    spare = list(functions)
    for cls in classes.values():
        shapes = SHAPES_WITH_METHODS if cls.methods else tuple(Shape)
        cls.shape = rng.choice(shapes)
        if cls.shape == Shape.FACTORY:
            if spare:
                cls.factory = spare.pop(rng.randrange(len(spare)))
            else:
                cls.shape = Shape.REDUCE
    return BenignPlan(list(classes.values()), functions)


# --------------------------------------------------------------------------- source writing


def _init(fields: tuple[str, ...], slots: bool = False) -> list[str]:
    """Return the lines of an `__init__` storing every field."""
    args = ", ".join(f"{f}=None" for f in fields)
    lines = [f"    def __init__(self, {args}):"]
    lines += [f"        self.{f} = {f}" for f in fields]
    return lines + [""]


def _methods(cls: BenignClass) -> list[str]:
    """Return harmless methods: each returns its first argument (or the object's first field)."""
    out = []
    for method in cls.methods:
        out += [f"    def {method}(self, *args, **kwargs):", '        """Return the given value unchanged."""',
                f"        return args[0] if args else getattr(self, {cls.fields[0]!r}, None)", ""]
    return out


def _class_source(cls: BenignClass, rebuild_import: str) -> str:
    """Return the source of one harmless class."""
    name, fields = cls.class_name, cls.fields
    doc = f'    """A {cls.shape.value} record with fields {", ".join(fields)}."""'
    if cls.shape == Shape.ENUM:
        members = [f"    {f.upper()} = {f!r}" for f in fields]
        return "\n".join([f"class {name}(_spb_enum.Enum):", doc, *members, ""]) + "\n"
    if cls.shape == Shape.NAMEDTUPLE:
        return f"{name} = _spb_collections.namedtuple({name!r}, {list(fields)!r}, defaults={[None] * len(fields)!r})\n"
    if cls.shape == Shape.DATACLASS:
        frozen = "frozen=True" if len(fields) % 2 else ""
        lines = [f"@_spb_dataclasses.dataclass({frozen})", f"class {name}:", doc]
        lines += [f"    {f}: object = None" for f in fields]
        return "\n".join([*lines, "", *_methods(cls)]) + "\n"
    lines = [f"class {name}:", doc, ""]
    if cls.shape == Shape.SLOTS:
        lines += [f"    __slots__ = {fields!r}", ""]
    lines += _init(fields)
    values = ", ".join(f"self.{f}" for f in fields)
    if cls.shape == Shape.SETSTATE:
        lines += ["    def __getstate__(self):", f"        return {{'version': 2, 'values': [{values}]}}", "",
                  "    def __setstate__(self, state):",
                  f"        for key, value in zip({fields!r}, state.get('values', ())):",
                  "            setattr(self, key, value)", ""]
    elif cls.shape == Shape.REDUCE:
        lines += ["    def __reduce__(self):", f"        return (self.__class__, ({values},))", ""]
    elif cls.shape == Shape.REDUCE_EX:
        rest = ", ".join(f"{f!r}: self.{f}" for f in fields[1:])
        lines += ["    def __reduce_ex__(self, protocol):",
                  f"        return (self.__class__, (self.{fields[0]},), {{{rest}}})", ""]
    elif cls.shape == Shape.FACTORY:
        lines += ["    def __reduce__(self):", f"        {rebuild_import}",
                  f"        return ({cls.factory.top_attr if cls.factory else ''}, "
                  f"({name!r}, dict(self.__dict__)))", ""]
    return "\n".join(lines + _methods(cls)) + "\n"


def _function_source(fn: GadgetName, builds: BenignClass | None) -> str:
    """Return a harmless function: a rebuild function for its FACTORY class, else an identity transform."""
    if builds is None:
        return (f"def {fn.top_attr}(value=None, *args, **kwargs):\n"
                '    """Return the value unchanged (a user-supplied transform)."""\n    return value\n')
    return (f"def {fn.top_attr}(kind, fields):\n    \"\"\"Rebuild a record from its kind and fields.\"\"\"\n"
            f"    from {builds.module_path} import {builds.class_name} as cls\n"
            "    obj = cls.__new__(cls)\n    obj.__dict__.update(fields)\n    return obj\n")


_PRELUDE = "import collections as _spb_collections\nimport dataclasses as _spb_dataclasses\nimport enum as _spb_enum\n"


def module_sources(plan: BenignPlan) -> dict[str, str]:
    """Return the source of every module of the plan (parents included), keyed by dotted module path."""
    builds = {c.factory.qualname: c for c in plan.classes if c.factory is not None}
    parts: dict[str, list[str]] = {}
    for fn in plan.functions:
        parts.setdefault(fn.module_path, []).append(_function_source(fn, builds.get(fn.qualname)))
    for cls in plan.classes:
        rebuild = f"from {cls.factory.module_path} import {cls.factory.top_attr}" if cls.factory else ""
        parts.setdefault(cls.module_path, []).append(_class_source(cls, rebuild))
    for module_path in list(parts):
        pieces = module_path.split(".")
        for i in range(1, len(pieces)):
            parts.setdefault(".".join(pieces[:i]), [])
    return {m: f'"""Generated module {m} (harmless user code)."""\n\n{_PRELUDE}\n\n' + "\n\n".join(body)
            for m, body in sorted(parts.items())}


def write_benign_package(root: Path | str, plan: BenignPlan) -> Path:
    """Write the plan's package tree under `root` (which must not hold it yet); return the sys.path entry."""
    root = Path(root)
    sources = module_sources(plan)
    for module_path in sources:
        target = root.joinpath(*module_path.split(".")) / "__init__.py"
        if target.exists():
            raise FileExistsError(f"{target} already exists: write each package into a fresh directory")
    for module_path, source in sources.items():
        directory = root.joinpath(*module_path.split("."))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text(source, encoding="utf-8")
    return root


def main_script_source(plan: BenignPlan) -> str:
    """Return a script defining the plan's classes and functions at top level (a `__main__` training script).

    FACTORY classes become REDUCE classes (the script has no module to import a rebuild function from);
    a name defined twice keeps its first definition.
    """
    body, seen = [], set()
    for cls in plan.classes:
        if cls.class_name not in seen:
            seen.add(cls.class_name)
            if cls.shape == Shape.FACTORY:
                cls.shape, cls.factory = Shape.REDUCE, None
            body.append(_class_source(cls, ""))
    for fn in plan.functions:
        if fn.top_attr not in seen:
            seen.add(fn.top_attr)
            body.append(_function_source(fn, None))
    return '"""A training script\'s own classes and functions."""\n\n' + _PRELUDE + "\n\n" + "\n\n".join(body)

