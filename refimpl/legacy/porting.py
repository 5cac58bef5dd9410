"""Loading an old checkpoint into a newer Keras: a Keras 0.2 / 1.2.2 SimpleRNN, GRU or LSTM as the
config and weight list of the same layer in Keras 1.2.2, 2 (tf-keras) or 3.

    >>> import numpy as np
    >>> from refimpl.legacy import keras0, port
    >>> old = keras0.GRU(output_dim=4, input_dim=3)                  # Keras 0.2.0 defaults
    >>> config, weights = port(old, keras_version=3)
    >>> config["class_name"], config["config"]["activation"], config["config"]["reset_after"]
    ('GRU', 'sigmoid', False)
    >>> [w.shape for w in weights]                                    # kernel, recurrent_kernel, bias
    [(3, 12), (4, 12), (12,)]

``keras.layers.deserialize(config)``, ``build``, ``set_weights(weights)`` load it in Keras (3: also
refimpl.deserialize). The old defaults are written out (a Keras 0.2 GRU's sigmoid activation, every
hard_sigmoid inner activation) and the gates reordered (names.py). What no argument carries over,
and so changes the numbers (docs/history.md, README "Ten years of Keras"):
    - Keras 0.2's masking (a masked step zeroes the state it hands on) -> held states (Keras >= 1);
    - hard_sigmoid: Keras <= 2 compute clip(0.2 x + 0.5, 0, 1), Keras 3 relu6(x + 3) / 6.
JZS1/2/3 and SimpleDeepRNN have no twin in later Keras: ``port`` raises NotImplementedError.
"""

from __future__ import annotations

from typing import Any

from refimpl._typing import Array
from refimpl.legacy import keras1, names
from refimpl.legacy.layer import Recurrent


def port(layer: Recurrent, keras_version: int = 3, *, dtype: str | None = None) -> tuple[dict[str, Any], list[Array]]:
    """(config, weights) of ``layer`` (built, weights set) for Keras ``keras_version`` (1, 2 or 3):
    Keras 1.2.2's ``{"class_name", "config"}`` with the per-gate list, or Keras 2/3's serialized
    layer with [kernel, recurrent_kernel, bias]. ``dtype`` (Keras 2/3): the layer's dtype, e.g.
    "float64" for a checkpoint of Theano's floatX=float64 (Keras's default, float32, if None)."""
    name = type(layer).__name__
    if layer.layout is None:
        raise NotImplementedError(f"{name}: Keras {layer.release}'s own layer; no later Keras has it "
                                  f"(use refimpl.legacy.keras{layer.version}.{name})")
    if keras_version not in (1, 2, 3) or keras_version <= layer.version:
        raise ValueError(f"keras_version={keras_version!r}, expected a later Keras than {layer.release}: 1, 2 or 3")
    c = layer.config
    loop = {k: c.get(k, False) for k in ("return_sequences", "go_backwards", "stateful", "unroll")}
    if keras_version == 1:
        args = {k: c[k] for k in keras1.CLASSES[name].CONFIG_KEYS if k in c and k != "name"}
        config = {**args, **loop, "consume_less": c.get("consume_less", "cpu"),
                  "activation": names.ACTIVATION_ALIASES.get(c["activation"], c["activation"]),
                  **{k: c.get(k, 0.0) for k in ("dropout_W", "dropout_U")}}
        return {"class_name": name, "config": config}, layer.get_weights()
    today = {"units": layer.output_dim, **{k: v for k, v in layer.today().items() if k in (
        "activation", "recurrent_activation", "dropout", "recurrent_dropout")}}
    if name == "GRU":
        today["reset_after"] = False  # Keras 3 defaults to True: a second bias row these weights lack
    if name == "LSTM":
        today["unit_forget_bias"] = names.unit_forget_bias(c["forget_bias_init"])
    config = {"class_name": name, "config": {**today, **loop, "use_bias": True}}
    if dtype is not None:
        config["config"]["dtype"] = dtype
    if keras_version == 3:
        config = {"module": "keras.layers", **config, "registered_name": None}
    return config, names.fused(name, layer.get_weights(), layer.per_gate)
