"""Reading serialized Keras layer configs: the layers nested in one, dtype policies, flat values.

A serialized layer is ``{"class_name", "config", ...}`` (``keras.layers.serialize``; Keras 2 writes
the same two keys). Layers nest under ``config["cell"]`` (``RNN``), ``config["cells"]``
(``StackedRNNCells``) and ``config["layer"]`` / ``config["backward_layer"]`` (``Bidirectional``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

NESTED_KEYS = ("cell", "layer", "backward_layer")  # one serialized layer each; "cells" holds a list
# Keras dtype policy -> (the dtype it computes in, the dtype its variables are in); a plain dtype
# name is both.
POLICY_DTYPES = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}
MANTISSA_BITS = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}


def walk(serialized: dict, *, skip: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
    """(class_name, its config dict) for ``serialized`` and every layer nested in it, outer first,
    depth first; nested layers under the keys in ``skip`` are left out."""
    if not isinstance(serialized, dict):
        return
    inner = serialized.get("config", {})
    yield serialized.get("class_name", ""), inner
    for key in NESTED_KEYS:
        if key not in skip and isinstance(inner.get(key), dict):
            yield from walk(inner[key], skip=skip)
    if "cells" not in skip:
        for cell in inner.get("cells") or []:
            yield from walk(cell, skip=skip)


def rewrite(serialized: Any, change: Callable[[dict], dict]) -> Any:
    """A copy of ``serialized`` with ``change`` applied to it and to every layer nested in it,
    innermost first. ``change`` receives a serialized layer (``class_name``, ``config``,
    ``build_config``...) whose nested layers are already rewritten, and returns its replacement
    without modifying its argument."""
    if not isinstance(serialized, dict) or "config" not in serialized:
        return serialized
    inner = dict(serialized["config"])
    for key in NESTED_KEYS:
        if isinstance(inner.get(key), dict):
            inner[key] = rewrite(inner[key], change)
    if isinstance(inner.get("cells"), list):
        inner["cells"] = [rewrite(c, change) for c in inner["cells"]]
    return change({**serialized, "config": inner})


def policy_name(dtype: Any) -> str | None:
    """A layer config's ``dtype`` entry as a policy name: ``"float32"`` (Keras 2, or a plain name),
    Keras 3's serialized ``DTypePolicy`` ``{"config": {"name": ...}}``, or None."""
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name", dtype.get("class_name"))
    return None if dtype is None else str(dtype)


def compute_dtype(policy: str | None, default: str) -> str:
    """The dtype a layer with this policy computes in (``default`` when it has none)."""
    return default if policy is None else POLICY_DTYPES.get(policy, (policy, policy))[0]


def variable_dtype(policy: str) -> str:
    """The dtype a policy keeps its variables in: what a case's weights and inputs are drawn in."""
    return POLICY_DTYPES.get(policy, (policy, policy))[1]


def precision(serialized: dict, dtype: str) -> str:
    """The least precise dtype any layer of ``serialized`` computes in, starting from the case's
    ``dtype`` (a policy name too): a case's outputs are only as accurate as that; e.g. float32 for
    a float64 Bidirectional around a float32 LSTM, float16 for mixed_float16."""
    dtypes = [compute_dtype(dtype, dtype)] + [compute_dtype(policy_name(c.get("dtype")), dtype)
                                              for _, c in walk(serialized)]
    return min(dtypes, key=lambda d: MANTISSA_BITS.get(d, 0))


def numpy_dtype(name: str) -> np.dtype:
    """A float dtype by name; bfloat16 comes from ml_dtypes (ImportError naming it when missing).
    refimpl.base.dtype does the same for refimpl: the oracle side never imports the reference."""
    if name != "bfloat16":
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError:
        raise ImportError("bfloat16 arrays need ml_dtypes: pip install ml_dtypes") from None
    return np.dtype(ml_dtypes.bfloat16)


def is_float(dtype: Any) -> bool:
    """A float dtype, bfloat16 included (NumPy files ml_dtypes' bfloat16 as kind 'V')."""
    dtype = np.dtype(dtype)
    return dtype.kind == "f" or dtype.name == "bfloat16"


def channels_first(serialized: dict) -> bool:
    return any(c.get("data_format") == "channels_first" for _, c in walk(serialized))


def flat_values(serialized: dict, prefix: str = "") -> dict[str, Any]:
    """Every option in ``serialized`` as ``{"path.to.key": value}`` (names, dtypes and build
    details left out): what two configs are compared by."""
    out: dict[str, Any] = {}
    for key, value in serialized.items():
        if key in ("name", "dtype", "module", "registered_name", "build_config"):
            continue
        if isinstance(value, dict):
            out.update(flat_values(value, f"{prefix}{key}."))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, v in enumerate(value):
                out.update(flat_values(v, f"{prefix}{key}[{i}]."))
        else:
            out[prefix + key] = value
    return out
