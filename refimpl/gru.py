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

One state, h; the output is h. The backward step (``step_vjp``) carries its equations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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

    def step(self, x_proj: Array, states: States, training: bool,
             tape: list | None = None) -> tuple[Array, States]:
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
        a_z, a_r = x_z + h_z, x_r + h_r  # the pre-activations, kept for the backward step
        z = self.recurrent_activation(a_z)
        r = self.recurrent_activation(a_r)
        if self.reset_after:
            rh = None
            a = x_h + r * h_h
        else:
            h_for_h = h_rec.value[2] if h_rec.per_gate else h_rec.value  # gate h's copy of h_tm1 (B, u)
            rh = Dropped(r * h_for_h, per_gate=False)
            a = x_h + self.project(self.recurrent_op, rh, recurrent_kernel, ("h",))
        hh = self.activation(a)
        h = z * h_tm1 + (1 - z) * hh  # (B, u)
        if tape is not None:
            tape.append((h_rec, h_tm1, a_z, a_r, z, r, h_h if self.reset_after else rh, a, hh))
        return h, [h]

    def step_vjp(self, saved: tuple, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """From d_h (the output's and the state's), with a the candidate's pre-activation:
            d_z = d_h * (h_tm1 - hh)    d_hh = d_h * (1 - z)    d_h_tm1 = d_h * z   (+ the recurrent path)
            d_a = activation'(a) d_hh;  d_x_h = d_a
            reset_after:  d_r = d_a * h_h;  d_h_h = d_a * r  (d_bias[1] += d of the recurrent sums)
            otherwise:    d(r * h) = d_a @ U_h.T, d_U_h += (r * h).T @ d_a;  d_r = d(r * h) * h,
                          and h gets d(r * h) * r
            d_x_z = d_h_z = recurrent_activation'(.) d_z;  d_x_r = d_h_r = recurrent_activation'(.) d_r"""
        h_rec, h_tm1, a_z, a_r, z, r, h_h_or_rh, a, hh = saved
        _, recurrent_kernel, bias = self._weights(a.dtype)
        g = grads[self]
        act, rec = activations.vjp(self.activation), activations.vjp(self.recurrent_activation)
        d_h = d_h + d_states[0]
        d_a = act(a, hh, d_h * (1 - z))
        if self.reset_after:
            d_r = d_a * h_h_or_rh
            d_inner = np.concatenate([rec(a_z, z, d_h * (h_tm1 - hh)), rec(a_r, r, d_r), d_a * r], axis=-1)
            if bias is not None:
                g.bias[1] += d_inner.sum(axis=0)
            d_h_rec = self.project_vjp(self.recurrent_op_vjp, h_rec, recurrent_kernel, self.GATES, d_inner, g,
                                       "recurrent_kernel")
        else:
            rh = h_h_or_rh
            d_rh = self.project_vjp(self.recurrent_op_vjp, rh, recurrent_kernel, ("h",), d_a, g, "recurrent_kernel")
            h_for_h = h_rec.value[2] if h_rec.per_gate else h_rec.value
            d_r = d_rh * h_for_h
            d_zr = np.concatenate([rec(a_z, z, d_h * (h_tm1 - hh)), rec(a_r, r, d_r)], axis=-1)
            d_h_rec = self.project_vjp(self.recurrent_op_vjp, h_rec, recurrent_kernel, ("z", "r"), d_zr, g,
                                       "recurrent_kernel")
            if h_rec.per_gate:
                d_h_rec[2] += d_rh * r
            else:
                d_h_rec = d_h_rec + d_rh * r
        d_x_proj = np.concatenate([d_inner[..., :2 * self.units], d_a] if self.reset_after else [d_zr, d_a], axis=-1)
        return d_x_proj, [d_h * z + self.recurrent_dropout_vjp(d_h_rec, h_rec, training)]


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
