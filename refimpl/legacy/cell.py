"""What the cells of Keras 0.2's own layers (JZS1/2/3, SimpleDeepRNN) share: named weights in
Keras 0.2's ``get_weights()`` order, their shapes and initial values, and Keras's cell protocol
(``state_size``, ``call(inputs, states)``), so ``refimpl.rnn.RNN``'s one time loop runs them.

Each subclass lists ``WEIGHTS`` as (name, kind) in Keras 0.2's order: kind "W" (input_dim, units),
"U" (units, units), "b" (units,) or "P" (input_dim, units), and writes ``step`` with its
equations. States reach ``step`` already zeroed after a masked step (Keras 0.2's ``h_mask_tm1``;
``refimpl.legacy.layer.Keras0RNN``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refimpl import activations, initializers
from refimpl._typing import Array, States
from refimpl.base import check_positive_int


class LegacyCell:
    WEIGHTS: tuple[tuple[str, str], ...] = ()

    def __init__(self, units: int, *, activation: str, inner_activation: str, init: str = "glorot_uniform",
                 inner_init: str = "orthogonal"):
        self.units = check_positive_int("output_dim", units)
        # Theano's hard_sigmoid is clip(0.2 x + 0.5, 0, 1): refimpl's Keras 2 definition.
        self.activation = activations.get(activation, keras_version=2)
        self.inner_activation = activations.get(inner_activation, keras_version=2)
        self.init, self.inner_init = initializers.get(init), initializers.get(inner_init)
        self.built = False
        self.input_dim: int | None = None

    @property
    def state_size(self) -> Any:
        return self.units

    def shapes(self, input_dim: int) -> list[tuple[str, tuple[int, ...]]]:
        u = self.units
        shape = {"W": (input_dim, u), "U": (u, u), "b": (u,), "P": (input_dim, u)}
        return [(name, shape[kind]) for name, kind in self.WEIGHTS]

    def build(self, step_shape: tuple) -> None:
        """Fresh weights as Keras 0.2 makes them: W ``init``, U ``inner_init``, b zeros, and the
        sparse random projection P (identity when input_dim == output_dim, else +-1/sqrt(input_dim))."""
        self.input_dim = int(step_shape[-1])
        rng = np.random.default_rng()
        for (name, kind), (_, shape) in zip(self.WEIGHTS, self.shapes(self.input_dim)):
            if kind == "P":
                value = (np.eye(self.units) if self.input_dim == self.units else
                         (rng.binomial(1, 0.5, shape) * 2 - 1) / np.sqrt(self.input_dim))
            else:
                value = {"W": self.init, "U": self.inner_init}.get(kind, initializers.get("zeros"))(shape, np.float64)
            setattr(self, name, value)
        self.built = True

    def get_weights(self) -> list[Array]:
        return [getattr(self, name).copy() for name, _ in self.WEIGHTS]

    def set_weights(self, weights: list[Array]) -> None:
        for (name, _), w in zip(self.WEIGHTS, weights):
            setattr(self, name, np.array(w, dtype=np.float64))

    def call(self, inputs: Array, states: States, training: bool = False) -> tuple[Array, States]:
        w = {name: getattr(self, name).astype(inputs.dtype, copy=False) for name, _ in self.WEIGHTS}
        return self.step(inputs, list(states), w)

    def step(self, x: Array, states: States, w: dict[str, Array]) -> tuple[Array, States]:
        raise NotImplementedError
