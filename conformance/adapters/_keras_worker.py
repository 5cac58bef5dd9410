"""The worker behind ``keras_backend``: reads requests on stdin, runs Keras, replies on stdout.

Started with ``KERAS_BACKEND`` set. Each "run" request builds the layer from its config, sets the
weights, pins the dropout masks (as the live oracle does, ``runners._pin_dropout_masks``) and makes
the calls; a Keras exception is replied as text, and the worker goes on.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import numpy as np

from conformance.adapters import _wire


def _versions(keras) -> dict:
    backend = keras.backend.backend()
    out = {"keras": keras.__version__, "backend": backend}
    module = __import__(backend)
    out[backend] = module.__version__
    if backend == "jax":
        import jax

        out["devices"] = ", ".join(str(d) for d in jax.devices())
    elif backend == "torch":
        import torch

        out["devices"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        out["cudnn"] = str(torch.backends.cudnn.version()) if torch.cuda.is_available() else ""
    return out


def _run(keras, meta: dict, req: dict) -> list[np.ndarray]:
    from conformance.runners import _cells, _pin_dropout_masks, _tensor, _to_tensor

    layer = keras.layers.deserialize(meta["config"])
    first = next(c for c in req["calls"] if c != "reset_state")
    layer.build(tuple(first["inputs"].shape))
    layer.set_weights(req["weights"])
    dtype = str(first["inputs"].dtype)
    if req["dropout_masks"] is not None:
        for cell, (dp, rec) in zip(_cells(layer), req["dropout_masks"]):
            _pin_dropout_masks(keras, cell, dp, rec, dtype)
    outputs = []
    for call in req["calls"]:
        if call == "reset_state":
            layer.reset_state()
            continue
        kwargs = {"training": meta["training"]}
        if call["mask"] is not None:
            kwargs["mask"] = _tensor(call["mask"])
        if call["initial_state"] is not None:
            kwargs["initial_state"] = _to_tensor(keras, call["initial_state"], dtype)
        out = layer(_tensor(call["inputs"]), **kwargs)
        outputs += [np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(out)]
    return outputs


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything printed goes to stderr
    os.dup2(2, 1)
    import keras

    hook = os.environ.get("RNN_CONFORMANCE_WORKER_HOOK")  # e.g. conformance.dispatch (docs/gpu.md)
    if hook:
        importlib.import_module(hook).install()
    stdin = sys.stdin.buffer
    while True:
        req = _wire.receive(stdin)
        if req is None:
            return
        try:
            if req["op"] == "versions":
                _wire.send(out, {"ok": True, "versions": _versions(keras)}, {})
            else:
                outputs = _run(keras, req, req)
                keras.backend.clear_session()  # drop the layer and the backend's caches: bounded memory
                _wire.send(out, {"ok": True}, {"outputs": outputs})
        except Exception as e:
            tb = traceback.format_exc(limit=-4)
            _wire.send(out, {"ok": False, "error": f"Keras ({keras.backend.backend()}) raised "
                                                   f"{type(e).__name__}: {str(e)[:800]}\n{tb}"}, {})


if __name__ == "__main__":
    main()
