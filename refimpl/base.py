"""What every refimpl layer and cell shares: argument checks, the dtype rule, weight bookkeeping,
and the class registry ``deserialize`` reads.

Nothing here computes a recurrence; see the cell modules and ``rnn.py`` for that.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

import numpy as np

from refimpl._typing import Array, Config

# Keras keyword arguments that never change the forward numbers. Keras itself only reads them when
# building a functional model (shape hints) or when training (regularizers, constraints).
SHAPE_HINTS = ("input_shape", "batch_input_shape", "batch_size", "input_dim", "input_length")
TRAINING_ONLY = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                 "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint")

# Keras dtype policy name -> (compute dtype, variable dtype). bfloat16 needs ml_dtypes (``dtype``).
POLICIES = {
    "float16": ("float16", "float16"),
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "bfloat16": ("bfloat16", "bfloat16"),
    "mixed_float16": ("float16", "float32"),
    "mixed_bfloat16": ("bfloat16", "float32"),
}


def dtype(name: str) -> np.dtype:
    """The NumPy dtype of a float name; bfloat16 is ml_dtypes' (an optional dependency)."""
    if name != "bfloat16":
        return np.dtype(name)
    try:
        import ml_dtypes
    except ImportError:
        raise NotImplementedError("dtype 'bfloat16' needs ml_dtypes: pip install ml_dtypes") from None
    return np.dtype(ml_dtypes.bfloat16)


def is_float(dt: Any) -> bool:
    """A float dtype, bfloat16 included (NumPy files it as kind 'V')."""
    dt = np.dtype(dt)
    return dt.kind == "f" or dt.name == "bfloat16"


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r}, expected a positive integer")
    if value <= 0:
        raise ValueError(f"{name}={value!r}, expected a positive integer")
    return int(value)


def check_rate(name: str, value: Any) -> float:
    """Dropout rates must lie in [0, 1). Keras silently clamps to [0, 1]; rate 1 would drop everything."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r}, expected a float in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r}, expected a float in [0, 1)")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r}, expected True or False")
    return bool(value)


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name}={value!r}, expected one of {choices}")
    return value


def policy_name(dtype: Any) -> str | None:
    """Normalise a Keras 2 string, a Keras 3 DTypePolicy config, or a NumPy dtype to a policy name."""
    if dtype is None:
        return None
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name", dtype.get("class_name"))
    if not isinstance(dtype, str):
        dtype = np.dtype(dtype).name
    if dtype not in POLICIES:
        raise NotImplementedError(f"dtype={dtype!r}: refimpl models the policies {sorted(POLICIES)}")
    return dtype


# Keras class name -> refimpl class: every concrete Layer subclass registers itself on definition.
REGISTRY: dict[str, type[Layer]] = {}


class Layer:
    """Keras's base-layer arguments (name, trainable, dtype) and the weight list.

    Subclasses list their weights, in Keras's ``get_weights()`` order, in ``weight_names`` and create
    them in ``build``. Weights live as plain attributes (``self.kernel``), as in Keras. Each
    subclass is registered under its class name (Keras's), unless declared with ``abstract=True``.
    """

    weight_names: tuple[str, ...] = ()

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if not abstract and cls.__module__.split(".")[0] == "refimpl":  # a user's subclass: custom_objects
            REGISTRY[cls.__name__] = cls

    def __init__(self, *, name: str | None = None, trainable: bool = True, dtype: Any = None,
                 keras_version: int = 3, **kwargs: Any):
        self.keras_version = check_choice("keras_version", keras_version, (2, 3))
        self.name = name if name is not None else _default_name(type(self).__name__)
        self.trainable = check_bool("trainable", trainable)
        self.dtype = policy_name(dtype)
        self.built = False
        self.build_input_shape: tuple | None = None  # set by build(), written as build_config
        self._accept_passive_kwargs(kwargs)

    def _accept_passive_kwargs(self, kwargs: dict) -> None:
        """Keep training-only arguments for get_config; drop shape hints; reject the rest."""
        self._training_only = {k: kwargs.pop(k) for k in TRAINING_ONLY if k in kwargs}
        for key in SHAPE_HINTS:
            kwargs.pop(key, None)
        if kwargs.pop("autocast", True) is not True:
            raise NotImplementedError("autocast=False: refimpl always computes in one dtype")
        if kwargs.pop("weights", None) is not None:
            raise NotImplementedError("weights=...: build the layer, then call set_weights(list)")
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword arguments {sorted(kwargs)}")

    # --- dtype rule -------------------------------------------------------------------------------
    def compute_dtype(self, inputs: Array) -> np.dtype:
        """The policy's compute dtype if one was given, else the input's float dtype (ints -> float32).

        bfloat16: NumPy's operations on ml_dtypes' bfloat16 compute in float32 (a matmul returns
        float32), so refimpl computes each step in float32 from bfloat16 inputs, weights and states,
        and rounds the step's output and states to bfloat16 (``RNN._loop``); Keras on TensorFlow
        rounds after every operation. The bfloat16 tolerance covers the difference."""
        if self.dtype is not None:
            return dtype(POLICIES[self.dtype][0])
        kind = np.asarray(inputs).dtype
        return kind if is_float(kind) else np.dtype("float32")

    @property
    def variable_dtype(self) -> np.dtype:
        """Weights are stored in the policy's variable dtype; with no policy, float64 loses nothing."""
        return dtype(POLICIES[self.dtype][1] if self.dtype else "float64")

    # --- weights ----------------------------------------------------------------------------------
    def get_weights(self) -> list[Array]:
        self._require_built("get_weights")
        return [getattr(self, n).copy() for n in self.weight_names if getattr(self, n) is not None]

    def set_weights(self, weights: list[Array]) -> None:
        self._require_built("set_weights")
        names = [n for n in self.weight_names if getattr(self, n) is not None]
        if len(weights) != len(names):
            raise ValueError(f"{self.name}.set_weights: len(weights)={len(weights)}, expected "
                             f"{len(names)} ({', '.join(names)})")
        for n, w in zip(names, weights):
            w = np.asarray(w)
            if w.shape != getattr(self, n).shape:
                raise ValueError(f"{self.name}.set_weights: {n}.shape={w.shape}, expected "
                                 f"{getattr(self, n).shape}")
            setattr(self, n, w.astype(self.variable_dtype))

    def count_params(self) -> int:
        self._require_built("count_params")
        return int(sum(w.size for w in self.get_weights()))

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{self.name}.{what}() needs a built layer: call build(input_shape) or "
                             "call the layer on data first")

    def base_config(self) -> Config:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype, **self._training_only}

    def __repr__(self) -> str:
        return f"<refimpl.{type(self).__name__} name={self.name!r}>"


_counts: dict[str, int] = {}


def to_snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: SimpleRNNCell -> simple_rnn_cell."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _default_name(class_name: str) -> str:
    """Keras-style unique default names: lstm, lstm_1, ..."""
    base = to_snake_case(class_name)
    n = _counts.get(base, 0)
    _counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"
