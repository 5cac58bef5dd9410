"""The recurrent layers of Keras 1.2.2 (``keras/layers/recurrent.py``, Theano backend), with its
signatures and defaults, checked against it (fixtures/keras-1.2.2_theano-1.0.5_cpu).

    >>> import numpy as np
    >>> from refimpl.legacy import keras1
    >>> layer = keras1.LSTM(4, consume_less="gpu", return_sequences=True)
    >>> layer(np.zeros((2, 5, 3))).shape
    (2, 5, 4)
    >>> [w.shape for w in layer.get_weights()]
    [(3, 16), (4, 16), (16,)]

Keras 1 computes today's equations (GRU: reset_after=False) with Theano's hard_sigmoid,
clip(0.2 x + 0.5, 0, 1), as ``inner_activation`` default, and today's masking. Its weight list
depends on ``consume_less``: "cpu" (default) and "mem" list one (W, U, b) triple per gate (LSTM
in the order i, c, f, o), "gpu" the fused [W, U, b] of today. The layers take no initial states.
"""

from __future__ import annotations

from typing import Any

from refimpl.base import check_choice, check_rate
from refimpl.gru import GRUCell
from refimpl.legacy import names
from refimpl.legacy.layer import Recurrent
from refimpl.lstm import LSTMCell
from refimpl.simple_rnn import SimpleRNNCell

_KEYS = ("name", "trainable", "return_sequences", "go_backwards", "stateful", "unroll", "consume_less",
         "input_dim", "input_length", "output_dim", "init", "inner_init", "activation", "W_regularizer",
         "U_regularizer", "b_regularizer", "dropout_W", "dropout_U")


class _Keras1(Recurrent):
    version = 1
    CONFIG_KEYS = _KEYS + ("inner_activation",)

    def __init__(self, args: dict):
        kwargs = args["kwargs"]
        defaults = {"trainable": True, "return_sequences": False, "go_backwards": False, "stateful": False,
                    "unroll": False, "consume_less": "cpu", "input_dim": None, "input_length": None}
        args.update({k: kwargs.pop(k, v) for k, v in defaults.items()})
        args["weights"] = kwargs.pop("weights", None)
        super().__init__(args)
        check_choice("consume_less", self.config["consume_less"], ("cpu", "mem", "gpu"))
        for key in ("dropout_W", "dropout_U"):
            check_rate(key, self.config[key])


class SimpleRNN(_Keras1):
    """h_t = activation(x_t @ W + b + h_{t-1} @ U). Weights: W, U, b."""

    layout = "SimpleRNN"
    CONFIG_KEYS = _KEYS

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "tanh", W_regularizer: Any = None, U_regularizer: Any = None,
                 b_regularizer: Any = None, dropout_W: float = 0.0, dropout_U: float = 0.0, **kwargs: Any):
        super().__init__(locals())

    def make_cell(self) -> Any:
        return SimpleRNNCell(self.output_dim, **self.today())


class GRU(_Keras1):
    """Today's GRU(reset_after=False). Weights: W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h, or with
    consume_less="gpu" W, U, b (gates z, r, h)."""

    layout = "GRU"

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "tanh", inner_activation: str = "hard_sigmoid", W_regularizer: Any = None,
                 U_regularizer: Any = None, b_regularizer: Any = None, dropout_W: float = 0.0,
                 dropout_U: float = 0.0, **kwargs: Any):
        super().__init__(locals())

    def make_cell(self) -> Any:
        return GRUCell(self.output_dim, reset_after=False, **self.today())


class LSTM(_Keras1):
    """Today's LSTM. Weights: W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o, or with
    consume_less="gpu" W, U, b (gates i, f, c, o)."""

    layout = "LSTM"
    CONFIG_KEYS = _Keras1.CONFIG_KEYS + ("forget_bias_init",)

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 forget_bias_init: str = "one", activation: str = "tanh", inner_activation: str = "hard_sigmoid",
                 W_regularizer: Any = None, U_regularizer: Any = None, b_regularizer: Any = None,
                 dropout_W: float = 0.0, dropout_U: float = 0.0, **kwargs: Any):
        super().__init__(locals())
        names.unit_forget_bias(forget_bias_init)

    def make_cell(self) -> Any:
        return LSTMCell(self.output_dim, unit_forget_bias=names.unit_forget_bias(self.config["forget_bias_init"]),
                        **self.today())


CLASSES = {c.__name__: c for c in (SimpleRNN, GRU, LSTM)}
