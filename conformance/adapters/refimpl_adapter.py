"""``--impl refimpl``: the NumPy reference through the adapter contract, full protocol included."""

from __future__ import annotations

from typing import Any

import numpy as np

import refimpl
from conformance.runners import flatten


class RefImpl:
    name = "refimpl"
    version = refimpl.__version__

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask=None, initial_state=None,
            keras_version: int = 3) -> list[np.ndarray]:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls, keras_version=keras_version)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        layer = refimpl.deserialize(config, keras_version=keras_version)
        layer.set_weights(weights)
        masks = None
        if dropout_masks is not None:  # one [input, recurrent] pair per cell
            masks = [refimpl.DropoutMasks(*pair) for pair in dropout_masks]
            per_cell = isinstance(layer, refimpl.Bidirectional) or isinstance(layer.cell, refimpl.StackedRNNCells)
            masks = masks if per_cell else masks[0]
        outputs = []
        for call in calls:
            if call == "reset_state":
                layer.reset_state()
                continue
            outputs += flatten(layer(call["inputs"], mask=call["mask"], initial_state=call["initial_state"],
                                     training=training, dropout_masks=masks))
        return outputs
