"""What the runtime adapters share: a case as the Keras model a user would export, run by a runtime.

``--impl onnxruntime``, ``litert`` and ``openvino`` do what a user deploying a Keras RNN does:
build a Keras 3 model around the layer (TensorFlow backend), ``model.export(path, format=...)``,
load the artifact into the runtime and feed it NumPy arrays. Keras only builds and exports the
graph: it is traced on zeros of the case's shapes (``export`` needs a model that has been called),
never on the case's data, and every number returned comes from the runtime.

The model, per case (``keras_model``)::

    x                  Input(shape=(None, *features), dtype)      batch and time dynamic (time
                                                                   fixed where unroll=True)
    mask               masks="masking": Masking(mask_value=0.0)(x), the steps a user pads with
                       zeros (the case's masked steps are fed as zeros; a valid step that is all
                       zeros is declined);  masks="input": a bool Input(shape=(time,)) passed
                       as layer(x, mask=mask), for models that carry their own mask
    initial_state      one Input per state (nested per cell for stacked cells), layer(x, initial_state=...)
    outputs            the layer's outputs, flattened, in Keras's order

Stateful streaming (call, call, reset_state, call on one stateful layer) is what a deployed model
does with explicit state: the layer is exported with ``stateful=False`` and ``return_state=True``,
the states go in as inputs and come out as outputs, and the adapter carries them from call to call
(zeros at the start and after a reset; a call's own initial_state replaces them). The extra state
outputs are dropped where the case's config did not ask for them.

Declined (skipped with the reason, never passed): training-mode dropout (an exported graph is the
inference graph), channels_first convolutions (TensorFlow's CPU kernels cannot trace them), cases
recorded from another Keras than 3, and whatever the runtime raises while loading or running
(``Decline`` with its message: a missing kernel for a dtype, an unsupported op).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import warnings
from typing import Any

import numpy as np

from conformance import configs
from conformance.adapters import Decline
from conformance.oracle.live import _native_stderr_silenced, import_keras
from conformance.recorded import RESET, flatten, pack

MASKS = ("masking", "input")


class ExportedModel:
    """Base of the runtime adapters: subclasses say how to export, load and run (``export``,
    ``load``, ``invoke``) and what to record about the artifact (``describe``)."""

    name = "exported"
    format = ""  # model.export(format=...)
    suffix = ""  # the artifact's file name ending
    fixed_shapes = False  # True: export for the case's batch size and length (dynamic otherwise)

    def __init__(self, *, masks: str = "masking"):
        if masks not in MASKS:
            raise ValueError(f"masks={masks!r}, expected one of {MASKS}")
        self.masks = masks
        if masks != "masking":
            self.name = f"{self.name}-mask-{masks}"
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        self.keras = import_keras("keras")  # quietly: TensorFlow's C++ start-up lines go to /dev/null
        if self.keras.backend.backend() != "tensorflow":
            raise ImportError(f"{self.name} exports from Keras on TensorFlow; Keras was imported with the "
                              f"{self.keras.backend.backend()} backend (KERAS_BACKEND)")
        self.run_info: dict | None = None  # what the last case's artifact was: read by the harness

    # --- what subclasses provide ----------------------------------------------------------------
    def export(self, model: Any, path: str, **kwargs: Any) -> None:
        model.export(path, format=self.format, verbose=False, input_signature=self.signature(model), **kwargs)

    def export_onnx(self, model: Any, path: str) -> None:
        """Keras's ONNX export; tf2onnx logs the TensorFlow ops it cannot convert and still writes a
        graph (an invalid one): those ops become the reason the case is declined."""
        unsupported: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                found = re.search(r"Unsupported ops: Counter\(\{(.*)\}\)", record.getMessage())
                if found:
                    unsupported.extend(re.findall(r"'(\w+)'", found.group(1)))

        logging.getLogger().setLevel(logging.ERROR)  # tf2onnx warns on the root logger for every graph
        log = logging.getLogger("tf2onnx")
        handler, level, propagate = Collect(), log.level, log.propagate
        log.addHandler(handler)
        log.propagate = False  # tf2onnx's own lines would interleave with the progress lines
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.export(path, format="onnx", verbose=False, input_signature=self.signature(model))
        finally:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate
        if unsupported:
            raise Decline(f"tf2onnx {self.tf2onnx_version()} cannot convert the TensorFlow op(s) "
                          f"{', '.join(sorted(set(unsupported)))}")

    @staticmethod
    def tf2onnx_version() -> str:
        import tf2onnx

        return tf2onnx.__version__

    def signature(self, model: Any) -> Any:
        """None (Keras's own: every input's batch dynamic), or with ``fixed_shapes`` the inputs'
        exact shapes, batch included (Keras would make the batch dynamic)."""
        if not self.fixed_shapes:
            return None
        spec = lambda t: self.keras.InputSpec(shape=tuple(t.shape), dtype=t.dtype, name=t.name)
        return [self.keras.tree.map_structure(spec, model._inputs_struct)]  # the structure export() itself uses

    def load(self, path: str) -> Any:
        raise NotImplementedError

    def invoke(self, artifact: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The runtime's outputs, in the model's order, for its inputs by name ("x", "mask",
        "state_0", ...)."""
        raise NotImplementedError

    def describe(self, artifact: Any, path: str) -> dict:
        """Short facts about the artifact for the reports (which ops the graph used)."""
        return {}

    # --- the contract ---------------------------------------------------------------------------
    def supports(self, config: dict) -> bool | str:
        if configs.channels_first(config):
            return "data_format='channels_first': TensorFlow's CPU convolutions cannot trace the model to export it"
        return True

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask: Any = None,
            initial_state: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls, keras_version=keras_version)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        if keras_version != 3:
            raise Decline(f"the artifact is exported by Keras 3; this case was recorded from Keras {keras_version}")
        if training:
            raise Decline("training-mode dropout: an exported model is the inference graph, without dropout")
        played = [c for c in calls if c != RESET]
        streaming = len(calls) > 1
        masked = any(c["mask"] is not None for c in played)
        given = [c["initial_state"] for c in played if c["initial_state"] is not None]
        # Every call of a stream feeds states: shaped like a given initial_state, or like the
        # states the layer returns.
        layer_config = _streaming(config) if streaming else config
        dir_ = tempfile.mkdtemp(prefix="rnn-conformance-")
        artifacts: dict = {}  # one per input shape where the export fixes shapes, else one

        def artifact_for(inputs: np.ndarray) -> tuple[Any, list]:
            key = inputs.shape if self.fixed_shapes else None
            if key not in artifacts:
                artifacts[key] = self._artifact(layer_config, weights, inputs, os.path.join(dir_, str(len(artifacts))),
                                                masked=masked, states=streaming or bool(given),
                                                state_template=given[0] if given else None)
            return artifacts[key]

        try:
            return self._play(artifact_for, config, calls, streaming)
        finally:
            shutil.rmtree(dir_, ignore_errors=True)

    def _artifact(self, config: dict, weights: list, inputs: np.ndarray, stem: str, **kwargs: Any) -> tuple[Any, list]:
        """(the loaded artifact of the case's model, the flat state shapes it takes)."""
        model, state_shapes = self.keras_model(config, weights, inputs, **kwargs)
        path = stem + self.suffix
        try:
            with _native_stderr_silenced():  # converters print their C++ diagnostics there
                self.export(model, path)
        except Decline:
            raise
        except Exception as e:
            raise Decline(f"model.export(format={self.format!r}) raised {type(e).__name__}: {_line(e)}") from None
        finally:
            self.keras.backend.clear_session()
        try:
            artifact = self.load(path)
        except Decline:
            raise
        except Exception as e:
            raise Decline(f"{self.name} cannot load the exported model: {type(e).__name__}: {_line(e)}") from None
        self.run_info = self.describe(artifact, path)
        return artifact, state_shapes

    # --- the model ------------------------------------------------------------------------------
    def keras_model(self, config: dict, weights: list, inputs: np.ndarray, *, masked: bool, states: bool,
                    state_template: Any = None) -> tuple[Any, list]:
        """(the Keras model around the layer with the case's weights, the flat state shapes it takes)."""
        keras = self.keras
        dtype = inputs.dtype
        layer = keras.layers.deserialize(config)
        # Batch and time dynamic, as a model is exported for sequences of any length; an unrolled
        # loop needs its length fixed.
        fixed = self.fixed_shapes or any(c.get("unroll") for _, c in configs.walk(config))
        steps, batch = (inputs.shape[1], inputs.shape[0] if self.fixed_shapes else None) if fixed else (None, None)
        x = keras.Input(shape=(steps, *inputs.shape[2:]), batch_size=batch, dtype=str(dtype), name="x")
        model_inputs, kwargs, body = [x], {}, x
        if masked and self.masks == "masking":
            if inputs.ndim != 3:
                raise Decline("masks='masking': a Masking layer masks each (step, position) of a "
                              f"{inputs.ndim}-D input; this layer needs one mask entry per step")
            # In the input's dtype: Masking's default policy (float32) would round float64 inputs.
            body = keras.layers.Masking(mask_value=0.0, dtype=str(dtype), name="masking")(x)
        elif masked:
            mask_in = keras.Input(shape=(steps,), batch_size=batch, dtype="bool", name="mask")
            model_inputs.append(mask_in)
            kwargs["mask"] = mask_in
        state_shapes: list = []
        if states:
            template = state_template if state_template is not None else self._state_template(config, inputs)
            leaves = flatten(template)
            state_inputs = [keras.Input(shape=s.shape[1:], batch_size=batch, dtype=str(s.dtype), name=f"state_{k}")
                            for k, s in enumerate(leaves)]
            model_inputs += state_inputs
            kwargs["initial_state"] = pack(template, state_inputs)
            state_shapes = [(s.shape[1:], s.dtype) for s in leaves]
        outputs = layer(body, **kwargs)
        model = keras.Model(model_inputs, flatten(outputs, lambda t: t))
        layer.set_weights(weights)
        # export() needs a model that has run once: on zeros, so no Keras number of this case exists.
        zeros = [np.zeros((inputs.shape[0], *inputs.shape[1:len(i.shape)]) if i in (x, kwargs.get("mask")) else
                          (inputs.shape[0], *i.shape[1:]), i.dtype) for i in model_inputs]
        model(zeros)
        return model, state_shapes

    def _state_template(self, config: dict, inputs: np.ndarray) -> list:
        """Zero states shaped as the layer returns them (for a stream with no given initial_state)."""
        keras = self.keras
        probe = keras.layers.deserialize(_streaming(config))
        out = flatten(probe(np.zeros(inputs.shape, inputs.dtype)), lambda t: np.asarray(keras.ops.convert_to_numpy(t)))
        keras.backend.clear_session()
        flat = [np.zeros_like(s) for s in out[len(out) - _state_count(config):]]
        cells = _cells(config)
        if config["class_name"] == "RNN" and config["config"]["cell"]["class_name"] == "StackedRNNCells":
            leaves = iter(flat)  # stacked cells take their initial states nested per cell
            return [[next(leaves) for _ in range(_cell_states(c))] for c in cells]
        return flat

    # --- the calls ------------------------------------------------------------------------------
    def _play(self, artifact_for: Any, config: dict, calls: list, streaming: bool) -> list:
        keep_states = _returns_state(config)
        carried: list | None = None
        outputs: list[np.ndarray] = []
        for call in calls:
            if call == RESET:
                carried = None
                continue
            x, mask = call["inputs"], call["mask"]
            artifact, state_shapes = artifact_for(x)
            n_states = len(state_shapes)
            feeds = {"x": self._masked_inputs(x, mask) if mask is not None and self.masks == "masking" else x}
            if mask is not None and self.masks == "input":
                feeds["mask"] = np.asarray(mask, bool)
            if n_states:
                if call["initial_state"] is not None:
                    states = flatten(call["initial_state"])
                elif carried is not None:
                    states = carried
                else:
                    states = [np.zeros((x.shape[0], *shape), dtype) for shape, dtype in state_shapes]
                feeds.update({f"state_{k}": np.ascontiguousarray(s) for k, s in enumerate(states)})
            try:
                out = [np.asarray(o) for o in self.invoke(artifact, feeds)]
            except Decline:
                raise
            except Exception as e:
                raise Decline(f"{self.name} raised running the model: {type(e).__name__}: {_line(e)}") from None
            if streaming:
                carried = out[len(out) - n_states:]
                if not keep_states:
                    out = out[:len(out) - n_states]
            outputs += out
        return outputs

    @staticmethod
    def _masked_inputs(x: np.ndarray, mask: Any) -> np.ndarray:
        """The inputs as a user pads them for a Masking layer: zeros at the masked steps."""
        mask = np.asarray(mask, bool)  # (batch, time)
        if not np.any(x[mask].reshape(int(mask.sum()), -1), axis=-1).all():
            raise Decline("masks='masking': a valid step whose features are all 0.0 would be masked too")
        return np.where(mask.reshape(*mask.shape, *[1] * (x.ndim - 2)), x, np.zeros((), x.dtype))


def _streaming(config: dict) -> dict:
    """The config of a stateful layer as it is exported for streaming: stateful=False, return_state=True."""
    config = {**config, "config": dict(config["config"])}
    c = config["config"]
    if config["class_name"] == "Bidirectional":
        for key in ("layer", "backward_layer"):
            if isinstance(c.get(key), dict):
                c[key] = _streaming(c[key])
        return config
    c["stateful"], c["return_state"] = False, True
    return config


def _returns_state(config: dict) -> bool:
    c = config["config"]
    if config["class_name"] == "Bidirectional":
        return bool(c["layer"]["config"].get("return_state", False))
    return bool(c.get("return_state", False))


def _state_count(config: dict) -> int:
    """How many (flat) states the layer returns: per cell, h (and c for LSTM-like cells)."""
    if config["class_name"] == "Bidirectional":
        return 2 * _state_count(config["config"]["layer"])
    return sum(_cell_states(c) for c in _cells(config))


def _cell_states(cell: dict) -> int:
    return 2 if "LSTM" in cell["class_name"] else 1


def _cells(config: dict) -> list[dict]:
    name, c = config["class_name"], config["config"]
    if name == "RNN":
        cell = c["cell"]
        if cell["class_name"] == "StackedRNNCells":
            return list(cell["config"]["cells"])
        return [cell]
    return [config]


def _line(e: BaseException) -> str:
    """A runtime's message as one line without what differs from case to case (temporary paths,
    node and layer names), so that the reports group the cases it declines by cause."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return clean(lines[0] if lines else type(e).__name__)


def clean(text: str) -> str:
    text = re.sub(r"\S*rnn-conformance-[^/\s]+/\S*", "<model>", text)  # the artifact's temporary path
    text = re.sub(r"Name:\s*'[^']*'", "Name:'…'", text)  # a node's name
    text = re.sub(r"\b(functional|sequential|model)_?\d*/\S*", "<node>", text)  # TF op paths
    text = re.sub(r"_\d+\b", "", text)  # numbered names (lstm_26, LSTM__33)
    return text if len(text) <= 300 else text[:297] + "..."
