"""Deliberately broken adapters: refimpl with one classic porting mistake each. The suite must fail
them, and its diagnosis must name the mistake (tests/test_adapters.py)."""

from __future__ import annotations

import numpy as np

from conformance.adapters.refimpl_adapter import RefImpl as _RefImpl


class RefImpl:
    """refimpl through the plain contract only (run, no run_calls)."""

    version = "0"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        return _RefImpl().run(config, weights, inputs, mask=mask, initial_state=initial_state)


def _swap_blocks(w: np.ndarray, i: int, j: int, n: int) -> np.ndarray:
    blocks = np.split(w, n, axis=-1)
    blocks[i], blocks[j] = blocks[j], blocks[i]
    return np.concatenate(blocks, axis=-1)


class SwappedGRU(RefImpl):
    """A GRU port that reads Keras's gate blocks in torch's order: (r, z, h) for (z, r, h)."""

    name = "swapped-gru"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        if config["class_name"] == "GRU":
            weights = [_swap_blocks(w, 0, 1, 3) for w in weights]
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state)

    def supports(self, config):
        return True if config["class_name"] == "GRU" else "swapped-gru implements GRU only"


class StatesSwappedLSTM(RefImpl):
    """An LSTM port that returns its states as [c, h]."""

    name = "states-swapped-lstm"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        out = super().run(config, weights, inputs, mask=mask, initial_state=initial_state)
        return [out[0], out[2], out[1]] if len(out) == 3 else out

    def supports(self, config):
        return True if config["class_name"] == "LSTM" else "states-swapped-lstm implements LSTM only"


class MaskIgnoringRNN(RefImpl):
    """A port that accepts masks but ignores them."""

    name = "mask-ignoring"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        return super().run(config, weights, inputs, mask=None, initial_state=initial_state)

    def supports(self, config):
        return True if config["class_name"] == "SimpleRNN" else "mask-ignoring implements SimpleRNN only"


class NoRun:
    """Not an adapter: no run method."""
