"""JZS3 (Keras 0.2's name for MUT3, Jozefowicz et al. 2015), checked against Keras 0.2.0
``keras/layers/recurrent.py`` on Theano 1.0.5. Weights (Keras 0.2's order):
W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h.

    z   = inner_activation(x_t @ W_z + b_z + tanh(h_{t-1}) @ U_z)   tanh of the state feeds z
    r   = inner_activation(x_t @ W_r + b_r + h_{t-1} @ U_r)
    hh  = activation(x_t @ W_h + b_h + (r * h_{t-1}) @ U_h)
    h_t = hh * z + h_{t-1} * (1 - z)
"""

from __future__ import annotations

import numpy as np

from refimpl.legacy.cell import LegacyCell


class JZS3Cell(LegacyCell):
    WEIGHTS = (("W_z", "W"), ("U_z", "U"), ("b_z", "b"), ("W_r", "W"), ("U_r", "U"), ("b_r", "b"), ("W_h", "W"),
               ("U_h", "U"), ("b_h", "b"))

    def step(self, x, states, w):
        h = states[0]  # (B, units)
        z = self.inner_activation(x @ w["W_z"] + w["b_z"] + np.tanh(h) @ w["U_z"])
        r = self.inner_activation(x @ w["W_r"] + w["b_r"] + h @ w["U_r"])
        hh = self.activation(x @ w["W_h"] + w["b_h"] + (r * h) @ w["U_h"])
        h = hh * z + h * (1 - z)
        return h, [h]
