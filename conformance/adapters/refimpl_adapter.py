"""``--impl refimpl``: the NumPy reference through the adapter contract, full protocol included.

``build`` and ``play`` are its two halves, also used by the diagnosis (which changes the built
layer before playing the calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import refimpl
from conformance.recorded import play as play_calls


def build(config: dict, weights: list, keras_version: int = 3) -> Any:
    """The refimpl twin of a serialized Keras layer, with these weights."""
    layer = refimpl.deserialize(config, keras_version=keras_version)
    layer.set_weights(weights)
    return layer


def play(layer: Any, calls: list, *, training: bool = False, dropout_masks: Any = None) -> list[np.ndarray]:
    """A recorded case's calls on a built refimpl layer; ``dropout_masks``: one [input, recurrent]
    pair per cell."""
    masks = None
    if dropout_masks is not None:
        masks = [refimpl.DropoutMasks(*pair) for pair in dropout_masks]
        per_cell = isinstance(layer, refimpl.Bidirectional) or isinstance(layer.cell, refimpl.StackedRNNCells)
        masks = masks if per_cell else masks[0]

    def call(inputs: np.ndarray, mask: Any, initial_state: Any) -> Any:
        return layer(inputs, mask=mask, initial_state=initial_state, training=training, dropout_masks=masks)

    return play_calls(calls, call, layer.reset_state)


class RefImpl:
    name = "refimpl"
    version = refimpl.__version__

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask=None, initial_state=None,
            keras_version: int = 3) -> list[np.ndarray]:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls, keras_version=keras_version)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        return play(build(config, weights, keras_version), calls, training=training, dropout_masks=dropout_masks)
