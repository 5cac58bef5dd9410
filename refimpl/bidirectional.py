"""Bidirectional: a recurrent layer run forwards and backwards, outputs merged.

Checked against Keras 3.15.1 ``keras/src/layers/rnn/bidirectional.py``:

    forward  = a copy of ``layer`` named forward_<name>   (fresh weights, as Keras rebuilds it
    backward = a copy with go_backwards=True, or ``backward_layer``   from its config)
    y, y_rev = forward(x), backward(x)          both with the same mask and training flag;
                                                initial_state: first half forward, second half backward
    y_rev    = reversed in time when return_sequences, so step t of both describes input step t
    output   = concat([y, y_rev], axis=-1) | y + y_rev | (y + y_rev) / 2 | y * y_rev | [y, y_rev]
    return_state: [output(s)..., *forward_states, *backward_states]

Both copies get zero_output_for_mask = return_sequences (Keras forces it, so masked steps merge
as zeros). y and y_rev are cast to this layer's compute dtype before merging (Keras 3; Keras 2
merges them in the wrapped layer's dtype). Weights: forward's then backward's. The wrapped layer must not already have
go_backwards=True unless a backward_layer with the opposite direction is given.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from refimpl._typing import Array, Config, Shape
from refimpl.base import Layer, check_choice
from refimpl.rnn import RNN
from refimpl.serialization import deserialize, serialize

MERGE_MODES = ("concat", "sum", "ave", "mul", None)


class Bidirectional(Layer):
    def __init__(self, layer: RNN, merge_mode: str | None = "concat", weights: Any = None,
                 backward_layer: RNN | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not isinstance(layer, RNN):
            raise ValueError(f"layer={layer!r}, expected a refimpl recurrent layer")
        if backward_layer is not None and not isinstance(backward_layer, RNN):
            raise ValueError(f"backward_layer={backward_layer!r}, expected a refimpl recurrent layer")
        self.merge_mode = check_choice("merge_mode", merge_mode, MERGE_MODES)
        if weights is not None:
            raise NotImplementedError("weights=...: build the layer, then call set_weights(list)")

        def copy(prefix: str, **changes: Any) -> RNN:
            config = serialize(layer)
            base = layer.name[len(prefix):] if layer.name.startswith(prefix) else layer.name
            config["config"].update(name=prefix + base, **changes)
            return deserialize(config, keras_version=layer.keras_version, custom_objects=_classes(layer))

        self.forward_layer = copy("forward_")
        self.backward_layer = backward_layer if backward_layer is not None else copy("backward_", go_backwards=True)
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("the forward and backward layers must have different go_backwards "
                             f"(both are go_backwards={self.forward_layer.go_backwards})")
        for attr in ("stateful", "return_sequences", "return_state"):
            fwd, bwd = getattr(self.forward_layer, attr), getattr(self.backward_layer, attr)
            if fwd != bwd:
                raise ValueError(f"the forward and backward layers must agree on {attr}: "
                                 f"forward {attr}={fwd}, backward {attr}={bwd}")
        for sub in (self.forward_layer, self.backward_layer):
            sub.zero_output_for_mask = sub.return_sequences  # as Keras forces it
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state

    # --- shapes and weights -----------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(input_shape)
        self.built = True
        self.build_input_shape = tuple(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Any:
        shape = self.forward_layer.compute_output_shape(input_shape)
        states: tuple = ()
        if self.return_state:
            shape, states = shape[0], tuple(shape[1:])
        if self.merge_mode == "concat":
            shape = (*shape[:-1], shape[-1] * 2)
        outputs = (shape, shape) if self.merge_mode is None else (shape,)
        if self.return_state:
            return outputs + states + states
        return outputs if self.merge_mode is None else shape

    def get_weights(self) -> list[Array]:
        self._require_built("get_weights")
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def set_weights(self, weights: Sequence[Array]) -> None:
        self._require_built("set_weights")
        n = len(self.forward_layer.get_weights())
        if len(weights) != 2 * n:
            raise ValueError(f"{self.name}.set_weights: len(weights)={len(weights)}, expected {2 * n} "
                             "(the forward layer's, then the backward layer's)")
        self.forward_layer.set_weights(list(weights[:n]))
        self.backward_layer.set_weights(list(weights[n:]))

    def count_params(self) -> int:
        return self.forward_layer.count_params() + self.backward_layer.count_params()

    # --- states -----------------------------------------------------------------------------------
    @property
    def states(self) -> list | None:
        fwd, bwd = self.forward_layer.states, self.backward_layer.states
        return fwd + bwd if fwd and bwd else None

    def get_initial_state(self, batch_size: int, dtype: Any = "float64") -> list:
        """Forward's zero states, then backward's (the order ``initial_state`` takes)."""
        return (self.forward_layer.get_initial_state(batch_size, dtype)
                + self.backward_layer.get_initial_state(batch_size, dtype))

    def reset_state(self) -> None:
        if not self.stateful:
            raise AttributeError("reset_state: the layer is not stateful")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    # --- the call ---------------------------------------------------------------------------------
    def __call__(self, inputs: Any, mask: Any = None, initial_state: Any = None, training: bool = False,
                 dropout_masks: tuple | None = None) -> Any:
        """``dropout_masks``: a pair (forward's, backward's), each as the wrapped layer takes them."""
        if not self.built:
            self.build(np.shape(inputs))
        fwd_state, bwd_state = self.split_initial_state(initial_state)
        fwd_masks, bwd_masks = dropout_masks if dropout_masks is not None else (None, None)
        y = self.forward_layer(inputs, mask=mask, initial_state=fwd_state, training=training,
                               dropout_masks=fwd_masks)
        y_rev = self.backward_layer(inputs, mask=mask, initial_state=bwd_state, training=training,
                                    dropout_masks=bwd_masks)
        return self.merge(inputs, y, y_rev)

    def split_initial_state(self, initial_state: Any) -> tuple[list | None, list | None]:
        """The forward layer's initial states and the backward layer's: the first half, the second."""
        if initial_state is None:
            return None, None
        n = len(self.forward_layer.state_size) + len(self.backward_layer.state_size)
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != n:
            got = f"len={len(initial_state)}" if isinstance(initial_state, (list, tuple)) else \
                f"shape={np.shape(initial_state)}"
            raise ValueError(f"{self.name}: initial_state {got}, expected a list of {n} arrays (the "
                             "forward layer's states, then the backward layer's)")
        half = n // 2  # Keras's split, even when the two layers have different state counts
        return list(initial_state[:half]), list(initial_state[half:])

    def unmerged(self, y: Any, y_rev: Any, inputs: Any) -> tuple[Array, Array, list]:
        """What the two directions returned -> (y, y_rev as merged: in input order and, in Keras 3,
        this layer's compute dtype; all the states, forward's then backward's)."""
        states: list = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.keras_version == 3:
            # Merged in this layer's compute dtype, which may differ from the wrapped layer's (its
            # dtype policy is its own); the states keep the wrapped layer's dtype. Keras 2 merges
            # in the wrapped layer's dtype.
            dtype = self.compute_dtype(np.asarray(inputs))
            y, y_rev = y.astype(dtype, copy=False), y_rev.astype(dtype, copy=False)
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]  # back to input order
        return y, y_rev, states

    def merge(self, inputs: Any, y: Any, y_rev: Any) -> Any:
        """The call's result from what the two directions returned."""
        y, y_rev, states = self.unmerged(y, y_rev, inputs)
        output = _merge(self.merge_mode, y, y_rev)
        if not self.return_state:
            return output
        return (output if self.merge_mode is None else [output]) + states

    # --- config -----------------------------------------------------------------------------------
    def get_config(self) -> Config:
        return {**self.base_config(), "merge_mode": self.merge_mode,
                "layer": serialize(self.forward_layer), "backward_layer": serialize(self.backward_layer)}


def _merge(mode: str | None, y: Array, y_rev: Array) -> Any:
    if mode == "concat":
        return np.concatenate([y, y_rev], axis=-1)  # the last axis, whatever the data_format
    if mode == "sum":
        return y + y_rev
    if mode == "ave":
        return (y + y_rev) / 2
    if mode == "mul":
        return y * y_rev
    return [y, y_rev]


def _classes(layer: RNN) -> dict[str, type]:
    """The classes of a layer and its cells by name, so that copying a user's subclass finds them
    (Keras finds them through the module its config records)."""
    cell = getattr(layer, "cell", None)
    return {type(o).__name__: type(o) for o in (layer, cell, *getattr(cell, "cells", ())) if o is not None}

