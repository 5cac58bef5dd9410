"""Keras activation functions in NumPy, resolved by name as ``keras.activations.get`` does.

Checked against Keras 3.15.1 ``keras/src/activations/activations.py`` and the TensorFlow backend's
``keras/src/backend/tensorflow/nn.py`` (the spec for each formula), and tf-keras 2.21 for the one
name whose meaning changed between versions:

    hard_sigmoid   Keras 3: relu6(x + 3) / 6      (slope 1/6, saturates at |x| = 3)
                   Keras 2: clip(0.2 x + 0.5, 0, 1) (slope 0.2, saturates at |x| = 2.5)

That difference is the only per-version entry here; ``get(name, keras_version=...)`` picks it.

Each activation ``f`` has ``f_vjp(x, y, g)``, the derivative the backward pass uses, beside it
(``vjp(f)`` finds it): TensorFlow's gradient of Keras's implementation, kinks included.
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


# Each activation f is followed by f_vjp(x, y, g) = g * f'(x) (y = f(x)), the derivative TensorFlow's
# gradient for Keras's implementation of f gives; at a kink that is the named TensorFlow op's
# convention (ReluGrad: 0 at 0; ClipByValue: 1 at the bounds; Maximum/Minimum: to x when equal).

def linear(x: Array) -> Array:
    return x


def linear_vjp(x: Array, y: Array, g: Array) -> Array:
    return g


def tanh(x: Array) -> Array:
    return np.tanh(x)


def tanh_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * (1 - y * y)


def sigmoid(x: Array) -> Array:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2: the same function, one transcendental
    and no overflow; absolute error within an ulp of 1 (gates multiply O(1) values)."""
    y = np.tanh(0.5 * x)  # Python scalars keep x's dtype (NumPy's weak scalar rule)
    y *= 0.5
    y += 0.5
    return y


def sigmoid_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * y * (1 - y)


def relu6(x: Array) -> Array:
    return np.clip(x, 0, 6).astype(x.dtype, copy=False)


def relu6_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * ((x > 0) & (x < 6))  # Relu6Grad: 0 at both kinks


def hard_sigmoid(x: Array) -> Array:
    """Keras 3: relu6(x + 3) / 6."""
    return relu6(x + 3) / 6


def hard_sigmoid_vjp(x: Array, y: Array, g: Array) -> Array:
    return relu6_vjp(x + 3, y, g) / 6


def hard_sigmoid_keras2(x: Array) -> Array:
    """Keras 2 (tf-keras): clip(0.2 x + 0.5, 0, 1)."""
    return np.clip(_like(x, 0.2) * x + _like(x, 0.5), 0, 1).astype(x.dtype, copy=False)


def hard_sigmoid_keras2_vjp(x: Array, y: Array, g: Array) -> Array:
    z = _like(x, 0.2) * x + _like(x, 0.5)
    return g * _like(x, 0.2) * ((z >= 0) & (z <= 1))  # ClipByValue passes the bounds


def relu(x: Array) -> Array:
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * (x > 0)  # ReluGrad: 0 at 0


def leaky_relu(x: Array) -> Array:
    return np.where(x >= 0, x, _like(x, 0.2) * x)  # Keras default negative_slope=0.2


def leaky_relu_vjp(x: Array, y: Array, g: Array) -> Array:
    return np.where(x > 0, g, _like(x, 0.2) * g)  # LeakyReluGrad: the slope at 0


def elu(x: Array) -> Array:
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def elu_vjp(x: Array, y: Array, g: Array) -> Array:
    return np.where(y < 0, g * (y + 1), g)  # EluGrad tests the output: slope 1 at 0


def selu(x: Array) -> Array:
    return _like(x, _SELU_SCALE) * np.where(x > 0, x, _like(x, _SELU_ALPHA) * np.expm1(np.minimum(x, 0)))


def selu_vjp(x: Array, y: Array, g: Array) -> Array:
    # SeluGrad tests the output (y < 0), so at 0 the slope is the scale, not scale * alpha.
    return np.where(y < 0, g * (y + _like(x, _SELU_SCALE * _SELU_ALPHA)), g * _like(x, _SELU_SCALE))


def celu(x: Array) -> Array:
    return np.maximum(x, 0) + np.expm1(np.minimum(x, 0))  # alpha=1


def celu_vjp(x: Array, y: Array, g: Array) -> Array:
    # maximum and minimum both pass the gradient to x where x == 0: the derivative there is 2.
    return g * ((x >= 0) + (x <= 0) * np.exp(np.minimum(x, 0)))


def softplus(x: Array) -> Array:
    return np.logaddexp(_like(x, 0), x)


def softplus_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * sigmoid(x)


def softsign(x: Array) -> Array:
    return x / (1 + np.abs(x))


def softsign_vjp(x: Array, y: Array, g: Array) -> Array:
    d = 1 + np.abs(x)
    return g / (d * d)


def silu(x: Array) -> Array:
    return x * sigmoid(x)


def silu_vjp(x: Array, y: Array, g: Array) -> Array:
    s = sigmoid(x)
    return g * s * (1 + x * (1 - s))  # tf.nn.silu's own gradient


def hard_silu(x: Array) -> Array:
    return x * hard_sigmoid(x)


def hard_silu_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * hard_sigmoid(x) + x * hard_sigmoid_vjp(x, None, g)


def gelu(x: Array) -> Array:
    """Exact GELU (Keras's default approximate=False): 0.5 x (1 + erf(x / sqrt(2)))."""
    return (0.5 * x * (1 + _erf(x.astype(np.float64) / math.sqrt(2)))).astype(x.dtype)


def gelu_vjp(x: Array, y: Array, g: Array) -> Array:
    x64 = x.astype(np.float64)
    d = 0.5 * (1 + _erf(x64 / math.sqrt(2))) + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    return g * d.astype(x.dtype)


def exponential(x: Array) -> Array:
    return np.exp(x)


def exponential_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * y


def mish(x: Array) -> Array:
    return x * np.tanh(softplus(x))


def mish_vjp(x: Array, y: Array, g: Array) -> Array:
    t = np.tanh(softplus(x))
    return g * (t + x * (1 - t * t) * sigmoid(x))


def log_sigmoid(x: Array) -> Array:
    return -softplus(-x)


def log_sigmoid_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * sigmoid(-x)


def tanh_shrink(x: Array) -> Array:
    return x - np.tanh(x)


def tanh_shrink_vjp(x: Array, y: Array, g: Array) -> Array:
    t = np.tanh(x)
    return g * t * t


def hard_tanh(x: Array) -> Array:
    return np.clip(x, -1, 1).astype(x.dtype, copy=False)


def hard_tanh_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * ((x >= -1) & (x <= 1))  # ClipByValue passes the bounds


def soft_shrink(x: Array) -> Array:
    t = _like(x, 0.5)
    return np.where(x > t, x - t, np.where(x < -t, x + t, _like(x, 0)))


def soft_shrink_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * (np.abs(x) > 0.5)


def hard_shrink(x: Array) -> Array:
    return np.where(np.abs(x) > 0.5, x, _like(x, 0))


def hard_shrink_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * (np.abs(x) > 0.5)


def sparse_plus(x: Array) -> Array:
    return np.where(x <= -1, _like(x, 0), np.where(x < 1, _like(x, 0.25) * (x + 1) ** 2, x))


def sparse_plus_vjp(x: Array, y: Array, g: Array) -> Array:
    return np.where(x <= -1, _like(x, 0), np.where(x < 1, _like(x, 0.5) * (x + 1) * g, g))


def sparse_sigmoid(x: Array) -> Array:
    return np.where(x <= -1, _like(x, 0), np.where(x >= 1, _like(x, 1), _like(x, 0.5) * (x + 1)))


def sparse_sigmoid_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * _like(x, 0.5) * ((x > -1) & (x < 1))


def squareplus(x: Array) -> Array:
    return (x + np.sqrt(x * x + _like(x, 4))) / 2  # b=4


def squareplus_vjp(x: Array, y: Array, g: Array) -> Array:
    return g * (1 + x / np.sqrt(x * x + _like(x, 4))) / 2


def softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_vjp(x: Array, y: Array, g: Array) -> Array:
    return y * (g - (g * y).sum(axis=-1, keepdims=True))


def log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def log_softmax_vjp(x: Array, y: Array, g: Array) -> Array:
    return g - np.exp(y) * g.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    f.__name__: f
    for f in (linear, tanh, sigmoid, hard_sigmoid, relu, relu6, leaky_relu, elu, selu, celu,
              softplus, softsign, silu, hard_silu, gelu, exponential, mish, log_sigmoid,
              tanh_shrink, hard_tanh, soft_shrink, hard_shrink, sparse_plus, sparse_sigmoid,
              squareplus, softmax, log_softmax)
}
ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
# f -> f_vjp, for every activation above (the backward pass looks them up by function).
VJPS: dict[Callable[[Array], Array], Callable[[Array, Array, Array], Array]] = {
    f: globals()[f.__name__ + "_vjp"] for f in (*ACTIVATIONS.values(), hard_sigmoid_keras2)}
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


def vjp(fn: Activation) -> Callable[[Array, Array, Array], Array]:
    """``fn``'s vector-Jacobian product ``(x, y, g) -> g * fn'(x)``; NotImplementedError for a
    callable refimpl does not know (a custom activation has no derivative here)."""
    if fn not in VJPS:
        raise NotImplementedError(f"activation={fn!r}: refimpl has no derivative for a custom activation")
    return VJPS[fn]


def serialize(fn: Activation) -> str | Activation:
    """The name Keras writes in a config (``hard_sigmoid`` for both versions' definitions)."""
    if fn is hard_sigmoid_keras2:
        return "hard_sigmoid"
    return fn.__name__ if ACTIVATIONS.get(getattr(fn, "__name__", "")) is fn else fn
