"""LSTMCell and LSTM, checked against Keras 3.15.1 ``keras/src/layers/rnn/lstm.py``.

Gate order in kernel, recurrent_kernel and bias columns: i, f, c, o (``GATES``).

    z          = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias      (B, 4 units)
    i, f, c~, o = z split in four along the last axis
    i = recurrent_activation(i)     f = recurrent_activation(f)     o = recurrent_activation(o)
    c_t = f * c_{t-1} + i * activation(c~)
    h_t = o * activation(c_t)

States [h, c]; the output is h. ``unit_forget_bias=True`` initialises the f slice of bias to 1.
The backward step (``step_vjp``) carries its own equations beside the forward one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refimpl import activations
from refimpl._typing import Array, States
from refimpl.base import check_bool
from refimpl.cell import RNNCell, check_implementation, forwarded
from refimpl.rnn import CellLayer


class LSTMCell(RNNCell):
    GATES = ("i", "f", "c", "o")
    config_keys = ("recurrent_activation", "unit_forget_bias")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        implementation = check_implementation(kwargs.pop("implementation", 2))
        # Everything but this cell's own arguments goes to RNNCell.
        super().__init__(**forwarded(locals(), "recurrent_activation", "unit_forget_bias", "implementation"))
        self.recurrent_activation = activations.get(recurrent_activation, keras_version=self.keras_version)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        # Keras switches to one dropout mask per gate (implementation 1) with recurrent dropout.
        self.implementation = 1 if self.recurrent_dropout else implementation

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    @property
    def dropout_mask_count(self) -> int | None:
        return len(self.GATES) if self.implementation == 1 else None

    def initial_bias(self, dtype: np.dtype) -> Array:
        if not self.unit_forget_bias:
            return super().initial_bias(dtype)
        u = self.units
        return np.concatenate([self.bias_initializer((u,), dtype), np.ones(u, dtype),  # i, f
                               self.bias_initializer((2 * u,), dtype)])  # c, o

    def step(self, x_proj: Array, states: States, training: bool,
             tape: list | None = None) -> tuple[Array, States]:
        """x_proj = x_t @ kernel + bias (B, 4 units); states = [h_tm1, c_tm1]."""
        h_tm1, c_tm1 = states
        _, recurrent_kernel, _ = self._weights(x_proj.dtype)
        h_rec = self.recurrent_dropout_of(h_tm1, training)  # (B, u), or (4, B, u) per gate
        z = x_proj + self.project(self.recurrent_op, h_rec, recurrent_kernel, self.GATES)  # (B, ..., 4u)
        z_i, z_f, z_c, z_o = self.split_gates(z)  # (B, ..., u) each
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        g = self.activation(z_c)  # c~
        c = f * c_tm1 + i * g  # (B, u)
        o = self.recurrent_activation(z_o)
        act_c = self.activation(c)
        h = o * act_c  # (B, u)
        if tape is not None:
            tape.append((h_rec, c_tm1, z, i, f, g, o, c, act_c))
        return h, [h, c]

    def step_vjp(self, saved: tuple, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """From d_h (the output's and the state's) and d_c:
            d_o = d_h * activation(c)        d_c += d_h * o * activation'(c)
            d_f = d_c * c_tm1   d_i = d_c * c~   d_c~ = d_c * i   d_c_tm1 = d_c * f
            d_z = [recurrent_activation'(z_i) d_i, ..'(z_f) d_f, activation'(z_c) d_c~, ..'(z_o) d_o]
            d_x_proj = d_z;  d_recurrent_kernel += h_rec.T @ d_z;  d_h_tm1 = d_z @ recurrent_kernel.T"""
        h_rec, c_tm1, z, i, f, g, o, c, act_c = saved
        _, recurrent_kernel, _ = self._weights(z.dtype)
        act, rec = activations.vjp(self.activation), activations.vjp(self.recurrent_activation)
        d_h = d_h + d_states[0]
        z_i, z_f, z_c, z_o = self.split_gates(z)
        d_c = d_states[1] + act(c, act_c, d_h * o)
        d_z = np.concatenate([rec(z_i, i, d_c * g), rec(z_f, f, d_c * c_tm1), act(z_c, g, d_c * i),
                              rec(z_o, o, d_h * act_c)], axis=-1)  # (B, ..., 4u)
        d_h_rec = self.project_vjp(self.recurrent_op_vjp, h_rec, recurrent_kernel, self.GATES, d_z, grads[self],
                                   "recurrent_kernel")
        return d_z, [self.recurrent_dropout_vjp(d_h_rec, h_rec, training), d_c * f]


class LSTM(CellLayer):
    cell_class = LSTMCell

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, use_cudnn: Any = "auto", **kwargs: Any):
        super().__init__(locals())
