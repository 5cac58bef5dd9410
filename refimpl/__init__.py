"""refimpl: a NumPy reference implementation of Keras's recurrent layers (an executable spec).

Every class mirrors its ``keras.layers`` twin (Keras 3.15): same constructor arguments and
defaults, same weight order and shapes, same outputs. NumPy is the only dependency.

    >>> import numpy as np, refimpl
    >>> layer = refimpl.LSTM(4, return_sequences=True)
    >>> layer(np.zeros((2, 5, 3))).shape
    (2, 5, 4)

``keras_version=2`` (a keyword on every layer, cell and ``deserialize``) selects Keras 2 semantics
where they differ: today, hard_sigmoid's definition. See docs/semantics.md. The layers of Keras
0.2.0 and 1.2.2 (JZS1/2/3, SimpleDeepRNN, consume_less, ...) are in ``refimpl.legacy``
(docs/history.md); ``deserialize(config, keras_version=0 | 1)`` reads their configs.

``refimpl.vjp(layer, inputs, cotangents, ...)`` is the backward pass (refimpl/vjp.py): the
gradients of sum_i <output_i, cotangent_i> for the inputs, the weights and the initial states.
"""

from refimpl import legacy
from refimpl.bidirectional import Bidirectional
from refimpl.cell import DropoutMasks
from refimpl.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, ConvLSTMCell
from refimpl.gru import GRU, GRUCell
from refimpl.lstm import LSTM, LSTMCell
from refimpl.rnn import RNN
from refimpl.serialization import deserialize as _deserialize
from refimpl.serialization import serialize
from refimpl.simple_rnn import SimpleRNN, SimpleRNNCell
from refimpl.stacked import StackedRNNCells
from refimpl.vjp import Gradients, vjp, vjp_fn


def deserialize(config: dict, *, keras_version: int = 3, custom_objects: dict | None = None):
    """A refimpl layer from a saved Keras config: ``keras.layers.serialize(layer)`` of Keras 3 or 2
    (``refimpl.serialization``), or Keras 0.2.0's ``layer.get_config()`` (keras_version=0) and
    Keras 1.2.2's ``{"class_name", "config"}`` (keras_version=1), read by ``refimpl.legacy``."""
    if keras_version in (0, 1):
        return legacy.deserialize(config, keras_version)
    return _deserialize(config, keras_version=keras_version, custom_objects=custom_objects)


__version__ = "0.1.0"
KERAS_VERSION = "3.15.1"  # the Keras release the reference was checked against

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "ConvLSTMCell",
    "DropoutMasks",
    "GRUCell",
    "Gradients",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "deserialize",
    "legacy",
    "serialize",
    "vjp",
    "vjp_fn",
]
