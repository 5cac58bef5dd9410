"""``deserialize``: build a refimpl twin from a Keras layer config (Keras 3 or Keras 2 form).

Keras 3's ``keras.layers.serialize(layer)`` gives ``{"module", "class_name", "config",
"registered_name", "build_config"}``; Keras 2 (tf-keras) gives ``{"class_name", "config"}``. Both
nest the same way for ``RNN(cell=...)``, ``StackedRNNCells(cells=[...])`` and
``Bidirectional(layer=..., backward_layer=...)``. Classes are looked up in ``base.REGISTRY``, where
every refimpl layer and cell class registers itself when it is defined.
"""

from __future__ import annotations

from typing import Any

from refimpl._typing import Config
from refimpl.base import REGISTRY


def serialize(obj: Any) -> Config:
    """The Keras 3 form of a refimpl layer or cell (custom cells need their own get_config)."""
    if not hasattr(obj, "get_config"):
        raise TypeError(f"{obj!r} has no get_config(), so it cannot be serialized")
    out = {"module": "keras.layers", "class_name": type(obj).__name__, "config": obj.get_config(),
           "registered_name": None}
    shape = getattr(obj, "build_input_shape", None)
    if shape is not None:  # Keras writes the shape a built layer was built with
        out["build_config"] = {"input_shape": list(shape)}
    return out


def deserialize(config: Config, *, keras_version: int = 3, custom_objects: dict[str, type] | None = None) -> Any:
    """A refimpl layer or cell from ``keras.layers.serialize(layer)`` output (Keras 3 or 2 form).

    ``keras_version`` selects the semantics where Keras 2 and 3 differ (hard_sigmoid); a
    ``build_config`` in the dict builds the layer. ``custom_objects`` maps class names to classes
    for user cells (their ``__init__`` receives the config as keyword arguments).
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(f"config={config!r}, expected a dict with 'class_name' and 'config' "
                         "(the output of keras.layers.serialize)")
    classes = {**REGISTRY, **(custom_objects or {})}
    name = config["class_name"]
    if name not in classes:
        raise NotImplementedError(f"class_name={name!r}: refimpl has {sorted(classes)}")
    kwargs = dict(config["config"])
    if "cell" in kwargs:
        kwargs["cell"] = deserialize(kwargs["cell"], keras_version=keras_version, custom_objects=custom_objects)
    for key in ("layer", "backward_layer"):  # Bidirectional
        if kwargs.get(key) is not None:
            kwargs[key] = deserialize(kwargs[key], keras_version=keras_version, custom_objects=custom_objects)
    if "cells" in kwargs:
        kwargs["cells"] = [deserialize(c, keras_version=keras_version, custom_objects=custom_objects)
                           for c in kwargs["cells"]]
    cls = classes[name]
    obj = cls(**kwargs, keras_version=keras_version) if REGISTRY.get(name) is cls else cls(**kwargs)
    build = (config.get("build_config") or {}).get("input_shape")
    if build is not None and hasattr(obj, "build"):
        obj.build(tuple(build))
    return obj
