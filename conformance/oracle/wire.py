"""Messages between a process and its worker: a JSON header and NumPy arrays in one ``.npz``.

Nested lists of arrays (weights, calls, initial states, dropout masks) travel as JSON trees whose
leaves are array names ("a0", "a1", ...); ``None`` and strings stay as they are. Each message is
an 8-byte little-endian length and the archive's bytes. Loaded with ``allow_pickle=False``.
bfloat16 arrays (which ``.npy`` cannot describe) travel as float32, exactly, named as bfloat16.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any, BinaryIO

import numpy as np



def _encode(tree: Any, store: dict) -> Any:
    if tree is None or isinstance(tree, (str, bool, int, float)):
        return tree
    if isinstance(tree, dict):
        return {k: _encode(v, store) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_encode(v, store) for v in tree]
    key, array = f"a{len(store)}", np.asarray(tree)
    if array.dtype.name == "bfloat16":
        store[key] = array.astype(np.float32)  # exact: every bfloat16 is a float32
        return {"__array__": key, "dtype": "bfloat16"}
    store[key] = array
    return {"__array__": key}


def _decode(tree: Any, npz: Any) -> Any:
    if isinstance(tree, dict):
        if "__array__" in tree:
            array = npz[tree["__array__"]]
            if "dtype" not in tree:
                return array
            # Imported here: the historical worker (theano_worker.py) loads this file alone, under
            # a Python whose NumPy predates this package; bfloat16 never travels to it.
            from conformance.configs import numpy_dtype
            return array.astype(numpy_dtype(tree["dtype"]))
        return {k: _decode(v, npz) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_decode(v, npz) for v in tree]
    return tree


def send(stream: BinaryIO, meta: dict, arrays: dict) -> None:
    store: dict = {}
    header = {"meta": meta, "arrays": _encode(arrays, store)}
    buf = io.BytesIO()
    np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **store)
    data = buf.getvalue()
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> dict | None:
    """The message's meta dict with its arrays merged in; None at end of stream."""
    head = stream.read(8)
    if not head:
        return None
    if len(head) < 8:
        raise EOFError("truncated message")
    (size,) = struct.unpack("<Q", head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("truncated message")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        header = json.loads(npz["__header__"].tobytes())
        return {**header["meta"], **_decode(header["arrays"], npz)}
