"""Writers for the three PyTorch file layouts seen in the wild: torch>=2 zip, torch 1.6-1.13 zip, legacy."""

from __future__ import annotations

import inspect
import io
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

TORCH_FORMATS = ("zip", "zip_archive", "legacy")
CONTAINER_OF_FORMAT = {"zip": "torch_zip", "zip_archive": "torch_zip_archive", "legacy": "torch_legacy"}
# Records a torch 1.6-1.13 zip holds (`archive/data.pkl`, `archive/data/N`, `archive/version`); newer torch
# also writes `.format_version`, `.storage_alignment`, `byteorder` and `.data/serialization_id`.
_OLD_ZIP_RECORDS = ("data.pkl", "version")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def save_torch(
    obj: Any, path: Path, fmt: str, rng: np.random.Generator, protocol: int = 2, source_file: str = ""
) -> str:
    """Save `obj` at `path` in the given torch layout and return the manifest container name."""
    import torch

    _intern_rnn_names(obj)
    if fmt == "zip":
        torch.save(obj, path, pickle_protocol=protocol)
    elif fmt == "zip_archive":
        buffer = io.BytesIO()
        torch.save(obj, buffer, pickle_protocol=protocol)
        path.write_bytes(_as_torch1_zip(buffer.getvalue()))
    elif fmt == "legacy":
        with open(path, "wb") as handle:
            _legacy_save(obj, handle, protocol, rng, source_file)
    else:
        raise ValueError(f"unknown torch format {fmt!r}; expected one of {TORCH_FORMATS}")
    return CONTAINER_OF_FORMAT[fmt]


def _intern_rnn_names(obj: Any, depth: int = 0) -> None:
    """Intern the parameter-name strings of RNN modules inside `obj` (in place).

    Pickle memoises by object identity: an LSTM's `_flat_weights_names` may or may not be the very string
    objects used as `_parameters` keys, so equal modules could pickle to different bytes. Interning makes
    every occurrence one object, hence one memo entry, hence reproducible bytes.
    """
    import sys
    from collections import OrderedDict

    from torch import nn

    if depth > 4:
        return
    if isinstance(obj, dict):
        for value in obj.values():
            _intern_rnn_names(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _intern_rnn_names(value, depth + 1)
    elif isinstance(obj, nn.Module):
        for module in obj.modules():
            if isinstance(module, nn.RNNBase):
                module._flat_weights_names = [sys.intern(n) for n in module._flat_weights_names]
                module._all_weights = [[sys.intern(n) for n in names] for names in module._all_weights]
                module._parameters = OrderedDict((sys.intern(k), v) for k, v in module._parameters.items())


def _as_torch1_zip(data: bytes) -> bytes:
    """Rewrite a torch>=2 zip into the torch 1.6-1.13 layout (`archive/`, no alignment/format records)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        names = src.namelist()
        prefix = names[0].split("/", 1)[0]
        wanted = [f"{prefix}/data.pkl"]
        wanted += sorted(
            (n for n in names if n.startswith(f"{prefix}/data/")), key=lambda n: int(n.rsplit("/", 1)[1])
        )
        wanted.append(f"{prefix}/version")
        for name in wanted:
            info = zipfile.ZipInfo("archive/" + name.split("/", 1)[1], date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            dst.writestr(info, src.read(name))
    return out.getvalue()


def _legacy_save(obj: Any, handle: Any, protocol: int, rng: np.random.Generator, source_file: str) -> None:
    """Write the pre-1.6 torch format with pseudo-address storage keys drawn from `rng` (reproducible)."""
    import torch
    import torch.nn as nn
    from torch import serialization as ser

    storages: dict[str, tuple[Any, Any]] = {}
    keys_by_cdata: dict[int, str] = {}
    seen_types: set[type] = set()
    address = [int(rng.integers(93_000_000_000_000, 94_900_000_000_000)) // 16 * 16]

    def next_key() -> str:
        address[0] += int(rng.integers(4, 1 << 16)) * 16
        return str(address[0])

    class LegacyPickler(pickle.Pickler):
        def persistent_id(self, o: Any) -> tuple | None:
            if isinstance(o, type) and issubclass(o, nn.Module):
                if o in seen_types:
                    return None
                seen_types.add(o)
                try:
                    source = inspect.getsource(o)
                except (OSError, TypeError):
                    source = None
                return ("module", o, source_file or None, source)
            if isinstance(o, torch.storage.TypedStorage):
                storage, dtype = o._untyped_storage, o.dtype
                storage_type, numel = getattr(torch, o._pickle_storage_type()), o._size()
            elif torch.is_storage(o):
                storage, dtype = o, torch.uint8
                storage_type, numel = ser.normalize_storage_type(type(o)), o.nbytes()
            else:
                return None
            key = keys_by_cdata.get(storage._cdata)
            if key is None:
                key = keys_by_cdata[storage._cdata] = next_key()
                storages[key] = (storage, dtype)
            return ("storage", storage_type, key, ser.location_tag(storage), numel, None)

    sys_info = {
        "protocol_version": ser.PROTOCOL_VERSION,
        "little_endian": sys.byteorder == "little",
        "type_sizes": {"short": ser.SHORT_SIZE, "int": ser.INT_SIZE, "long": ser.LONG_SIZE},
    }
    pickle.dump(ser.MAGIC_NUMBER, handle, protocol=protocol)
    pickle.dump(ser.PROTOCOL_VERSION, handle, protocol=protocol)
    pickle.dump(sys_info, handle, protocol=protocol)
    LegacyPickler(handle, protocol=protocol).dump(obj)
    keys = list(storages)  # increasing pseudo-addresses of equal width: insertion order == sorted order
    pickle.dump(keys, handle, protocol=protocol)
    handle.flush()
    for key in keys:
        storage, dtype = storages[key]
        storage._write_file(handle, ser._should_read_directly(handle), True, torch._utils._element_size(dtype))
