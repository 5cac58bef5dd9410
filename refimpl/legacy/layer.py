"""A recurrent layer of Keras 0.2 or 1.2.2: that version's arguments, ``get_config()`` and
``get_weights()`` list around refimpl's one time loop (``refimpl.rnn.RNN``) and a cell.

Masking differs between the two versions; the loop is the same:

    Keras 1.2.2 (and 2, 3)  at a masked step the states keep their previous values and the output
                            repeats the previous step's (zeros before the first step).
    Keras 0.2               every step computes its output as usual, and the states it carries on
                            are multiplied by that step's mask: a masked step hands zeros to the
                            next (``h_mask_tm1 = mask_tm1 * h_tm1``). ``Keras0RNN`` does this.

A layer's ``mask`` is the (batch, time) mask that version's ``Masking`` layer hands it; the
``Masking`` layer also zeroes the masked steps' inputs, which the caller passes as they reach the layer.
Not modelled (``NotImplementedError``): the backward pass, and dropout in training
(``dropout_W``/``dropout_U`` with ``training=True``): Theano draws those masks itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refimpl._typing import Array, Config, Shape
from refimpl.base import check_bool, check_positive_int
from refimpl.legacy import names
from refimpl.rnn import RNN, _expand

_COUNTS: dict[str, int] = {}  # Keras 1's default-name counters, per class


class Keras0RNN(RNN, abstract=True):
    """``RNN`` with Keras 0.2's masking: outputs never held; the states a masked step produces are
    zeroed (only ``cell.fresh_states``, where the cell carries older lags too)."""

    def masked_output(self, m: Array, output: Array, prev_output: Array) -> Array:
        return output

    def masked_states(self, m: Array, new_states: list, states: list) -> list:
        fresh = getattr(self.cell, "fresh_states", range(len(new_states)))
        return [np.where(_expand(m, s), s, 0) if i in fresh else s for i, s in enumerate(new_states)]


class Recurrent:
    """Base of the Keras 0.2 and 1.2.2 layers (``refimpl.legacy.keras0`` / ``keras1``).

    Subclasses set ``version`` (0 or 1), ``CONFIG_KEYS`` (that version's ``get_config()`` keys, in
    order) and write ``make_cell``; ``layout`` names the class whose weights today's cells share
    (SimpleRNN, GRU, LSTM), or None for a cell that keeps Keras 0.2's own list (JZS, SimpleDeepRNN).
    """

    version: int
    layout: str | None = None
    CONFIG_KEYS: tuple[str, ...] = ()

    def __init__(self, args: dict):
        args = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        kwargs = args.pop("kwargs")
        self.config = args
        self.output_dim = check_positive_int("output_dim", args["output_dim"])
        for key in ("return_sequences", "go_backwards", "stateful", "unroll", "trainable"):
            if key in args:
                check_bool(key, args[key])
        for key in ("activation", "inner_activation"):
            if key in args:
                names.check_activation(args[key], self.version, key)
        if args.get("weights") is not None:
            raise NotImplementedError("weights=...: build the layer, then call set_weights(list)")
        self.name = kwargs.pop("name", None) or self._default_name()
        shape = kwargs.pop("input_shape", None) or kwargs.pop("batch_input_shape", None)
        if kwargs.pop("input_dtype", None) is not None:  # Keras 1: the dtype of the Input it makes for a first layer
            raise NotImplementedError("input_dtype=...: refimpl computes in the inputs' dtype; pass inputs of that dtype")
        if kwargs:
            raise TypeError(f"{type(self).__name__} (Keras {self.release}) got unexpected keyword arguments "
                            f"{sorted(kwargs)}")
        if shape is None and args.get("input_dim") is not None:  # as Keras 0.2 turns input_dim into input_shape
            shape = (args.get("input_length"), args["input_dim"])
        if shape is not None:
            args["input_dim"] = shape[-1]
        self.input_shape = None if shape is None else list(shape)  # Keras 0.2 writes it in its config
        self.batch_size = shape[0] if shape is not None and len(shape) == 3 else None
        self.rnn: RNN | None = None
        self.built = False
        if args.get("input_dim") is not None and (self.batch_size or not args.get("stateful")):
            self.build((self.batch_size, args.get("input_length"), args["input_dim"]))  # as Keras builds it

    @property
    def release(self) -> str:
        return {0: "0.2.0", 1: "1.2.2"}[self.version]

    def _default_name(self) -> str:
        if self.version == 0:  # Keras 0.2 layers are named by their class
            return type(self).__name__
        base = type(self).__name__.lower()  # Keras 1: lstm_1, lstm_2, ...
        n = _COUNTS[base] = _COUNTS.get(base, 0) + 1
        return f"{base}_{n}"

    # --- building -----------------------------------------------------------------------------------
    def today(self) -> dict[str, Any]:
        """The cell arguments under today's names (names.RENAMES), activations as refimpl names
        them; keras_version=2 because Theano's hard_sigmoid is Keras 2's."""
        out: dict[str, Any] = {"keras_version": 2}
        for key in ("activation", "inner_activation", "init", "inner_init", "dropout_W", "dropout_U"):
            if key in self.config:
                value = self.config[key]
                if key.endswith("activation"):
                    value = names.check_activation(value, self.version, key)
                out[names.RENAMES.get(key, key)] = value
        return out

    def make_cell(self) -> Any:
        raise NotImplementedError

    def make_rnn(self, cell: Any) -> RNN:
        if self.version == 0:
            return Keras0RNN(cell, return_sequences=self.config["return_sequences"])
        return RNN(cell, keras_version=2, **{k: self.config[k] for k in
                                              ("return_sequences", "go_backwards", "stateful", "unroll")})

    @property
    def per_gate(self) -> bool:
        """One (W, U, b) triple per gate in the weight list (else the fused [W, U, b])."""
        return self.config.get("consume_less", "cpu") != "gpu"

    def build(self, input_shape: Shape) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"{self.name}: input_shape={input_shape}, expected (batch, timesteps, input_dim)")
        input_dim = self.config.get("input_dim")
        if input_dim is not None and input_shape[-1] != input_dim:
            raise ValueError(f"{self.name}: input_shape={input_shape}, expected input_dim={input_dim}")
        self.config["input_dim"] = input_shape[-1]
        if self.config.get("stateful") and self.batch_size is None:  # Keras 1 keeps it: batch_input_shape
            self.batch_size = input_shape[0]
        if self.version == 0 and self.input_shape is None:  # set_previous gives a layer its shape
            self.input_shape = [None, input_shape[-1]]
        self.rnn = self.make_rnn(self.make_cell())
        self.rnn.build((self.batch_size or input_shape[0], *input_shape[1:]))
        self.built = True

    # --- the call -----------------------------------------------------------------------------------
    def __call__(self, inputs: Any, mask: Any = None, training: bool = False) -> Array:
        """(batch, timesteps, input_dim) -> (batch, output_dim), or (batch, timesteps, output_dim)
        with return_sequences. ``mask``: (batch, timesteps), True for a valid step."""
        x = np.asarray(inputs)
        if x.ndim != 3:
            raise ValueError(f"{self.name}: inputs.shape={x.shape}, expected (batch, timesteps, input_dim)")
        if training and (self.config.get("dropout_W") or self.config.get("dropout_U")):
            raise NotImplementedError(f"{self.name}: dropout_W/dropout_U with training=True: Theano draws the "
                                      "masks; refimpl does not model Keras 1's dropout")
        if not self.built:
            self.build(x.shape)
        return self.rnn(x, mask=mask, training=training)

    def reset_states(self) -> None:
        """Zero a stateful layer's states (Keras 1.2.2's ``reset_states``)."""
        if not self.config.get("stateful"):
            raise ValueError(f"{self.name}.reset_states(): the layer is not stateful")
        if self.rnn is not None:
            self.rnn.reset_state()

    reset_state = reset_states  # what the harness's recorded calls say

    # --- weights, shapes, config --------------------------------------------------------------------
    def weight_names(self) -> list[str]:
        if self.layout is None:
            return [name for name, _ in self.rnn.cell.WEIGHTS]
        return names.names(self.layout, self.per_gate)

    def get_weights(self) -> list[Array]:
        self._require_built("get_weights")
        weights = self.rnn.get_weights()
        return weights if self.layout is None else names.split(self.layout, weights, self.per_gate)

    def set_weights(self, weights: list[Array]) -> None:
        """Exactly this version's ``get_weights()`` list: its order, its shapes."""
        self._require_built("set_weights")
        weights = [np.asarray(w) for w in weights]
        expected = self.get_weights()
        labels = self.weight_names()
        if len(weights) != len(expected):
            raise ValueError(f"{self.name}.set_weights: len(weights)={len(weights)}, expected {len(expected)} "
                             f"({', '.join(labels)})")
        for label, w, e in zip(labels, weights, expected):
            if w.shape != e.shape:
                raise ValueError(f"{self.name}.set_weights: {label}.shape={w.shape}, expected {e.shape}")
        self.rnn.set_weights(weights if self.layout is None else names.fused(self.layout, weights, self.per_gate))

    def count_params(self) -> int:
        return int(sum(w.size for w in self.get_weights()))

    def compute_output_shape(self, input_shape: Shape) -> tuple:
        """Keras 0.2's ``output_shape`` / Keras 1's ``get_output_shape_for``."""
        batch, steps = input_shape[0], input_shape[1]
        return (batch, steps, self.output_dim) if self.config["return_sequences"] else (batch, self.output_dim)

    def get_config(self) -> Config:
        """This version's ``layer.get_config()``, key for key."""
        values = {**self.config, "name": self.name}
        config = {k: values[k] for k in self.CONFIG_KEYS if k in values}
        if self.version == 0 and self.input_shape is not None:
            config["input_shape"] = self.input_shape
        if self.version == 1 and self.config.get("stateful") and self.batch_size is not None:
            config.pop("input_dim", None)
            config.pop("input_length", None)
            config["batch_input_shape"] = [self.batch_size, self.config.get("input_length"), self.config["input_dim"]]
        return config

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(f"{self.name}.{what}() needs a built layer: call build(input_shape) or call the "
                             "layer on data first")

    def __repr__(self) -> str:
        return f"<refimpl.legacy.keras{self.version}.{type(self).__name__} name={self.name!r}>"
