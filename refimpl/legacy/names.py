"""Keras 0.2 and 1.2.2 names and weight lists, translated to today's in one place, as data.

Arguments (Keras 0.2.0 ``keras/layers/recurrent.py``; Keras 1.2.2 the same file):
    output_dim -> units            init -> kernel_initializer      inner_init -> recurrent_initializer
    inner_activation -> recurrent_activation                       forget_bias_init -> unit_forget_bias
    dropout_W -> dropout           dropout_U -> recurrent_dropout  (Keras 1.2.2)
    W_regularizer, U_regularizer, b_regularizer -> kernel_/recurrent_/bias_regularizer (Keras 1.2.2)
    consume_less "cpu" | "mem" | "gpu" (Keras 1.2.2) -> the weight list's layout (below)

Weight lists. Today's LSTM/GRU/SimpleRNN fuse each of W (input_dim, G units), U (units, G units)
and b (G units,) over the gates, in the gate order ``GATES``. Keras 0.2, and Keras 1.2.2 with
consume_less "cpu" or "mem", list one (W, U, b) triple per gate instead, in the order
``PER_GATE_ORDER`` (LSTM: i, c, f, o, while the fused blocks run i, f, c, o). Keras 1.2.2 with
consume_less="gpu" lists the fused [W, U, b] in today's order. A GRU of these versions is today's
``GRU(reset_after=False)``: one bias, the reset gate applied before the recurrent product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refimpl._typing import Array

RENAMES = {"output_dim": "units", "init": "kernel_initializer", "inner_init": "recurrent_initializer",
           "inner_activation": "recurrent_activation", "dropout_W": "dropout", "dropout_U": "recurrent_dropout",
           "W_regularizer": "kernel_regularizer", "U_regularizer": "recurrent_regularizer",
           "b_regularizer": "bias_regularizer"}

# The activations each version's ``activations.get`` knows (0.2: keras/activations.py; 1.2.2 the
# same, on the Theano backend). Theano's sigmoid returns exactly 0 / 1 beyond |x| > 30 and its
# softplus 0 / x: at most exp(-30) = 9.4e-14 from refimpl's, inside the float64 tolerance.
ACTIVATIONS = {
    0: ("softmax", "time_distributed_softmax", "softplus", "relu", "tanh", "sigmoid", "hard_sigmoid", "linear"),
    1: ("softmax", "elu", "softplus", "softsign", "relu", "tanh", "sigmoid", "hard_sigmoid", "linear"),
}
ACTIVATION_ALIASES = {"time_distributed_softmax": "softmax"}  # 0.2 deprecated it for softmax

_RELEASE = {0: "0.2.0", 1: "1.2.2"}

# Today's fused gate order, and the order of the per-gate triples in the old lists.
GATES = {"SimpleRNN": "h", "GRU": "zrh", "LSTM": "ifco"}
PER_GATE_ORDER = {"SimpleRNN": "h", "GRU": "zrh", "LSTM": "icfo"}


def check_activation(name: Any, version: int, argument: str) -> str:
    """The name refimpl.activations knows for this version's activation ``name``."""
    if name not in ACTIVATIONS[version]:
        raise ValueError(f"{argument}={name!r}, expected one of Keras {_RELEASE[version]}'s activations "
                         f"{ACTIVATIONS[version]}")
    return ACTIVATION_ALIASES.get(name, name)


def fused(layer: str, weights: list[Array], per_gate: bool) -> list[Array]:
    """An old weight list -> today's [kernel, recurrent_kernel, bias] (gates in GATES order)."""
    if not per_gate or layer == "SimpleRNN":
        return list(weights)
    triples = dict(zip(PER_GATE_ORDER[layer], (weights[i:i + 3] for i in range(0, len(weights), 3))))
    return [np.concatenate([triples[g][k] for g in GATES[layer]], axis=-1) for k in range(3)]


def split(layer: str, weights: list[Array], per_gate: bool) -> list[Array]:
    """Today's [kernel, recurrent_kernel, bias] -> the old list (the inverse of ``fused``)."""
    if not per_gate or layer == "SimpleRNN":
        return [w.copy() for w in weights]
    parts = [np.split(w, len(GATES[layer]), axis=-1) for w in weights]  # [W, U, b] -> per gate
    index = {g: i for i, g in enumerate(GATES[layer])}
    return [parts[k][index[g]].copy() for g in PER_GATE_ORDER[layer] for k in range(3)]


def names(layer: str, per_gate: bool) -> list[str]:
    """The old list's names (Keras's attribute names): W_i, U_i, b_i, W_c, ... or W, U, b."""
    if not per_gate or layer == "SimpleRNN":
        return ["W", "U", "b"]
    return [f"{k}_{g}" for g in PER_GATE_ORDER[layer] for k in "WUb"]



def unit_forget_bias(forget_bias_init: Any) -> bool:
    """forget_bias_init "one" (the default) is today's unit_forget_bias=True; "zero" is False."""
    if forget_bias_init not in ("one", "zero"):
        raise NotImplementedError(f"forget_bias_init={forget_bias_init!r}: refimpl models 'one' and 'zero'")
    return forget_bias_init == "one"
