"""Standard-library objects in training configs and model metadata, pickled at protocols 0-5 and Python-2 style.

Two writers: the real `pickle` module (protocols 0-5; below 3 with `fix_imports`, so builtins, copyreg and
moved modules are named as Python 2 named them: `__builtin__`, `copy_reg`, `urlparse`), and a small writer
of the opcodes Python 2 emitted that Python 3 no longer does (`S'...'` / `U` byte strings for `str`, `L...L`
longs, `copy_reg._reconstructor` for old-style instances). Every value is something real metadata holds.
"""

from __future__ import annotations

import argparse
import array
import collections
import datetime as dt
import decimal
import fractions
import functools
import http
import io
import ipaddress
import pathlib
import pickle
import re
import struct
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.datasets.carriers import FIXED_WORKDIR, CarrierFile, Producer

_NAMES = ("config.pkl", "metadata.pkl", "training_args.pkl", "hparams.pkl", "run_info.pickle", "args.pkl",
          "meta.p", "state.pkl", "experiment.pkl", "dataset_info.pkl")
_TASKS = ("text-classification", "ner", "translation", "image-classification", "regression", "forecasting")
_MODELS = ("bert-base", "resnet50", "lstm", "xgb", "t5-small", "gpt2", "vit-b16", "tabnet", "prophet")
_PATTERNS = (r"\s+", r"[^a-z0-9 ]", r"^\d{4}-\d{2}-\d{2}$", r"(?P<key>\w+)=(?P<value>[^,]+)", r"<[^>]+>",
             r"https?://\S+", r"[A-Z][a-z]+", r"\b(?:the|a|an)\b", r"#+\s*(.*)", r"([.!?])\s+")


def _pick(rng: np.random.Generator, items: tuple[Any, ...]) -> Any:
    """Return one item of a tuple (numpy's choice would turn strings into numpy scalars)."""
    return items[int(rng.integers(len(items)))]


def _timestamp(rng: np.random.Generator, tz: bool) -> dt.datetime:
    """Return a seeded datetime between 2015 and 2025, optionally with a fixed-offset timezone."""
    base = dt.datetime(2015, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 10 * 365 * 86400)),
                                                  microseconds=int(rng.integers(0, 10**6)))
    if not tz:
        return base
    zone = dt.UTC if rng.random() < 0.5 else dt.timezone(dt.timedelta(hours=int(rng.integers(-8, 10))))
    return base.replace(tzinfo=zone)


def _value_makers() -> dict[str, Callable[[np.random.Generator], Any]]:
    """Return the named makers of one stdlib value each."""
    return {
        "created": lambda r: _timestamp(r, tz=bool(r.random() < 0.5)),
        "date": lambda r: _timestamp(r, tz=False).date(),
        "time_of_day": lambda r: dt.time(int(r.integers(24)), int(r.integers(60)), int(r.integers(60))),
        "train_duration": lambda r: dt.timedelta(seconds=float(round(r.uniform(10, 10**6), 3))),
        "timezone": lambda r: dt.timezone(dt.timedelta(minutes=30 * int(r.integers(-16, 20)))),
        "learning_rate": lambda r: decimal.Decimal(f"{r.uniform(1e-5, 1e-2):.6f}"),
        "split_ratio": lambda r: fractions.Fraction(int(r.integers(1, 9)), 10),
        "tokenizer_pattern": lambda r: re.compile(_pick(r, _PATTERNS), int(_pick(r, (0, re.I, re.M, re.I | re.S)))),
        "class_weights": lambda r: array.array(_pick(r, ("f", "d")), r.random(int(r.integers(2, 12))).round(4).tolist()),
        "token_ids": lambda r: array.array(_pick(r, ("i", "l", "H")), r.integers(0, 30000, int(r.integers(3, 40))).tolist()),
        "label_counts": lambda r: collections.Counter({f"label_{i}": int(r.integers(1, 5000)) for i in range(int(r.integers(2, 8)))}),
        "layer_order": lambda r: collections.OrderedDict((f"layer{i}", int(r.integers(16, 1024))) for i in range(int(r.integers(2, 8)))),
        "aliases": lambda r: collections.defaultdict(list, {_pick(r, _MODELS): [f"v{int(r.integers(1, 9))}"]}),
        "recent_losses": lambda r: collections.deque(r.random(int(r.integers(2, 10))).round(4).tolist(), maxlen=10),
        "init_scale": lambda r: complex(round(float(r.normal()), 4), round(float(r.normal()), 4)),
        "labels": lambda r: {f"L{int(v)}" for v in r.integers(0, 50, int(r.integers(2, 8)))},
        "frozen_layers": lambda r: frozenset(int(v) for v in r.integers(0, 24, int(r.integers(1, 6)))),
        "header": lambda r: bytearray(r.integers(0, 256, int(r.integers(4, 32)), dtype=np.uint8).tobytes()),
        "epochs": lambda r: range(0, int(r.integers(2, 100)), int(r.integers(1, 4))),
        "window": lambda r: slice(int(r.integers(0, 10)), int(r.integers(10, 512)), None),
        "run_id": lambda r: uuid.UUID(bytes=r.integers(0, 256, 16, dtype=np.uint8).tobytes(), version=4),
        "output_dir": lambda r: pathlib.PurePosixPath(FIXED_WORKDIR, "runs", f"run-{int(r.integers(1000))}"),
        "data_dir": lambda r: pathlib.PosixPath(FIXED_WORKDIR, "data", _pick(r, ("train", "valid", "raw"))),
        "status": lambda r: _pick(r, (http.HTTPStatus.OK, http.HTTPStatus.CREATED, http.HTTPStatus.NOT_FOUND)),
        "regex_flags": lambda r: _pick(r, (re.RegexFlag.IGNORECASE, re.RegexFlag.MULTILINE, re.RegexFlag.VERBOSE)),
        "server": lambda r: ipaddress.IPv4Address(f"127.0.0.{int(r.integers(1, 255))}"),
        "allowed_net": lambda r: ipaddress.ip_network(_pick(r, ("10.0.0.0/8", "192.168.0.0/16", "::1/128"))),
        "tracking_uri": lambda r: urllib.parse.urlsplit(f"http://127.0.0.1:{int(r.integers(5000, 9000))}/api"),
        "optimizer_factory": lambda r: functools.partial(dict, lr=float(round(r.uniform(1e-5, 1e-2), 6)),
                                                         betas=(0.9, 0.999)),
        "default_dtype": lambda r: functools.partial(decimal.Decimal, context=None),
        "struct_time": lambda r: time.gmtime(int(r.integers(1.4e9, 1.7e9))),
        "cli_args": lambda r: argparse.Namespace(model=_pick(r, _MODELS), seed=int(r.integers(100)),
                                                 fp16=bool(r.random() < 0.5)),
        "request_method": lambda r: _pick(r, tuple(http.HTTPMethod)),
    }


def make_config(rng: np.random.Generator) -> dict[str, Any]:
    """Return a training-config or metadata dict holding a seeded subset of stdlib values."""
    makers = _value_makers()
    names = sorted(makers)
    chosen = rng.choice(len(names), size=int(rng.integers(3, 12)), replace=False)
    values = {names[int(i)]: makers[names[int(i)]](rng) for i in sorted(chosen)}
    config: dict[str, Any] = {
        "model_name": _pick(rng, _MODELS),
        "task": _pick(rng, _TASKS),
        "seed": int(rng.integers(0, 10**4)),
        "batch_size": int(2 ** rng.integers(3, 9)),
    }
    layout = int(rng.integers(3))
    if layout == 0:
        config.update(values)
    elif layout == 1:
        config["metadata"] = values
    else:
        config["history"] = [{"epoch": e, **values} for e in range(int(rng.integers(1, 3)))]
    return config


# --------------------------------------------------------------------------- hand-written Python 2 pickles


class _Py2Writer:
    """Writes the opcodes Python 2's pickle emitted for plain data (bytes `str`, longs, old-style objects)."""

    def __init__(self, protocol: int) -> None:
        self.protocol = protocol
        self.out = io.BytesIO()
        self.memo = 0

    def _put(self) -> None:
        """Memoise the top of the stack as Python 2 did after every container and string."""
        if self.protocol == 0:
            self.out.write(b"p%d\n" % self.memo)
        elif self.memo < 256:
            self.out.write(b"q" + bytes([self.memo]))
        else:
            self.out.write(b"r" + struct.pack("<I", self.memo))
        self.memo += 1

    def _global(self, module: str, name: str) -> None:
        self.out.write(b"c" + module.encode() + b"\n" + name.encode() + b"\n")
        self._put()

    def _str(self, text: str) -> None:
        """Write a `str`: Python 2 byte strings for ASCII text, `unicode` otherwise."""
        raw = text.encode("utf-8")
        if text.isascii():
            if self.protocol == 0:
                self.out.write(b"S" + repr(text).encode() + b"\n")
            elif len(raw) < 256:
                self.out.write(b"U" + bytes([len(raw)]) + raw)
            else:
                self.out.write(b"T" + struct.pack("<i", len(raw)) + raw)
        elif self.protocol == 0:
            self.out.write(b"V" + text.encode("raw_unicode_escape") + b"\n")
        else:
            self.out.write(b"X" + struct.pack("<I", len(raw)) + raw)
        self._put()

    def _int(self, value: int) -> None:
        small = -(2**31) <= value < 2**31
        if self.protocol == 2 and not small:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out.write(b"\x8a" + bytes([len(raw)]) + raw)
        elif self.protocol == 0 or not small:
            self.out.write(b"I%d\n" % value if small else b"L%dL\n" % value)
        elif 0 <= value < 256:
            self.out.write(b"K" + bytes([value]))
        elif 0 <= value < 65536:
            self.out.write(b"M" + struct.pack("<H", value))
        else:
            self.out.write(b"J" + struct.pack("<i", value))

    def _float(self, value: float) -> None:
        self.out.write(b"F" + repr(value).encode() + b"\n" if self.protocol == 0 else b"G" + struct.pack(">d", value))

    def _items(self, pairs: list[tuple[Any, Any]]) -> None:
        """Write SETITEM for one pair, MARK ... SETITEMS for more (binary protocols)."""
        if len(pairs) > 1:
            self.out.write(b"(")
        for k, v in pairs:
            self.save(k)
            self.save(v)
        self.out.write(b"u" if len(pairs) > 1 else b"s")

    def save(self, obj: Any) -> None:
        """Write one object (raises TypeError for anything Python 2 code would not have held)."""
        if obj is None:
            self.out.write(b"N")
        elif obj is True or obj is False:
            if self.protocol == 2:
                self.out.write(b"\x88" if obj else b"\x89")
            else:
                self.out.write(b"I01\n" if obj else b"I00\n")
        elif isinstance(obj, int):
            self._int(obj)
        elif isinstance(obj, float):
            self._float(obj)
        elif isinstance(obj, str):
            self._str(obj)
        elif isinstance(obj, tuple):
            short = self.protocol == 2 and len(obj) <= 3
            if not short:
                self.out.write(b"(")
            for v in obj:
                self.save(v)
            self.out.write(b")\x85\x86\x87"[len(obj):len(obj) + 1] if short else b"t")
            self._put()
        elif isinstance(obj, list):
            self.out.write(b"(lp%d\n" % self.memo if self.protocol == 0 else b"]")
            if self.protocol == 0:
                self.memo += 1
            else:
                self._put()
            batch = self.protocol > 0 and len(obj) > 1
            if batch:
                self.out.write(b"(")
            for v in obj:
                self.save(v)
                if not batch:
                    self.out.write(b"a")
            if batch:
                self.out.write(b"e")
        elif isinstance(obj, collections.OrderedDict):  # Python 2: OrderedDict(list of [key, value] lists)
            self._global("collections", "OrderedDict")
            self.out.write(b"(")
            self.save([[k, v] for k, v in obj.items()])
            self.out.write(b"tR")
            self._put()
        elif isinstance(obj, dict):
            self.out.write(b"(dp%d\n" % self.memo if self.protocol == 0 else b"}")
            if self.protocol == 0:
                self.memo += 1
                for k, v in obj.items():
                    self.save(k)
                    self.save(v)
                    self.out.write(b"s")
            else:
                self._put()
                if obj:
                    self._items(list(obj.items()))
        elif isinstance(obj, (set, frozenset)):
            self._global("__builtin__", type(obj).__name__)
            self.out.write(b"(")
            self.save(sorted(obj, key=repr))
            self.out.write(b"tR")
            self._put()
        elif isinstance(obj, complex):
            self._global("__builtin__", "complex")
            self.out.write(b"(")
            self._float(obj.real)
            self._float(obj.imag)
            self.out.write(b"tR")
            self._put()
        elif isinstance(obj, decimal.Decimal):
            self._global("decimal", "Decimal")
            self.out.write(b"(")
            self._str(str(obj))
            self.out.write(b"tR")
            self._put()
        elif isinstance(obj, argparse.Namespace):  # an instance rebuilt by copy_reg._reconstructor, then BUILD
            self._global("copy_reg", "_reconstructor")
            self.out.write(b"(")
            self._global("argparse", "Namespace")
            self._global("__builtin__", "object")
            self.out.write(b"NtR")
            self._put()
            self.save(dict(vars(obj)))
            self.out.write(b"b")
        else:
            raise TypeError(f"no Python 2 spelling for {type(obj).__name__}")

    def dumps(self, obj: Any) -> bytes:
        """Return the whole pickle of `obj` (a PROTO header at protocol 2, as Python 2 wrote it)."""
        if self.protocol >= 2:
            self.out.write(b"\x80\x02")
        self.save(obj)
        self.out.write(b".")
        return self.out.getvalue()


def make_py2_config(rng: np.random.Generator) -> dict[str, Any]:
    """Return a config of the value types a Python 2 training script pickled."""
    config: dict[str, Any] = {
        "model": _pick(rng, _MODELS),
        "n_epochs": int(rng.integers(1, 200)),
        "lr": float(round(rng.uniform(1e-5, 1e-1), 6)),
        "use_gpu": bool(rng.random() < 0.5),
        "dropout": None if rng.random() < 0.3 else float(round(rng.uniform(0, 0.6), 2)),
        "vocab_size": int(rng.integers(1000, 2**40 if rng.random() < 0.2 else 60000)),
        "layers": [int(rng.integers(16, 1024)) for _ in range(int(rng.integers(1, 5)))],
        "input_shape": (int(rng.integers(1, 64)), int(rng.integers(1, 512))),
        "labels": {f"label_{i}" for i in range(int(rng.integers(2, 6)))},
        "author": _pick(rng, ("anne", "jos\u00e9", "li", "fran\u00e7ois", "ola")),
    }
    extras: list[tuple[str, Callable[[], Any]]] = [
        ("layer_sizes", lambda: collections.OrderedDict((f"fc{i}", int(rng.integers(8, 512))) for i in range(3))),
        ("init", lambda: complex(round(float(rng.normal()), 3), round(float(rng.normal()), 3))),
        ("momentum", lambda: decimal.Decimal(f"{rng.uniform(0.5, 0.99):.3f}")),
        ("args", lambda: argparse.Namespace(batch=int(rng.integers(8, 256)), optimizer=_pick(rng, ("sgd", "adam")))),
        ("history", lambda: {"loss": [float(round(v, 4)) for v in rng.random(int(rng.integers(2, 8)))]}),
    ]
    for key, make in extras:
        if rng.random() < 0.6:
            config[key] = make()
    return config


# --------------------------------------------------------------------------- producers


def make_stdlib_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`pickle.dump` of a config/metadata dict of stdlib objects at a protocol from 0 to 5."""
    protocol = int(rng.integers(0, 6))
    name = _pick(rng, _NAMES)
    (out_dir / name).write_bytes(pickle.dumps(make_config(rng), protocol=protocol))
    return [CarrierFile(name, f"stdlib_config_p{protocol}", "pickle", "pickle")]


def make_py2_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """A Python-2-era pickle (protocol 0, 1 or 2) of a training config, in the opcodes Python 2 wrote."""
    protocol = int(rng.integers(0, 3))
    name = _pick(rng, ("config.pkl", "params.p", "model_meta.pickle", "settings.pkl"))
    (out_dir / name).write_bytes(_Py2Writer(protocol).dumps(make_py2_config(rng)))
    return [CarrierFile(name, f"py2_config_p{protocol}", "pickle", "pickle")]


def make_fix_imports_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """Python 3's own Python-2-compatible output (protocol 0-2, `fix_imports`) of a stdlib metadata dict."""
    protocol = int(rng.integers(0, 3))
    name = _pick(rng, _NAMES)
    (out_dir / name).write_bytes(pickle.dumps(make_config(rng), protocol=protocol, fix_imports=True))
    return [CarrierFile(name, f"stdlib_config_compat_p{protocol}", "pickle", "pickle")]


def make_single_value(rng: np.random.Generator) -> Any:  # noqa: ANN401 - any picklable value
    """Return one small value as scripts pickle on its own: a score, a count, a label list, a flag, a date."""
    kind = int(rng.integers(9))
    if kind == 0:
        return float(round(rng.uniform(0, 1), int(rng.integers(2, 8))))
    if kind == 1:
        return int(rng.integers(-10, 10**int(rng.integers(1, 12))))
    if kind == 2:
        return _pick(rng, (True, False, None))
    if kind == 3:
        return _pick(rng, _MODELS + _TASKS)
    if kind == 4:
        return [f"label_{i}" for i in range(int(rng.integers(1, 6)))]
    if kind == 5:
        return tuple(int(v) for v in rng.integers(1, 512, int(rng.integers(1, 4))))
    if kind == 6:
        return {_pick(rng, ("best", "epoch", "step", "acc", "loss")): float(round(rng.uniform(0, 1), 4))}
    if kind == 7:
        return bytes(rng.integers(0, 256, int(rng.integers(1, 24)), dtype=np.uint8).tobytes())
    makers = _value_makers()
    names = sorted(makers)
    return makers[names[int(rng.integers(len(names)))]](rng)


def make_single_value_pickle(rng: np.random.Generator, out_dir: Path) -> list[CarrierFile]:
    """`pickle.dump` of ONE small value (a few opcodes: as small as a payload) at a protocol from 0 to 5."""
    protocol = int(rng.integers(0, 6))
    name = _pick(rng, ("best_score.pkl", "labels.pkl", "step.pkl", "classes.pickle", "threshold.p", "value.pkl",
                       "last_epoch.pkl", "vocab_size.pkl"))
    (out_dir / name).write_bytes(pickle.dumps(make_single_value(rng), protocol=protocol))
    return [CarrierFile(name, f"stdlib_single_value_p{protocol}", "pickle", "pickle")]


PRODUCERS = [
    Producer("stdlib.config", make_stdlib_pickle, weight=1.0),
    Producer("stdlib.single_value", make_single_value_pickle, weight=1.0),
    Producer("stdlib.py2_config", make_py2_pickle, weight=0.5),
    Producer("stdlib.compat_config", make_fix_imports_pickle, weight=0.5),
]
