"""The live oracle: a matrix case built and run in the installed Keras, recorded, and written to sets.

``KerasOracle(package)`` takes the Keras package to use: ``"keras"`` (Keras 3, on whichever backend
``KERAS_BACKEND`` names) or ``"tf_keras"`` (Keras 2). For each case it builds the Keras layer from
the case's spec, serializes it with ``keras.layers.serialize`` (the config every implementation
receives), draws the case's data (``conformance/data.py``) with the weight and state shapes Keras
reports, plays the case's calls and records the outputs: a ``RecordedCase``, in memory, or
``generate`` writes a fixture set of them. Nothing here imports the implementation under test.

Dropout with ``training=True``: Keras caches one mask per sequence on each cell
(``DropoutRNNCell.get_dropout_mask``); the oracle replaces those two methods on the Keras cell
instances so they return the case's masks (``pin_dropout_masks``).

channels_first ConvLSTM: TensorFlow's CPU convolutions reject it, so the oracle runs the same Keras
layer in channels_last, fed the case's inputs, states and dropout masks with the channel axis moved
last, its outputs moved back (``Layout``); the recorded config says channels_first.

``play_config`` (a config, weights and calls, no case) is what the Keras worker runs for the
Keras-on-JAX/torch adapters (``conformance/oracle/worker.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from conformance import configs, fixtures
from conformance.case import Case, check_unique_ids, instantiate
from conformance.cases import all_cases
from conformance.data import call_plan, make_data
from conformance.machine import cpu_device
from conformance.oracle import autodiff
from conformance.recorded import RecordedCase, cast, flatten, play

Array = np.ndarray
PACKAGES = {"keras": "keras", "tf_keras": "tf-keras"}  # import name -> distribution name


class NotSupported(Exception):
    """The oracle cannot express this case (recorded in a set manifest's not_generated)."""


class KerasOracle:
    """Keras as the oracle: ``package`` is "keras" (Keras 3) or "tf_keras" (Keras 2). Its items are
    the matrix's cases; ``recorded(case)`` runs one."""

    kind = "keras"
    set_option = None

    def __init__(self, package: str = "keras"):
        if package not in PACKAGES:
            raise ValueError(f"package={package!r}, expected one of {sorted(PACKAGES)}")
        self.package = package
        self._keras = None
        self._items: list[Case] | None = None

    @property
    def items(self) -> list[Case]:
        if self._items is None:
            self._items = all_cases()
        return self._items

    def recorded(self, case: Case) -> RecordedCase:
        return self.record(case)

    def describe(self) -> str:
        return "live " + ", ".join(f"{k} {v}" for k, v in self.versions().items())

    def __getstate__(self) -> dict[str, Any]:  # a module does not pickle; pool workers import Keras anew
        return {**self.__dict__, "_keras": None, "_items": None}

    # --- the installed Keras ----------------------------------------------------------------------
    @property
    def keras(self) -> Any:
        """The Keras module (imported on first use: ImportError when it is not installed)."""
        if self._keras is None:
            self._keras = import_keras(self.package)
        return self._keras

    @property
    def major(self) -> int:
        return 2 if self.package == "tf_keras" else 3

    def versions(self, *, devices: bool = False) -> dict[str, str]:
        """Keras's version, package and backend, the backend's version; with ``devices``, also
        what the backend computes on (the Keras-on-backend adapters report it)."""
        keras = self.keras
        backend = keras.backend.backend()
        versions = {"keras": keras.__version__, "package": PACKAGES[self.package], "backend": backend,
                    backend: importlib.import_module(backend).__version__}
        if devices and backend == "jax":
            import jax

            versions["devices"] = ", ".join(str(d) for d in jax.devices())
        elif devices and backend == "torch":
            import torch

            versions["devices"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
            versions["cudnn"] = str(torch.backends.cudnn.version()) if torch.cuda.is_available() else ""
        return versions

    @property
    def name(self) -> str:
        """The name deviations.json uses (``fixtures.oracle_name``): keras-tensorflow, tf-keras-tensorflow."""
        return fixtures.oracle_name({"oracle": self.versions()})

    # --- one case ---------------------------------------------------------------------------------
    def build(self, case: Case) -> Any:
        """The case's Keras layer, unbuilt, in the oracle's layout (channels_last)."""
        return instantiate(case, self.keras.layers, kwargs_of=_channels_last)

    def record(self, case: Case, *, gradients: bool = True) -> RecordedCase:
        """The case run through Keras, as a recorded case: what a fixture set holds for it. Inputs,
        states and weights in the case's dtype; a Keras exception is recorded as oracle-raised.
        With ``gradients``, also random cotangents for the outputs (drawn from their own seed:
        the case's data does not change) and Keras's gradients for them (``autodiff``); where
        Keras's backward pass raises but its forward pass runs, ``gradient_error`` says so."""
        layer, rec = self._prepare(case)
        layout, dtype = Layout(case), configs.numpy_dtype(rec.data_dtype)
        try:
            if not gradients:
                rec.outputs = self.play(layer, rec.calls, training=case.training, dropout_masks=rec.dropout_masks,
                                        dtype=dtype, layout=layout)
                return rec
            rng = np.random.default_rng(zlib.crc32(f"{case.id}/cotangents".encode()))
            self._pin(layer, rec.dropout_masks, dtype, layout)
            rec.outputs, rec.cotangents, rec.gradients = autodiff.gradients(
                self, layer, rec.calls, lambda k, o: rng.uniform(-1, 1, o.shape).astype(o.dtype),
                training=case.training, dtype=dtype, layout=layout)
        except Exception as e:
            if not gradients:  # Keras fails on a valid configuration
                rec.status, rec.error = "oracle-raised", f"{type(e).__name__}: {str(e)[:300]}"
                return rec
            rec = self.record(case, gradients=False)  # a fresh layer: the forward pass alone
            if rec.status == "ok":
                rec.gradient_error = f"{type(e).__name__}: {str(e)[:300]}"
        return rec

    def _prepare(self, case: Case) -> tuple[Any, RecordedCase]:
        """The case's Keras layer, built, its weights set; the recorded case without outputs."""
        layout = Layout(case)
        layer = self.build(case)
        layer.build(layout.to_oracle_shape(case.input_shape))
        config = self.keras.layers.serialize(layer)
        if layout.on:
            config = _as_channels_first(config)
        states = [layout.state_shape(s) for s in _state_shapes(self, layer, case)]
        data = make_data(case, [w.shape for w in layer.get_weights()], _nest_states(layer, states),
                         _dropout_layout(case, layer, states) if case.training else [])
        data_dtype = configs.variable_dtype(case.dtype)  # a policy keeps its variables (and takes inputs) in it
        weights = cast(data.weights, data_dtype)
        layer.set_weights(weights)
        masks = None if not data.dropout_masks else cast([list(pair) for pair in data.dropout_masks], data_dtype)
        return layer, RecordedCase(case.id, case.family, case.dtype, config, cast(call_plan(case, data), data_dtype),
                                   weights, case.training, masks, [], "ok")

    def _pin(self, layer: Any, dropout_masks: Any, dtype: str, layout: Layout) -> None:
        if dropout_masks:
            for cell, (dp, rec) in zip(cells_of(layer), dropout_masks):
                pin_dropout_masks(cell, layout.mask_to_oracle(dp), layout.mask_to_oracle(rec), dtype, self.tensor)

    def play(self, layer: Any, calls: list, *, training: bool, dropout_masks: Any, dtype: np.dtype,
             layout: Layout | None = None) -> list[Array]:
        """The calls on a built Keras layer with its weights set; every output, as NumPy arrays."""
        layout = layout or Layout(None)
        self._pin(layer, dropout_masks, dtype, layout)

        def call(x: Array, mask: Array | None, initial_state: Any) -> list[Array]:
            kwargs: dict[str, Any] = {"training": training}
            if mask is not None:
                kwargs["mask"] = self.tensor(mask)
            if initial_state is not None:
                kwargs["initial_state"] = _map(lambda s: self.tensor(s.astype(dtype)),
                                               layout.state_to_oracle(initial_state))
            out = layer(self.tensor(layout.to_oracle(x, 2).astype(dtype)), **kwargs)
            return [layout.from_oracle(o) for o in flatten(out, self.to_numpy)]

        reset = layer.reset_state if hasattr(layer, "reset_state") else layer.reset_states  # Keras 3 / 2
        return play(calls, call, reset)

    def play_config(self, config: dict, weights: list, calls: list, *, training: bool,
                    dropout_masks: Any, cotangents: list | None = None) -> Any:
        """A recorded case's calls on a layer deserialized from ``config`` (the adapters' contract):
        the outputs, or with ``cotangents`` (one per output) the gradients (``autodiff.Gradients``)."""
        layer = self.keras.layers.deserialize(config)
        first = next(c for c in calls if isinstance(c, dict))
        layer.build(tuple(first["inputs"].shape))
        layer.set_weights(weights)
        dtype = first["inputs"].dtype
        if cotangents is None:
            return self.play(layer, calls, training=training, dropout_masks=dropout_masks, dtype=dtype)
        self._pin(layer, dropout_masks, dtype, Layout(None))
        return autodiff.gradients(self, layer, calls, lambda k, o: cotangents[k], training=training, dtype=dtype,
                                  layout=Layout(None))[2]

    # --- tensors ----------------------------------------------------------------------------------
    def tensor(self, x: Any) -> Any:
        if hasattr(self.keras, "ops"):
            return self.keras.ops.convert_to_tensor(x)
        import tensorflow as tf  # Keras 2 runs on TensorFlow only

        return tf.convert_to_tensor(x)

    def to_numpy(self, x: Any) -> Array:
        if hasattr(self.keras, "ops"):
            return np.asarray(self.keras.ops.convert_to_numpy(x))
        return np.asarray(x)

    # --- fixture sets -----------------------------------------------------------------------------
    def generate(self, out_dir: Path, cases: list[Case],
                 progress: Callable[[int, int], None] | None = None) -> Path:
        """Run every case through this Keras and write a fixture set to ``out_dir``."""
        check_unique_ids(c.id for c in cases)
        self.keras.backend.clear_session()  # restart layer-name counters: same names, same bytes
        arrays: dict[str, dict[str, Array]] = {}
        entries, skipped = [], {}
        for n, case in enumerate(cases):
            try:
                entries.append(fixtures.entry(self._record_for_set(case), f"c{n:04d}", arrays))
            except NotSupported as e:  # the oracle has no such configuration (e.g. Keras 2)
                skipped[case.id] = str(e)
            if progress:
                progress(n + 1, len(cases))
        return fixtures.write(out_dir, arrays, entries, {
            "generator": "rnn-conformance generate", "oracle": self.versions(), "device": cpu_device(),
            "not_generated": dict(sorted(skipped.items())),
            "seed": "numpy.random.default_rng(zlib.crc32(case id)) per case (conformance/data.py)"})

    def _record_for_set(self, case: Case) -> RecordedCase:
        if self.package == "tf_keras" and case.training:
            raise NotSupported("tf-keras draws dropout masks inside its fused layer paths; they cannot be supplied")
        try:
            return self.record(case)
        except (TypeError, ValueError) as e:  # raised building the layer: Keras 2 lacks the option
            if self.package == "keras":
                raise
            raise NotSupported(f"{type(e).__name__}: {str(e)[:200]}") from None


def import_keras(package: str = "keras") -> Any:
    """Import a Keras package quietly (TensorFlow backend by default). TensorFlow's C++ libraries
    print INFO lines to stderr as they load, before TF_CPP_MIN_LOG_LEVEL takes effect ("oneDNN
    custom operations are on", "Could not find cuda drivers"); the import runs with file
    descriptor 2 pointed at /dev/null. Python exceptions are unaffected."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _native_stderr_silenced():
        keras = importlib.import_module(package)
    if package == "tf_keras" or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # When Keras raises inside its loop, TensorFlow logs "Object was never used (TensorArray)"
        # at ERROR level as the graph is collected; the harness reports the exception itself.
        tf.get_logger().setLevel("CRITICAL")
    return keras


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no file descriptors to redirect (an unusual embedding): import as it is
        yield
        return
    sys.stderr.flush()
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


# --- the Keras layer's parts ------------------------------------------------------------------------
def rnn_layers(layer: Any) -> list:
    """The recurrent layers a layer runs: a Bidirectional's two directions, or the layer itself."""
    return [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]


def cells_of(layer: Any) -> list:
    """Every cell, in weight order: per direction, a stack's cells or the one cell."""
    cells = [sub.cell for sub in rnn_layers(layer)]
    return [c for cell in cells for c in (cell.cells if hasattr(cell, "cells") else [cell])]


def pin_dropout_masks(cell: Any, dp: Array | None, rec: Array | None, dtype: str,
                      tensor: Callable[[Any], Any]) -> None:
    """Make a Keras cell use these dropout masks (instead of drawing its own) for every step."""
    if not hasattr(cell, "get_dropout_mask"):
        # tf-keras draws masks in get_dropout_mask_for_cell, also from its fused LSTM/GRU layer
        # paths; they cannot be pinned from outside, so training cases have no Keras 2 fixtures.
        raise NotImplementedError("dropout masks cannot be supplied to tf-keras layers")
    per_gate = getattr(cell, "dropout_mask_count", None) is not None

    def as_tensor(m: Array | None) -> Any:
        if m is None:
            return None
        if per_gate:  # Keras indexes dp_mask[g]
            return [tensor(g.astype(dtype)) for g in m]
        return tensor(m.astype(dtype))

    dp_t, rec_t = as_tensor(dp), as_tensor(rec)
    cell.get_dropout_mask = lambda step_input: dp_t
    cell.get_recurrent_dropout_mask = lambda step_input: rec_t


def _state_shapes(oracle: KerasOracle, layer: Any, case: Case) -> list:
    """Per direction, the zero states Keras starts from, as nested shape lists (oracle layout)."""
    batch, out = case.batch, []
    shape = Layout(case).to_oracle_shape(case.input_shape)
    for sub in rnn_layers(layer):
        if oracle.major == 3:
            states = sub.get_initial_state(batch)
        else:  # tf-keras takes the inputs
            states = sub.get_initial_state(oracle.tensor(np.zeros(shape, configs.variable_dtype(case.dtype))))
        out.append(_map(lambda s: tuple(np.shape(s)), list(states)))  # tuples are the leaves from here
    return out


def _nest_states(layer: Any, per_direction: list) -> list:
    """The initial-state structure a call takes: one list per direction flattened into one list
    (Bidirectional: forward's states, then backward's); stacked cells keep a list per cell."""
    out = []
    for sub, states in zip(rnn_layers(layer), per_direction):
        stacked = hasattr(sub.cell, "cells")
        out += [s if isinstance(s, list) else [s] for s in states] if stacked else states
    return out


def _dropout_layout(case: Case, layer: Any, per_direction: list) -> list[tuple]:
    """Per cell: (step input shape, state shape, masks per gate or None, dropout,
    recurrent_dropout), shapes in the case's layout."""
    out = []
    for sub, states in zip(rnn_layers(layer), per_direction):
        step = (case.batch, *case.input_shape[2:])
        stacked = hasattr(sub.cell, "cells")
        for k, cell in enumerate(sub.cell.cells if stacked else [sub.cell]):
            state = _first_shape(states[k]) if stacked else _first_shape(states)
            out.append((step, state, getattr(cell, "dropout_mask_count", None), cell.dropout,
                        cell.recurrent_dropout))
            step = state
    return out


def _first_shape(tree: Any) -> tuple:
    return tree if isinstance(tree, tuple) else _first_shape(tree[0])


class Layout:
    """Moves channel axes between the case's layout and the oracle's (channels_last)."""

    def __init__(self, case: Case | None):
        self.on = case is not None and case.channels_first
        self.step_rank = len(case.spatial) + 2 if case is not None else 0  # (B, *spatial, C)

    def to_oracle(self, a: Array, channel_axis: int = 1) -> Array:
        return np.moveaxis(a, channel_axis, -1) if self.on else a

    def to_oracle_shape(self, shape: tuple) -> tuple:
        """An input shape (B, T, C, *S) -> (B, T, *S, C) when channels move."""
        return tuple(self.to_oracle(np.empty(shape, np.bool_), 2).shape)

    def state_shape(self, tree: Any) -> Any:
        """Oracle-layout state shapes (B, *S, F) -> the case's (B, F, *S)."""
        if not self.on:
            return tree
        if isinstance(tree, tuple):
            return (tree[0], tree[-1], *tree[1:-1])
        return [self.state_shape(t) for t in tree]

    def from_oracle(self, a: Array) -> Array:
        """Outputs and states back: sequences (B, T, *S, C) and steps (B, *S, C)."""
        if not self.on:
            return a
        return np.moveaxis(a, -1, 2 if a.ndim == self.step_rank + 1 else 1)

    def state_to_oracle(self, tree: Any) -> Any:
        return _map(self.to_oracle, tree)

    def output_to_oracle(self, a: Array) -> Array:
        """``from_oracle``'s inverse: a sequence (B, T, C, *S) or a step (B, C, *S) -> channels last."""
        if not self.on:
            return a
        return np.moveaxis(a, 2 if a.ndim == self.step_rank + 1 else 1, -1)

    def mask_to_oracle(self, m: Array | None) -> Array | None:
        """Per-gate dropout masks (G, B, C, *S) -> (G, B, *S, C); dense (G, B, units) pass as they are."""
        return m if m is None or not self.on or m.ndim <= 3 else np.moveaxis(m, 2, -1)


def _channels_last(spec_kwargs: Any) -> dict:
    """A layer spec's kwargs as the oracle builds it: channels_first runs as channels_last."""
    kwargs = dict(spec_kwargs)
    if kwargs.get("data_format") == "channels_first":
        kwargs["data_format"] = "channels_last"
    return kwargs


def _as_channels_first(config: dict) -> dict:
    """The oracle's channels_last config as the case's channels_first one, nested layers included."""
    def change(serialized: dict) -> dict:
        inner = serialized["config"]
        if inner.get("data_format") == "channels_last":
            serialized = {**serialized, "config": {**inner, "data_format": "channels_first"}}
        shape = (serialized.get("build_config") or {}).get("input_shape")
        if shape is not None and len(shape) >= 4:  # (B, T, *S, C) -> (B, T, C, *S)
            serialized = {**serialized, "build_config": {"input_shape": [*shape[:2], shape[-1], *shape[2:-1]]}}
        return serialized

    return configs.rewrite(config, change)


def _map(fn: Callable, tree: Any) -> Any:
    return [_map(fn, t) for t in tree] if isinstance(tree, (list, tuple)) else fn(tree)
