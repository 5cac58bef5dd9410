"""The recurrent layers of Keras 0.2.0 (``keras/layers/recurrent.py``, Theano), with its
signatures and defaults, checked against it (fixtures/keras-0.2.0_theano-1.0.5_cpu).

    >>> import numpy as np
    >>> from refimpl.legacy import keras0
    >>> layer = keras0.JZS1(output_dim=4, input_dim=3)
    >>> layer(np.zeros((2, 5, 3))).shape
    (2, 4)

What differs from today (docs/history.md): SimpleRNN and GRU default to ``activation="sigmoid"``;
every ``inner_activation`` defaults to Theano's hard_sigmoid, clip(0.2 x + 0.5, 0, 1) (JZS: sigmoid);
weights are one (W, U, b) triple per gate (LSTM in the order i, c, f, o); masking zeroes the state
a masked step hands on instead of keeping it (``refimpl.legacy.layer``); no go_backwards, stateful
or initial states. ``truncate_gradient`` limits backpropagation through time only (refimpl has no
backward pass for these layers), so it changes no output here.
"""

from __future__ import annotations

from typing import Any

from refimpl.base import check_positive_int
from refimpl.gru import GRUCell
from refimpl.legacy import names
from refimpl.legacy.jzs1 import JZS1Cell
from refimpl.legacy.jzs2 import JZS2Cell
from refimpl.legacy.jzs3 import JZS3Cell
from refimpl.legacy.layer import Recurrent
from refimpl.legacy.simple_deep_rnn import SimpleDeepRNNCell
from refimpl.lstm import LSTMCell
from refimpl.simple_rnn import SimpleRNNCell

_KEYS = ("name", "output_dim", "init", "inner_init", "activation", "truncate_gradient", "return_sequences",
         "input_dim", "input_length")


class _Keras0(Recurrent):
    version = 0
    CONFIG_KEYS = _KEYS + ("inner_activation",)

    def __init__(self, args: dict):
        super().__init__(args)
        if isinstance(self.config["truncate_gradient"], bool) or not isinstance(self.config["truncate_gradient"], int):
            raise TypeError(f"truncate_gradient={self.config['truncate_gradient']!r}, expected an int (-1: no limit)")

    def legacy_cell(self, cls: type, **extra: Any) -> Any:
        """A Keras 0.2-only cell (JZS, SimpleDeepRNN), which keeps the old argument names."""
        today = self.today()
        return cls(self.output_dim, activation=today["activation"], inner_activation=today["recurrent_activation"],
                   init=self.config["init"], inner_init=self.config["inner_init"], **extra)


class SimpleRNN(_Keras0):
    """h_t = activation(x_t @ W + b + h_{t-1} @ U). Weights: W, U, b."""

    layout = "SimpleRNN"
    CONFIG_KEYS = _KEYS

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "sigmoid", weights: Any = None, truncate_gradient: int = -1,
                 return_sequences: bool = False, input_dim: int | None = None, input_length: int | None = None,
                 **kwargs: Any):
        super().__init__(locals())

    def make_cell(self) -> Any:
        return SimpleRNNCell(self.output_dim, **self.today())


class GRU(_Keras0):
    """Today's GRU(reset_after=False) equations. Weights: W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h."""

    layout = "GRU"

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "sigmoid", inner_activation: str = "hard_sigmoid", weights: Any = None,
                 truncate_gradient: int = -1, return_sequences: bool = False, input_dim: int | None = None,
                 input_length: int | None = None, **kwargs: Any):
        super().__init__(locals())

    def make_cell(self) -> Any:
        return GRUCell(self.output_dim, reset_after=False, **self.today())


class LSTM(_Keras0):
    """Today's LSTM equations. Weights: W_i, U_i, b_i, W_c, U_c, b_c, W_f, U_f, b_f, W_o, U_o, b_o."""

    layout = "LSTM"
    CONFIG_KEYS = _Keras0.CONFIG_KEYS + ("forget_bias_init",)

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 forget_bias_init: str = "one", activation: str = "tanh", inner_activation: str = "hard_sigmoid",
                 weights: Any = None, truncate_gradient: int = -1, return_sequences: bool = False,
                 input_dim: int | None = None, input_length: int | None = None, **kwargs: Any):
        super().__init__(locals())
        names.unit_forget_bias(forget_bias_init)

    def make_cell(self) -> Any:
        return LSTMCell(self.output_dim, unit_forget_bias=names.unit_forget_bias(self.config["forget_bias_init"]),
                        **self.today())


class SimpleDeepRNN(_Keras0):
    """refimpl/legacy/simple_deep_rnn.py. Weights: W, U_1 ... U_depth, b."""

    CONFIG_KEYS = _Keras0.CONFIG_KEYS + ("depth",)

    def __init__(self, output_dim: int, depth: int = 3, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "sigmoid", inner_activation: str = "hard_sigmoid", weights: Any = None,
                 truncate_gradient: int = -1, return_sequences: bool = False, input_dim: int | None = None,
                 input_length: int | None = None, **kwargs: Any):
        check_positive_int("depth", depth)
        super().__init__(locals())

    def make_cell(self) -> Any:
        return self.legacy_cell(SimpleDeepRNNCell, depth=self.config["depth"])


class _JZS(_Keras0):
    cell_class: type

    def __init__(self, output_dim: int, init: str = "glorot_uniform", inner_init: str = "orthogonal",
                 activation: str = "tanh", inner_activation: str = "sigmoid", weights: Any = None,
                 truncate_gradient: int = -1, return_sequences: bool = False, input_dim: int | None = None,
                 input_length: int | None = None, **kwargs: Any):
        super().__init__(locals())

    def make_cell(self) -> Any:
        return self.legacy_cell(self.cell_class)


class JZS1(_JZS):
    """refimpl/legacy/jzs1.py (MUT1). Weights: W_z, b_z, W_r, U_r, b_r, U_h, b_h, Pmat."""

    cell_class = JZS1Cell


class JZS2(_JZS):
    """refimpl/legacy/jzs2.py (MUT2). Weights: W_z, U_z, b_z, U_r, b_r, W_h, U_h, b_h, Pmat."""

    cell_class = JZS2Cell


class JZS3(_JZS):
    """refimpl/legacy/jzs3.py (MUT3). Weights: W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h."""

    cell_class = JZS3Cell


CLASSES = {c.__name__: c for c in (SimpleRNN, SimpleDeepRNN, GRU, LSTM, JZS1, JZS2, JZS3)}
