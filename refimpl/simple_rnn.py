"""SimpleRNNCell and SimpleRNN, checked against Keras 3.15.1 ``keras/src/layers/rnn/simple_rnn.py``.

    h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)

Weights (Keras's ``get_weights()`` order): kernel (input_dim, units), recurrent_kernel
(units, units), bias (units,). One state, h; the output is h.
"""

from __future__ import annotations

from typing import Any

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

    def step(self, x_proj: Array, states: States, training: bool = False) -> tuple[Array, States]:
        """x_proj = x_t @ kernel + bias (B, units); states = [h_tm1]."""
        _, recurrent_kernel, _ = self._weights(x_proj.dtype)
        h_tm1 = self.recurrent_dropout_of(states[0], training)  # (B, units)
        h = self.activation(x_proj + self.project(self.recurrent_op, h_tm1, recurrent_kernel, self.GATES))
        return h, [h]  # (B, units)


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
