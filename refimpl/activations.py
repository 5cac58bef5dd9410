"""Keras activation functions in NumPy, resolved by name as ``keras.activations.get`` does.

Checked against Keras 3.15.1 ``keras/src/activations/activations.py`` and the TensorFlow backend's
``keras/src/backend/tensorflow/nn.py`` (the spec for each formula), and tf-keras 2.21 for the one
name whose meaning changed between versions:

    hard_sigmoid   Keras 3: relu6(x + 3) / 6      (slope 1/6, saturates at |x| = 3)
                   Keras 2: clip(0.2 x + 0.5, 0, 1) (slope 0.2, saturates at |x| = 2.5)

That difference is the only per-version entry here; ``get(name, keras_version=...)`` picks it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from refimpl._typing import Activation, Array

_SELU_ALPHA = 1.6732632423543772848170429916717  # Klambauer et al. 2017, as in tf.nn.selu
_SELU_SCALE = 1.0507009873554804934193349852946

_erf = np.vectorize(math.erf, otypes=[np.float64])  # NumPy has no erf; math.erf is correctly rounded


def _like(x: Array, y: Array) -> Array:
    return np.asarray(y, dtype=x.dtype)


def linear(x: Array) -> Array:
    return x


def tanh(x: Array) -> Array:
    return np.tanh(x)


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: the same function, one transcendental
    and no overflow; absolute error within an ulp of 1 (gates multiply O(1) values)."""
    y = np.tanh(0.5 * x)  # Python scalars keep x's dtype (NumPy's weak scalar rule)
    y *= 0.5
    y += 0.5
    return y


def hard_sigmoid(x: Array) -> Array:
    """Keras 3: relu6(x + 3) / 6."""
    return relu6(x + 3) / 6


def hard_sigmoid_keras2(x: Array) -> Array:
    """Keras 2 (tf-keras): clip(0.2 x + 0.5, 0, 1)."""
    return np.clip(_like(x, 0.2) * x + _like(x, 0.5), 0, 1).astype(x.dtype, copy=False)


def relu(x: Array) -> Array:
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu6(x: Array) -> Array:
    return np.clip(x, 0, 6).astype(x.dtype, copy=False)


def leaky_relu(x: Array) -> Array:
    return np.where(x >= 0, x, _like(x, 0.2) * x)  # Keras default negative_slope=0.2


def elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def selu(x: Array) -> Array:
    return _like(x, _SELU_SCALE) * np.where(x > 0, x, _like(x, _SELU_ALPHA) * np.expm1(np.minimum(x, 0)))


def celu(x: Array) -> Array:
    return np.maximum(x, 0) + np.expm1(np.minimum(x, 0))  # alpha=1


def softplus(x: Array) -> Array:
    return np.logaddexp(_like(x, 0), x)


def softsign(x: Array) -> Array:
    return x / (1 + np.abs(x))


def silu(x: Array) -> Array:
    return x * sigmoid(x)


def hard_silu(x: Array) -> Array:
    return x * hard_sigmoid(x)


def gelu(x: Array) -> Array:
    """Exact GELU (Keras's default approximate=False): 0.5 x (1 + erf(x / sqrt(2)))."""
    return (0.5 * x * (1 + _erf(x.astype(np.float64) / math.sqrt(2)))).astype(x.dtype)


def exponential(x: Array) -> Array:
    return np.exp(x)


def mish(x: Array) -> Array:
    return x * np.tanh(softplus(x))


def log_sigmoid(x: Array) -> Array:
    return -softplus(-x)


def tanh_shrink(x: Array) -> Array:
    return x - np.tanh(x)


def hard_tanh(x: Array) -> Array:
    return np.clip(x, -1, 1).astype(x.dtype, copy=False)


def soft_shrink(x: Array) -> Array:
    t = _like(x, 0.5)
    return np.where(x > t, x - t, np.where(x < -t, x + t, _like(x, 0)))


def hard_shrink(x: Array) -> Array:
    return np.where(np.abs(x) > 0.5, x, _like(x, 0))


def sparse_plus(x: Array) -> Array:
    return np.where(x <= -1, _like(x, 0), np.where(x < 1, _like(x, 0.25) * (x + 1) ** 2, x))


def sparse_sigmoid(x: Array) -> Array:
    return np.where(x <= -1, _like(x, 0), np.where(x >= 1, _like(x, 1), _like(x, 0.5) * (x + 1)))


def squareplus(x: Array) -> Array:
    return (x + np.sqrt(x * x + _like(x, 4))) / 2  # b=4


def softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    f.__name__: f
    for f in (linear, tanh, sigmoid, hard_sigmoid, relu, relu6, leaky_relu, elu, selu, celu,
              softplus, softsign, silu, hard_silu, gelu, exponential, mish, log_sigmoid,
              tanh_shrink, hard_tanh, soft_shrink, hard_shrink, sparse_plus, sparse_sigmoid,
              squareplus, softmax, log_softmax)
}
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
# Keras names that exist but cannot stand in a recurrent cell as a bare name.
UNSUPPORTED = {
    "glu": "glu halves the last axis, so the state would change size at every step",
    "threshold": "threshold has required arguments (threshold, default_value) a name cannot carry",
    "sparsemax": "sparsemax is not modelled by refimpl",
}


def get(identifier: str | Activation | None, *, keras_version: int = 3) -> Activation:
    """Resolve an activation as ``keras.activations.get`` does: None and "linear" are identity."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, dict):  # {"class_name": "function", "config": "tanh", ...}
        identifier = identifier.get("config", identifier.get("class_name"))
    if not isinstance(identifier, str):
        raise TypeError(f"activation={identifier!r}, expected a name, a callable or None")
    name = ALIASES.get(identifier, identifier)
    if name in UNSUPPORTED:
        raise NotImplementedError(f"activation={identifier!r}: {UNSUPPORTED[name]}")
    if name == "hard_sigmoid" and keras_version == 2:
        return hard_sigmoid_keras2
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={identifier!r}, expected one of {sorted({**ACTIVATIONS, **ALIASES})}")
    return ACTIVATIONS[name]


def serialize(fn: Activation) -> str | Activation:
    """The name Keras writes in a config (``hard_sigmoid`` for both versions' definitions)."""
    if fn is hard_sigmoid_keras2:
        return "hard_sigmoid"
    return fn.__name__ if ACTIVATIONS.get(getattr(fn, "__name__", "")) is fn else fn
