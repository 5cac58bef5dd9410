"""A Keras worker process: reads requests on stdin, runs Keras, replies on stdout (``wire.py``).

Started by ``remote.Worker`` with ``KERAS_BACKEND`` set (``python -m conformance.oracle.worker``).
Each "run" request is played by the live oracle's ``KerasOracle.play_config``: the layer built from
its config, the weights set, the dropout masks pinned, the calls made; a Keras exception is replied
as text, and the worker goes on.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback


from conformance.oracle import wire
from conformance.oracle.live import KerasOracle


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything printed goes to stderr
    os.dup2(2, 1)
    oracle = KerasOracle("keras")
    keras = oracle.keras

    hook = os.environ.get("RNN_CONFORMANCE_WORKER_HOOK")  # e.g. conformance.gpu.dispatch (docs/gpu.md)
    if hook:
        importlib.import_module(hook).install()
    stdin = sys.stdin.buffer
    while True:
        req = wire.receive(stdin)
        if req is None:
            return
        try:
            if req["op"] == "versions":
                wire.send(out, {"ok": True, "versions": oracle.versions(devices=True)}, {})
            else:  # "run", or "vjp" with the cotangents
                result = oracle.play_config(req["config"], req["weights"], req["calls"], training=req["training"],
                                            dropout_masks=req["dropout_masks"], cotangents=req.get("cotangents"))
                keras.backend.clear_session()  # drop the layer and the backend's caches: bounded memory
                wire.send(out, {"ok": True}, {"outputs": result} if req["op"] == "run" else {"gradients": dict(result)})
        except Exception as e:
            tb = traceback.format_exc(limit=-4)
            wire.send(out, {"ok": False, "error": f"Keras ({keras.backend.backend()}) raised "
                                                   f"{type(e).__name__}: {str(e)[:800]}\n{tb}"}, {})


if __name__ == "__main__":
    main()
