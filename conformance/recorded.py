"""A recorded case: one configuration's inputs and the oracle's outputs, and how its calls are played.

A ``RecordedCase`` is what a fixture set holds for one case and what the live oracle produces in
memory: the serialized Keras config, the weights, the calls with their inputs, masks and initial
states, the dropout masks of a training-mode case, and the outputs Keras gave (or the error it
raised). Every implementation is judged against one.

Calls: a list of ``{"inputs", "mask", "initial_state"}`` dicts (``Call``), with ``RESET``
(``"reset_state"``) between two calls of a stateful layer; ``play`` runs such a list on any
implementation and collects every output of every call, flattened, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypedDict

import numpy as np

from conformance import configs

Array = np.ndarray
RESET = "reset_state"


class Call(TypedDict):
    """One call's arguments, as adapters receive them: ``Call(inputs=x, mask=None, initial_state=None)``."""

    inputs: Array  # (batch, time, features...) in the case's dtype
    mask: Array | None  # (batch, time) bool
    initial_state: Any  # None, or one array per state (a list per cell for stacked cells)


@dataclass
class RecordedCase:
    id: str
    family: str  # the table row: SimpleRNN, ConvLSTM2D, RNN(LSTMCell), Bidirectional(GRU), ...
    dtype: str  # the dtype (or dtype policy) the case was built with; data_dtype: what its arrays are in
    config: dict  # keras.layers.serialize(layer)
    calls: list  # Call dicts and RESET
    weights: list  # in Keras's get_weights() order
    training: bool
    dropout_masks: Any  # None, or one [input, recurrent] pair per cell (each None, an array, or per gate)
    outputs: list  # every output of every call, flattened
    status: str  # "ok", or "oracle-raised" (Keras failed on this valid configuration)
    error: str = ""
    cotangents: list | None = None  # one per output: the loss is sum_k <outputs[k], cotangents[k]>
    gradients: dict | None = None  # the loss's gradients: {"inputs": [per call], "initial_state":
    #   [per call: nested like the call's initial_state, or None], "weights": [in get_weights() order]}
    gradient_error: str = ""  # Keras's backward pass raised (its forward pass ran)
    unreadable: str = ""  # why this machine cannot judge the case (its arrays need ml_dtypes)

    @property
    def data_dtype(self) -> str:
        """The dtype the inputs, weights and states are in: the policy's variable dtype."""
        return configs.variable_dtype(self.dtype)

    @property
    def masked(self) -> bool:
        return any(c != RESET and c["mask"] is not None for c in self.calls)

    @property
    def has_initial_state(self) -> bool:
        return any(c != RESET and c["initial_state"] is not None for c in self.calls)

    @property
    def stateful(self) -> bool:
        """More than one call on the same layer (call, call, reset_state, call)."""
        return len(self.calls) > 1


def flatten(tree: Any, leaf: Callable[[Any], Array] = np.asarray) -> list[Array]:
    """Nested lists/tuples of arrays (or of tensors ``leaf`` turns into arrays) -> a flat list."""
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in flatten(t, leaf)]
    return [leaf(tree)]


def pack(structure: Any, flat: Any) -> Any:
    """The items of ``flat`` arranged in the nesting of ``structure`` (lists/tuples of leaves): the
    inverse of ``flatten``."""
    items = iter(flat)

    def build(s: Any) -> Any:
        return [build(x) for x in s] if isinstance(s, (list, tuple)) else next(items)
    return build(structure)


def cast(tree: Any, dtype: str) -> Any:
    """The float arrays in ``tree`` (nested lists, Call dicts) cast to ``dtype`` (a float name,
    bfloat16 too); None, strings (RESET) and non-float arrays (masks) as they are."""
    if tree is None or isinstance(tree, str):
        return tree
    if isinstance(tree, dict):
        return {k: cast(v, dtype) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [cast(t, dtype) for t in tree]
    a = np.asarray(tree)
    return a.astype(configs.numpy_dtype(dtype)) if configs.is_float(a.dtype) else a


def play(calls: Sequence[Any], call: Callable[[Array, Array | None, Any], Any],
         reset: Callable[[], None]) -> list[Array]:
    """Run ``calls`` on one layer: ``call(inputs, mask, initial_state)`` for each call (its return
    value flattened into the outputs), ``reset()`` for each ``RESET``."""
    outputs: list[Array] = []
    for c in calls:
        if c == RESET:
            reset()
        else:
            outputs += flatten(call(c["inputs"], c["mask"], c["initial_state"]))
    return outputs
