"""The recurrent layers of Keras 0.2.0 and 1.2.2, each checked against that Keras on Theano.

    refimpl.legacy.keras0   SimpleRNN, GRU, LSTM, SimpleDeepRNN, JZS1, JZS2, JZS3 (Keras 0.2.0)
    refimpl.legacy.keras1   SimpleRNN, GRU, LSTM (Keras 1.2.2)

Each takes its version's arguments and defaults, returns its version's ``get_config()``, and
``set_weights`` takes exactly its version's ``get_weights()`` list. ``refimpl.deserialize(config,
keras_version=0 | 1)`` builds one from a saved config. The cells are today's (``refimpl.lstm``, ...)
where the equations are the same, and new short modules where they are not (jzs1.py, jzs2.py,
jzs3.py, simple_deep_rnn.py); names.py translates the old argument names and weight lists;
layer.py holds what differs in the loop (Keras 0.2's masking). ``port(layer, keras_version)``
(porting.py) gives an old SimpleRNN/GRU/LSTM's config and weights for a later Keras. What changed
when: docs/history.md.
"""

from __future__ import annotations

from typing import Any

from refimpl._typing import Config
from refimpl.legacy import keras0, keras1
from refimpl.legacy.layer import Recurrent
from refimpl.legacy.porting import port


def deserialize(config: Config, keras_version: int) -> Recurrent:
    """A layer from Keras 0.2.0's ``layer.get_config()`` (keras_version=0: the class in "name") or
    from Keras 1.2.2's ``{"class_name": ..., "config": layer.get_config()}`` (keras_version=1)."""
    if keras_version == 0:
        if not isinstance(config, dict) or "name" not in config or "output_dim" not in config:
            raise ValueError(f"config={config!r}, expected Keras 0.2's layer.get_config(): a dict with 'name' "
                             "(the class) and 'output_dim'")
        classes, name, kwargs = keras0.CLASSES, config["name"], {k: v for k, v in config.items() if k != "name"}
    elif keras_version == 1:
        if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
            raise ValueError(f"config={config!r}, expected Keras 1's {{'class_name': ..., 'config': "
                             "layer.get_config()}")
        classes, name, kwargs = keras1.CLASSES, config["class_name"], dict(config["config"])
    else:
        raise ValueError(f"keras_version={keras_version!r}, expected 0 or 1 here")
    if name not in classes:
        raise NotImplementedError(f"class {name!r}: refimpl.legacy.keras{keras_version} has {sorted(classes)}")
    return classes[name](**kwargs)


def serialize(layer: Recurrent) -> Any:
    """What that version saves: Keras 0.2's get_config() itself, Keras 1's {class_name, config}."""
    config = layer.get_config()
    return config if layer.version == 0 else {"class_name": type(layer).__name__, "config": config}


__all__ = ["Recurrent", "deserialize", "keras0", "keras1", "port", "serialize"]
