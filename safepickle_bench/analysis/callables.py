"""Callables with static semantics of their own: a table of names, each with what evaluating it means.

`SPECIAL_CALLABLES` maps a callable's dotted name to one `Special` member; the engine evaluates a call of
such a callable with the member's semantics (see `calls.py`). Every other callable builds an opaque `Obj`.
"""

from __future__ import annotations

from enum import Enum

from safepickle_bench.analysis.decoders import DECODE_CALLABLES

LOADS_CALLABLES = frozenset(
    {
        "pickle.loads",
        "pickle._loads",
        "_pickle.loads",
        "dill.loads",
        "dill._dill.loads",
        "cloudpickle.loads",
        "cloudpickle.cloudpickle.loads",
        "cloudpickle.cloudpickle_fast.loads",
        "numpy.loads",
        "numpy.core.numeric.loads",
        "numpy._core.numeric.loads",
        "joblib.numpy_pickle.loads",
        "pickle5.loads",
        "srsly.pickle_loads",
        "torch.serialization._load",
    }
)
"""Callables that unpickle bytes given as first argument."""
LOAD_FILE_CALLABLES = frozenset(
    {
        "pickle.load",
        "pickle._load",
        "_pickle.load",
        "dill.load",
        "dill._dill.load",
        "cloudpickle.load",
        "torch.load",
        "torch.serialization.load",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "numpy.load",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
    }
)
"""Callables that unpickle a file object given as first argument."""
UNPICKLER_CLASSES = frozenset(
    {"pickle.Unpickler", "pickle._Unpickler", "_pickle.Unpickler", "dill.Unpickler", "dill._dill.Unpickler"}
)
GETATTR_CALLABLES = frozenset({"builtins.getattr", "builtins.object.__getattribute__"})
ATTRGETTER_CALLABLES = frozenset({"_operator.attrgetter", "operator.attrgetter"})
METHODCALLER_CALLABLES = frozenset({"_operator.methodcaller", "operator.methodcaller"})
PARTIAL_CALLABLES = frozenset({"functools.partial", "_functools.partial"})
IMPORT_CALLABLES = frozenset({"builtins.__import__", "importlib.__import__"})
IMPORT_MODULE_CALLABLES = frozenset({"importlib.import_module", "importlib._bootstrap._gcd_import"})
GETITEM_CALLABLES = frozenset(
    {"_operator.getitem", "operator.getitem", "builtins.dict.get", "builtins.dict.__getitem__"}
)
SYS_MODULES_GET = frozenset({"sys.modules.get", "sys.modules.__getitem__"})
MAP_CALLABLES = frozenset({"builtins.map", "builtins.filter", "itertools.starmap"})
RECONSTRUCTOR_CALLABLES = frozenset({"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"})
"""Callables that build an instance of the class given as first argument (protocol 0-1 objects)."""
JOBLIB_WRAPPERS = frozenset(
    {"joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"}
)


class Special(Enum):
    """What calling a special callable means statically."""

    GETATTR = "getattr"
    """getattr(obj, name): an attribute of a module or class is an import of that dotted name."""
    ATTRGETTER = "attrgetter"
    """operator.attrgetter(*names): a getter whose later call reads those attributes."""
    METHODCALLER = "methodcaller"
    """operator.methodcaller(name, *args): a caller whose later call calls that method."""
    PARTIAL = "partial"
    """functools.partial(func, *args): a later call of it is a call of func with the args prepended."""
    IMPORT = "import"
    """__import__(name, globals, locals, fromlist): the module (its top package without a fromlist)."""
    IMPORT_MODULE = "import_module"
    """importlib.import_module(name): the module itself."""
    GETITEM = "getitem"
    """getitem(container, key): an item of a literal container, or a module of sys.modules."""
    SYS_MODULES_GET = "sys_modules_get"
    """sys.modules.get(name): the module itself."""
    DECODE = "decode"
    """A pure decoder (base64, hex, codecs, decompressors): evaluated on literal arguments, output bounded."""
    LOADS = "loads"
    """Unpickles bytes given as first argument: they are read as a nested stream."""
    LOAD_FILE = "load_file"
    """Unpickles a file object given as first argument: a BytesIO of bytes is read as a nested stream."""
    MAP = "map"
    """map/filter/starmap(func, iterable): func is called too (recorded as a call of its own)."""
    UNPICKLER_LOAD = "unpickler_load"
    """Unpickler.load(unpickler): the unpickler's BytesIO bytes are read as a nested stream."""
    RECONSTRUCTOR = "reconstructor"
    """copyreg reconstructors: build an instance of the class given as first argument."""


_GROUPS: tuple[tuple[Special, frozenset[str]], ...] = (
    (Special.GETATTR, GETATTR_CALLABLES),
    (Special.ATTRGETTER, ATTRGETTER_CALLABLES),
    (Special.METHODCALLER, METHODCALLER_CALLABLES),
    (Special.PARTIAL, PARTIAL_CALLABLES),
    (Special.IMPORT, IMPORT_CALLABLES),
    (Special.IMPORT_MODULE, IMPORT_MODULE_CALLABLES),
    (Special.GETITEM, GETITEM_CALLABLES),
    (Special.SYS_MODULES_GET, SYS_MODULES_GET),
    (Special.DECODE, DECODE_CALLABLES),
    (Special.LOADS, LOADS_CALLABLES),
    (Special.LOAD_FILE, LOAD_FILE_CALLABLES),
    (Special.MAP, MAP_CALLABLES),
    (Special.UNPICKLER_LOAD, frozenset(f"{c}.load" for c in UNPICKLER_CLASSES)),
    (Special.RECONSTRUCTOR, RECONSTRUCTOR_CALLABLES),
)


def _table() -> dict[str, Special]:
    """Build the name -> semantics table; a name in two groups is a mistake in the groups."""
    table: dict[str, Special] = {}
    for special, names in _GROUPS:
        for name in names:
            if name in table:
                raise ImportError(f"{name} has two semantics: {table[name].name} and {special.name}")
            table[name] = special
    return table


SPECIAL_CALLABLES: dict[str, Special] = _table()
"""Dotted callable name -> its static semantics."""
