"""Read PyTorch checkpoints without PyTorch.

A ``torch.save`` file is a zip archive holding ``data.pkl`` (a pickle of the
object tree) and one raw file per tensor storage. The pickle may only name a
handful of classes; anything else is refused, so loading a checkpoint can never
run arbitrary code.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

# torch storage class name -> numpy dtype of its raw bytes (little-endian)
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a checkpoint this reader can safely load."""


class _StorageType:
    def __init__(self, dtype: type) -> None:
        self.dtype = dtype


def _rebuild_tensor(
    storage: np.ndarray,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_ignored: Any,
) -> np.ndarray:
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:],
        shape=tuple(size),
        strides=tuple(s * itemsize for s in stride),
    )
    return np.array(view)  # own the memory, detached from the storage buffer


def _rebuild_parameter(data: np.ndarray, *_ignored: Any) -> np.ndarray:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise CheckpointError(f"checkpoint refers to {module}.{name}, which is not allowed")

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unsupported persistent id {pid!r}")
        raw = self._archive.read(f"{self._prefix}/data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype, count=int(numel))


def load_checkpoint(path: str | Path) -> Any:
    """Load the object tree of a zip-format torch checkpoint, tensors as numpy arrays."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path} is not a zip-format torch checkpoint") from exc
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path} has no single data.pkl")
        prefix = pickles[0].rsplit("/", 1)[0]
        return _RestrictedUnpickler(archive, prefix, archive.read(pickles[0])).load()
