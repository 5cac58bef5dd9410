"""GRUCell and GRU, checked against Keras 3.15.1 ``keras/src/layers/rnn/gru.py``.

Gate order in kernel, recurrent_kernel and bias columns: z (update), r (reset), h (candidate).

reset_after=True (default; bias (2, 3 units): row 0 input bias b_x, row 1 recurrent bias b_h):
    x_z, x_r, x_h = x_t @ kernel + b_x                      (B, units) each
    h_z, h_r, h_h = h_{t-1} @ recurrent_kernel + b_h
    z = recurrent_activation(x_z + h_z)      r = recurrent_activation(x_r + h_r)
    hh = activation(x_h + r * h_h)                          # reset applied after the matmul
reset_after=False (bias (3 units,), input side only):
    hh = activation(x_h + (r * h_{t-1}) @ recurrent_kernel[:, h columns])
Both:
    h_t = z * h_{t-1} + (1 - z) * hh

One state, h; the output is h.
"""

from __future__ import annotations

from typing import Any

from refimpl import activations
from refimpl._typing import Array, States
from refimpl.base import check_bool
from refimpl.cell import Dropped, RNNCell, check_implementation, forwarded
from refimpl.rnn import CellLayer


class GRUCell(RNNCell):
    GATES = ("z", "r", "h")
    config_keys = ("recurrent_activation", "reset_after")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, reset_after: bool = True, seed: int | None = None,
                 **kwargs: Any):
        implementation = check_implementation(kwargs.pop("implementation", 2))
        # Everything but this cell's own arguments goes to RNNCell.
        super().__init__(**forwarded(locals(), "recurrent_activation", "reset_after", "implementation"))
        self.recurrent_activation = activations.get(recurrent_activation, keras_version=self.keras_version)
        self.reset_after = check_bool("reset_after", reset_after)
        # Keras switches to one dropout mask per gate (implementation 1) with recurrent dropout.
        self.implementation = 1 if self.recurrent_dropout else implementation

    @property
    def dropout_mask_count(self) -> int | None:
        return len(self.GATES) if self.implementation == 1 else None

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self, bias: Array | None) -> Array | None:
        return bias[0] if bias is not None and self.reset_after else bias

    def step(self, x_proj: Array, states: States, training: bool = False) -> tuple[Array, States]:
        """x_proj = x_t @ kernel + b_x (B, 3 units); states = [h_tm1]."""
        h_tm1 = states[0]
        _, recurrent_kernel, bias = self._weights(x_proj.dtype)
        h_rec = self.recurrent_dropout_of(h_tm1, training)  # (B, u), or (3, B, u) per gate
        x_z, x_r, x_h = self.split_gates(x_proj)  # (B, u) each
        if self.reset_after:  # all three gates' recurrent products, plus the recurrent bias
            inner = self.project(self.recurrent_op, h_rec, recurrent_kernel, self.GATES)  # (B, 3u)
            if bias is not None:
                inner += bias[1]
            h_z, h_r, h_h = self.split_gates(inner)
        else:  # z's and r's only: the candidate's product needs r first
            h_z, h_r = self.split_gates(self.project(self.recurrent_op, h_rec, recurrent_kernel, ("z", "r")),
                                        ("z", "r"))
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        if self.reset_after:
            hh = self.activation(x_h + r * h_h)
        else:
            h_for_h = h_rec.value[2] if h_rec.per_gate else h_rec.value  # gate h's copy of h_tm1 (B, u)
            hh = self.activation(x_h + self.project(self.recurrent_op, Dropped(r * h_for_h, per_gate=False),
                                                    recurrent_kernel, ("h",)))
        h = z * h_tm1 + (1 - z) * hh  # (B, u)
        return h, [h]


class GRU(CellLayer):
    cell_class = GRUCell

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 reset_after: bool = True, use_cudnn: Any = "auto", **kwargs: Any):
        super().__init__(locals())
