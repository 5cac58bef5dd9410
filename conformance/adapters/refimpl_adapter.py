"""``--impl refimpl``: the NumPy reference through the adapter contract, full protocol included.

``build`` and ``play`` are its two halves, also used by the diagnosis (which changes the built
layer before playing the calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import refimpl
from conformance.recorded import RESET, flatten, pack
from conformance.recorded import play as play_calls


def build(config: dict, weights: list, keras_version: int = 3) -> Any:
    """The refimpl twin of a serialized Keras layer, with these weights."""
    layer = refimpl.deserialize(config, keras_version=keras_version)
    layer.set_weights(weights)
    return layer


def play(layer: Any, calls: list, *, training: bool = False, dropout_masks: Any = None) -> list[np.ndarray]:
    """A recorded case's calls on a built refimpl layer; ``dropout_masks``: one [input, recurrent]
    pair per cell."""
    masks = _masks(layer, dropout_masks)

    def call(inputs: np.ndarray, mask: Any, initial_state: Any) -> Any:
        extra = {k: v for k, v in (("initial_state", initial_state), ("dropout_masks", masks)) if v is not None}
        return layer(inputs, mask=mask, training=training, **extra)  # Keras 0.2/1 layers take neither

    return play_calls(calls, call, layer.reset_state)


def play_vjp(layer: Any, calls: list, cotangents: list, *, training: bool = False, dropout_masks: Any = None) -> dict:
    """The gradients of sum_k <outputs[k], cotangents[k]> over a recorded case's calls (the
    adapters' ``run_vjp`` contract): {"inputs": [per call], "initial_state": [per call, or None],
    "weights": [summed over the calls]}."""
    masks, k = _masks(layer, dropout_masks), 0
    grads: dict = {"inputs": [], "initial_state": [], "weights": None}
    for call in calls:
        if call == RESET:
            layer.reset_state()
            continue
        out, pullback = refimpl.vjp_fn(layer, call["inputs"], mask=call["mask"], initial_state=call["initial_state"],
                                       training=training, dropout_masks=masks)
        n = len(flatten(out))
        g = pullback(pack(out, list(cotangents[k:k + n])))
        k += n
        grads["inputs"].append(g.inputs)
        grads["initial_state"].append(g.initial_state)
        grads["weights"] = g.weights if grads["weights"] is None else [a + b for a, b in zip(grads["weights"], g.weights)]
    return grads


def _masks(layer: Any, dropout_masks: Any) -> Any:
    """Recorded dropout masks (one [input, recurrent] pair per cell) as the layer takes them."""
    if dropout_masks is None:
        return None
    masks = [refimpl.DropoutMasks(*pair) for pair in dropout_masks]
    per_cell = isinstance(layer, refimpl.Bidirectional) or isinstance(layer.cell, refimpl.StackedRNNCells)
    return masks if per_cell else masks[0]


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

    def run_vjp(self, config: dict, weights: list, calls: list, cotangents: list, *, training: bool = False,
                dropout_masks: Any = None, keras_version: int = 3) -> dict:
        return play_vjp(build(config, weights, keras_version), calls, cotangents, training=training,
                        dropout_masks=dropout_masks)
