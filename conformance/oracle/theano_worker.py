"""The historical Keras worker: Keras 0.2.0 or 1.2.2 on Theano 1.0.5, float64, in its own venv.

Run as a script by ``conformance.oracle.historical`` (``python theano_worker.py``) under that
venv's Python, which has Theano, the old Keras and NumPy < 1.24 but not this package: it imports
nothing of it but ``wire.py``, loaded from beside this file. Requests and replies as in worker.py:

    {"op": "versions"}                                   -> {"versions": {...}}
    {"op": "describe", "class_name", "kwargs", "shape"}  -> {"config", "weight_shapes"}
    {"op": "run", ... and "weights", "calls"}           -> {"outputs": [...]}

``shape`` is (batch, timesteps, input_dim). A call's mask reaches the layer as that version's
users gave it: through a ``Masking(mask_value=0.)`` layer in front, so the caller zeroes the masked
steps' inputs (checked here: the mask Masking derives must be the call's). Environment (set by
the parent): THEANO_FLAGS="cxx=,blas.ldflags=,floatX=float64" (Theano's Python implementations,
no compiler, no BLAS probe) and, for Keras 1, HOME holding .keras/keras.json with floatx float64
and the Theano backend (``K.set_floatx`` after import leaves scans mixing float32 and float64).
"""

import collections
import collections.abc
import importlib.util
import os
import sys
import traceback

import numpy as np

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):  # Keras 1 on Python 3.10+
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

_spec = importlib.util.spec_from_file_location("wire", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                     "wire.py"))
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)


def _masks_match(x, mask):
    """The mask Keras's Masking(0.) derives from x: a step is valid unless all its features are 0."""
    derived = np.any(x != 0.0, axis=-1)
    if not np.array_equal(derived, np.asarray(mask, bool)):
        raise ValueError("a call's masked steps must have all-zero inputs (and no valid step may): "
                         "Masking(mask_value=0.) derives the mask from them")


class Keras0:
    """Keras 0.2.0: a layer standalone, its output compiled by theano.function."""

    def __init__(self):
        import keras
        import theano
        import theano.tensor
        from keras.layers import core, recurrent

        self.keras, self.theano, self.core, self.recurrent = keras, theano, core, recurrent

    def versions(self):
        return {"package": "keras", "keras": "0.2.0", "backend": "theano", "theano": self.theano.__version__}

    def build(self, class_name, kwargs, shape, masked):
        layer = getattr(self.recurrent, class_name)(input_dim=shape[2], **kwargs)
        if masked:
            masking = self.core.Masking(mask_value=0.0, input_shape=(None, shape[2]))
            layer.set_previous(masking)
            source = masking.get_input(train=False)
        else:
            source = layer.input
        fn = self.theano.function([source], layer.get_output(train=False))
        return layer, fn

    def describe(self, class_name, kwargs, shape):
        layer, _ = self.build(class_name, kwargs, shape, masked=False)
        return layer.get_config(), [list(w.shape) for w in layer.get_weights()]

    def run(self, class_name, kwargs, shape, weights, calls):
        outputs = []
        for call in calls:
            if call == "reset_state":
                raise ValueError("Keras 0.2 layers are not stateful")
            masked = call.get("mask") is not None
            layer, fn = self.build(class_name, kwargs, shape, masked)
            layer.set_weights(weights)
            if masked:
                _masks_match(call["inputs"], call["mask"])
            outputs.append(np.asarray(fn(call["inputs"])))
        return outputs


class Keras1:
    """Keras 1.2.2 on Theano: Input -> [Masking] -> layer as a functional Model, run by predict."""

    def __init__(self):
        import keras
        import theano
        from keras import backend
        from keras.backend import common

        if backend.backend() != "theano" or backend.floatx() != "float64":
            raise RuntimeError(f"Keras 1 runs on {backend.backend()} with floatx {backend.floatx()}; "
                               "expected theano and float64 (HOME/.keras/keras.json)")
        self.keras, self.theano, self.common = keras, theano, common

    def versions(self):
        return {"package": "keras", "keras": self.keras.__version__, "backend": "theano",
                "theano": self.theano.__version__}

    def build(self, class_name, kwargs, shape, masked):
        from keras.layers import Input, Masking, recurrent
        from keras.models import Model

        self.common.reset_uids()  # layer names from _1 in every case: the same config in any order
        batch, steps, features = shape
        # A stateful layer needs its batch size; unroll needs the number of steps.
        inp = Input(batch_shape=(batch, steps if kwargs.get("unroll") else None, features))
        layer = getattr(recurrent, class_name)(**kwargs)
        model = Model(input=inp, output=layer(Masking(mask_value=0.0)(inp) if masked else inp))
        return layer, model

    def describe(self, class_name, kwargs, shape):
        layer, _ = self.build(class_name, kwargs, shape, masked=False)
        return ({"class_name": type(layer).__name__, "config": layer.get_config()},
                [list(w.shape) for w in layer.get_weights()])

    def run(self, class_name, kwargs, shape, weights, calls):
        masked = any(c != "reset_state" and c.get("mask") is not None for c in calls)
        layer, model = self.build(class_name, kwargs, shape, masked)
        layer.set_weights(weights)
        outputs = []
        for call in calls:
            if call == "reset_state":
                layer.reset_states()
                continue
            if masked:
                _masks_match(call["inputs"], call["mask"])
            outputs.append(np.asarray(model.predict(call["inputs"], batch_size=shape[0])))
        return outputs


def main():
    out = os.fdopen(os.dup(1), "wb")  # the protocol's channel; anything printed goes to stderr
    os.dup2(2, 1)
    keras = Keras0() if os.environ.get("RNN_CONFORMANCE_HISTORICAL") == "0" else Keras1()
    stdin = sys.stdin.buffer
    while True:
        req = wire.receive(stdin)
        if req is None:
            return
        try:
            if req["op"] == "versions":
                versions = {**keras.versions(), "numpy": np.__version__, "python": sys.version.split()[0]}
                wire.send(out, {"ok": True, "versions": versions}, {})
            elif req["op"] == "describe":
                config, shapes = keras.describe(req["class_name"], req["kwargs"], req["shape"])
                wire.send(out, {"ok": True, "config": config, "weight_shapes": shapes}, {})
            else:
                result = keras.run(req["class_name"], req["kwargs"], req["shape"], req["weights"], req["calls"])
                wire.send(out, {"ok": True}, {"outputs": result})
        except Exception as e:
            tb = traceback.format_exc(limit=-4)
            wire.send(out, {"ok": False, "error": f"Keras raised {type(e).__name__}: {str(e)[:800]}\n{tb}"}, {})


if __name__ == "__main__":
    main()
