"""SimpleDeepRNN (Keras 0.2): a SimpleRNN that looks ``depth`` steps back, checked against Keras
0.2.0 ``keras/layers/recurrent.py`` on Theano 1.0.5. Weights: W, U_1 ... U_depth, b.

    h_t = activation(x_t @ W + b + sum_{i=1..depth} m_{t-i} * inner_activation(h_{t-i} @ U_i))

m_{t-i} is 1 for a valid step t-i and 0 for a masked one or one before the sequence: Keras 0.2
pads the mask with ``depth`` zeros in front, and masks each lag's *term*, so a masked lag adds 0,
not inner_activation(0) (0.5 for hard_sigmoid).

States: the last ``depth`` outputs, newest first, then their ``depth`` mask flags (B, 1); the step
shifts both by one. Only the newest pair is the step's own (``fresh_states``): the time loop
zeroes those after a masked step and leaves the older lags as they were.
"""

from __future__ import annotations

import numpy as np

from refimpl.base import check_positive_int
from refimpl.legacy.cell import LegacyCell


class SimpleDeepRNNCell(LegacyCell):
    def __init__(self, units: int, *, depth: int = 3, **kwargs):
        super().__init__(units, **kwargs)
        self.depth = check_positive_int("depth", depth)
        self.WEIGHTS = (("W", "W"), *((f"U_{i}", "U") for i in range(1, depth + 1)), ("b", "b"))
        self.fresh_states = (0, self.depth)

    @property
    def state_size(self) -> list[int]:
        return [self.units] * self.depth + [1] * self.depth

    def step(self, x, states, w):
        hs, ms = states[:self.depth], states[self.depth:]  # h_{t-1..t-depth} (B, u); m_{t-1..t-depth} (B, 1)
        o = x @ w["W"] + w["b"]  # (B, u)
        for i, (h, m) in enumerate(zip(hs, ms), start=1):
            o = o + m * self.inner_activation(h @ w[f"U_{i}"])
        h = self.activation(o)
        return h, [h, *hs[:-1], np.ones_like(ms[0]), *ms[:-1]]
