"""Keras 3 weight initializers in NumPy, seeded with ``numpy.random.default_rng(seed)``.

Formulas from Keras 3.15.1 ``keras/src/initializers/random_initializers.py`` and
``constant_initializers.py``. The *distributions* match Keras; the random *streams* do not (Keras
draws from its backend's generator), so a seeded refimpl layer is reproducible within refimpl only.
To compare with Keras, copy weights with ``set_weights`` instead.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from refimpl._typing import Array
from refimpl.base import to_snake_case

Initializer = Callable[[tuple, np.dtype], Array]


def compute_fans(shape: tuple) -> tuple[float, float]:
    """(fan_in, fan_out) as Keras computes them; kernels of rank > 2 multiply by the receptive field."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)


def _truncated_normal(rng: np.random.Generator, shape: tuple, mean: float, stddev: float) -> Array:
    """Normal samples redrawn until within two standard deviations, as Keras's truncated_normal."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


def variance_scaling(*, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                     seed: int | None = None) -> Initializer:
    if scale <= 0:
        raise ValueError(f"scale={scale!r}, expected a positive number")
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"mode={mode!r}, expected 'fan_in', 'fan_out' or 'fan_avg'")
    if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
        raise ValueError(f"distribution={distribution!r}, expected 'truncated_normal', "
                         "'untruncated_normal' or 'uniform'")

    def init(shape: tuple, dtype: np.dtype) -> Array:
        rng = np.random.default_rng(seed)
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        s = scale / max(1.0, fan)
        if distribution == "truncated_normal":
            out = _truncated_normal(rng, shape, 0.0, math.sqrt(s) / 0.87962566103423978)
        elif distribution == "untruncated_normal":
            out = rng.normal(0.0, math.sqrt(s), shape)
        else:
            limit = math.sqrt(3.0 * s)
            out = rng.uniform(-limit, limit, shape)
        return out.astype(dtype)
    return init


def orthogonal(*, gain: float = 1.0, seed: int | None = None) -> Initializer:
    def init(shape: tuple, dtype: np.dtype) -> Array:
        if len(shape) < 2:
            raise ValueError(f"shape={shape}, orthogonal needs a weight of rank >= 2")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = np.random.default_rng(seed).standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # makes the decomposition unique, as Keras does
        if rows < cols:
            q = q.T
        return (gain * q.reshape(shape)).astype(dtype)
    return init


def _fixed(fill: Callable[[tuple], Array]) -> Callable[..., Initializer]:
    return lambda **_: (lambda shape, dtype: fill(shape).astype(dtype))


def constant(*, value: float = 0.0) -> Initializer:
    return lambda shape, dtype: np.full(shape, value, dtype=dtype)


def identity(*, gain: float = 1.0) -> Initializer:
    def init(shape: tuple, dtype: np.dtype) -> Array:
        if len(shape) != 2:
            raise ValueError(f"shape={shape}, identity needs a 2-D weight")
        return (gain * np.eye(*shape)).astype(dtype)
    return init


def random_normal(*, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> Initializer:
    return lambda shape, dtype: np.random.default_rng(seed).normal(mean, stddev, shape).astype(dtype)


def random_uniform(*, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> Initializer:
    return lambda shape, dtype: np.random.default_rng(seed).uniform(minval, maxval, shape).astype(dtype)


def truncated_normal(*, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> Initializer:
    return lambda shape, dtype: _truncated_normal(np.random.default_rng(seed), shape, mean, stddev).astype(dtype)


def _scaled(scale: float, mode: str, distribution: str) -> Callable[..., Initializer]:
    return lambda *, seed=None: variance_scaling(scale=scale, mode=mode, distribution=distribution, seed=seed)


INITIALIZERS: dict[str, Callable[..., Initializer]] = {
    "zeros": _fixed(np.zeros),
    "ones": _fixed(np.ones),
    "constant": constant,
    "identity": identity,
    "orthogonal": orthogonal,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "truncated_normal": truncated_normal,
    "variance_scaling": variance_scaling,
    "glorot_uniform": _scaled(1.0, "fan_avg", "uniform"),
    "glorot_normal": _scaled(1.0, "fan_avg", "truncated_normal"),
    "he_uniform": _scaled(2.0, "fan_in", "uniform"),
    "he_normal": _scaled(2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": _scaled(1.0, "fan_in", "uniform"),
    "lecun_normal": _scaled(1.0, "fan_in", "truncated_normal"),
}
ALIASES = {"zero": "zeros", "one": "ones", "normal": "random_normal", "uniform": "random_uniform",
           "identity_initializer": "identity", "orthogonal_initializer": "orthogonal"}


def get(identifier: Any) -> Initializer:
    """Resolve a name ("glorot_uniform"), a Keras 2/3 config dict, or a callable ``(shape, dtype)``."""
    if callable(identifier):
        return identifier
    config: dict = {}
    if isinstance(identifier, dict):
        name, config = to_snake_case(identifier.get("class_name", "")), dict(identifier.get("config") or {})
    elif isinstance(identifier, str):
        name = identifier if identifier.islower() else to_snake_case(identifier)
    else:
        raise TypeError(f"initializer={identifier!r}, expected a name, a Keras config dict or a callable")
    name = ALIASES.get(name, name)
    if name not in INITIALIZERS:
        raise ValueError(f"initializer={identifier!r}, expected one of {sorted(INITIALIZERS)}")
    for axes in ("input_axes", "output_axes"):  # Keras 3.15 fan options for einsum kernels
        if config.pop(axes, None) is not None:
            raise NotImplementedError(f"initializer {name} with {axes}: not modelled by refimpl")
    try:
        return INITIALIZERS[name](**config)
    except TypeError as e:
        raise TypeError(f"initializer {name} config={config!r}: {e}") from None
