"""refimpl: a NumPy reference implementation of Keras's recurrent layers (an executable spec).

Every class mirrors its ``keras.layers`` twin (Keras 3.15): same constructor arguments and
defaults, same weight order and shapes, same outputs. NumPy is the only dependency.

    >>> import numpy as np, refimpl
    >>> layer = refimpl.LSTM(4, return_sequences=True)
    >>> layer(np.zeros((2, 5, 3))).shape
    (2, 5, 4)

``keras_version=2`` (a keyword on every layer, cell and ``deserialize``) selects Keras 2 semantics
where they differ: today, hard_sigmoid's definition. See docs/semantics.md.

``refimpl.vjp(layer, inputs, cotangents, ...)`` is the backward pass (refimpl/vjp.py): the
gradients of sum_i <output_i, cotangent_i> for the inputs, the weights and the initial states.
"""

from refimpl.bidirectional import Bidirectional
from refimpl.cell import DropoutMasks
from refimpl.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, ConvLSTMCell
from refimpl.gru import GRU, GRUCell
from refimpl.lstm import LSTM, LSTMCell
from refimpl.rnn import RNN
from refimpl.serialization import deserialize, serialize
from refimpl.simple_rnn import SimpleRNN, SimpleRNNCell
from refimpl.stacked import StackedRNNCells
from refimpl.vjp import Gradients, vjp, vjp_fn

__version__ = "0.1.0"
KERAS_VERSION = "3.15.1"  # the Keras release the reference was checked against

__all__ = ["SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN",
           "StackedRNNCells", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTMCell",
           "Bidirectional", "DropoutMasks", "deserialize", "serialize", "vjp", "vjp_fn", "Gradients"]
