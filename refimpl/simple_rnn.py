"""SimpleRNNCell and SimpleRNN, checked against Keras 3.15.1 ``keras/src/layers/rnn/simple_rnn.py``.

    h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)

Backward (``step_vjp``), with a_t the pre-activation: d_a = activation'(a_t) * d_h_t,
d_h_{t-1} = d_a @ recurrent_kernel.T, d_recurrent_kernel += h_{t-1}.T @ d_a, and d_a is the
gradient of x_t @ kernel + bias (``project_inputs_vjp`` turns it into d_x, d_kernel, d_bias).

Weights (Keras's ``get_weights()`` order): kernel (input_dim, units), recurrent_kernel
(units, units), bias (units,). One state, h; the output is h.
"""

from __future__ import annotations

from typing import Any

from refimpl import activations
from refimpl._typing import Array, States
from refimpl.cell import RNNCell, forwarded
from refimpl.rnn import CellLayer


class SimpleRNNCell(RNNCell):
    GATES = ("h",)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**forwarded(locals()))  # every argument is a shared one

    def step(self, x_proj: Array, states: States, training: bool,
             tape: list | None = None) -> tuple[Array, States]:
        """x_proj = x_t @ kernel + bias (B, units); states = [h_tm1]."""
        _, recurrent_kernel, _ = self._weights(x_proj.dtype)
        h_rec = self.recurrent_dropout_of(states[0], training)  # (B, units)
        a = x_proj + self.project(self.recurrent_op, h_rec, recurrent_kernel, self.GATES)  # (B, units)
        h = self.activation(a)
        if tape is not None:
            tape.append((h_rec, a, h))
        return h, [h]

    def step_vjp(self, saved: tuple, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """With a = x_proj + h_rec @ recurrent_kernel and h = activation(a):
            d_a = activation'(a) * (d_h + d_h_state)      d_x_proj = d_a
            d_recurrent_kernel += h_rec.T @ d_a           d_h_tm1 = d_a @ recurrent_kernel.T"""
        h_rec, a, h = saved
        _, recurrent_kernel, _ = self._weights(a.dtype)
        d_a = activations.vjp(self.activation)(a, h, d_h + d_states[0])  # (B, units)
        d_h_rec = self.project_vjp(self.recurrent_op_vjp, h_rec, recurrent_kernel, self.GATES, d_a, grads[self],
                                   "recurrent_kernel")
        return d_a, [self.recurrent_dropout_vjp(d_h_rec, h_rec, training)]


class SimpleRNN(CellLayer):
    cell_class = SimpleRNNCell
    config_omits = ("seed",)  # Keras 3.15's SimpleRNN.get_config has no "seed" (LSTM and GRU do)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, seed: int | None = None, **kwargs: Any):
        super().__init__(locals())
