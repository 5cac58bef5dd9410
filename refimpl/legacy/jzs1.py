"""JZS1 (Keras 0.2's name for MUT1, Jozefowicz et al. 2015), checked against Keras 0.2.0
``keras/layers/recurrent.py`` on Theano 1.0.5. Weights (Keras 0.2's order):
W_z, b_z, W_r, U_r, b_r, U_h, b_h, Pmat (a fixed random projection, input_dim x units).

    z   = inner_activation(x_t @ W_z + b_z)                       no recurrent term
    r   = inner_activation(x_t @ W_r + b_r + h_{t-1} @ U_r)
    hh  = activation(tanh(x_t @ Pmat) + b_h + (r * h_{t-1}) @ U_h)
    h_t = hh * z + h_{t-1} * (1 - z)
"""

from __future__ import annotations

import numpy as np

from refimpl.legacy.cell import LegacyCell


class JZS1Cell(LegacyCell):
    WEIGHTS = (("W_z", "W"), ("b_z", "b"), ("W_r", "W"), ("U_r", "U"), ("b_r", "b"), ("U_h", "U"), ("b_h", "b"),
               ("Pmat", "P"))

    def step(self, x, states, w):
        h = states[0]  # (B, units)
        z = self.inner_activation(x @ w["W_z"] + w["b_z"])
        r = self.inner_activation(x @ w["W_r"] + w["b_r"] + h @ w["U_r"])
        hh = self.activation(np.tanh(x @ w["Pmat"]) + w["b_h"] + (r * h) @ w["U_h"])
        h = hh * z + h * (1 - z)
        return h, [h]
