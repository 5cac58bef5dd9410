"""Hypothesis strategies for Keras recurrent layers: configs, shapes, data, masks, states, weights.

Public and documented, for this project's property tests and for adopters' own:

    from hypothesis import given
    from conformance import strategies as rs

    @given(rs.layers_and_data())
    def test_my_lstm(drawn):
        config, x, mask, weights = drawn.config, drawn.inputs, drawn.mask, drawn.weights
        ...  # config is keras.layers.serialize()-shaped: feed it to your implementation

Every keyword argument is either drawn or left out (so Keras's defaults get exercised too). Values
are bounded so that tanh and sigmoid are not all saturated: inputs in [-1, 1], weights in
[-0.6, 0.6], different for every gate, biases never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from hypothesis import strategies as st

import refimpl
from conformance.case import MASKS, MERGE_MODES, Case, spec
from conformance.data import mask_pattern

DENSE = ("SimpleRNN", "LSTM", "GRU")
CONV = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
LAYERS = DENSE + CONV + ("Bidirectional",)
ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "linear", "relu", "relu6", "elu", "selu", "softsign",
               "softplus", "silu", "hard_silu", "mish", "tanh_shrink", "hard_tanh", "sparse_plus",
               "squareplus", "log_sigmoid", "softmax", None)
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh", "linear", "softsign", "sparse_sigmoid")
_OMIT = object()


def _maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Draw a value, or leave the argument out so the layer's default is used."""
    return st.one_of(st.just(_OMIT), strategy)


@st.composite
def layer_kwargs(draw, name: str, *, training: bool = False, wrapped: bool = False,
                 data_formats: Sequence[str] = ("channels_last", "channels_first"),
                 activations: Sequence[str | None] = ACTIVATIONS,
                 recurrent_activations: Sequence[str] = RECURRENT_ACTIVATIONS) -> dict:
    """Keyword arguments for one Keras layer class (SimpleRNN, LSTM, GRU, ConvLSTM1D/2D/3D).

    ``wrapped``: for Bidirectional's inner layer (no go_backwards, no zero_output_for_mask).
    ``training``: dropout rates are drawn only when the caller will supply dropout masks.
    ``activations``, ``recurrent_activations``: the names to draw from (e.g. smooth ones only)."""
    options: dict[str, st.SearchStrategy] = {
        "activation": st.sampled_from(activations), "use_bias": st.booleans(),
        "return_sequences": st.booleans(), "return_state": st.booleans(), "unroll": st.booleans(),
    }
    if not wrapped:
        options.update(go_backwards=st.booleans(), zero_output_for_mask=st.booleans())
    if name != "SimpleRNN":
        options["recurrent_activation"] = st.sampled_from(recurrent_activations)
    if name in ("LSTM",) + CONV:
        options["unit_forget_bias"] = st.booleans()
    if name == "GRU":
        options["reset_after"] = st.booleans()
    if name in ("LSTM", "GRU"):
        options["implementation"] = st.sampled_from([1, 2])
    if training:
        options.update(dropout=st.sampled_from([0.0, 0.2, 0.5]), recurrent_dropout=st.sampled_from([0.0, 0.3]))
    kwargs = {k: v for k, v in ((k, draw(_maybe(s))) for k, s in options.items()) if v is not _OMIT}
    if name in CONV:
        rank = int(name[-2])
        kwargs.update(filters=draw(st.integers(1, 3)), kernel_size=draw(_kernel(rank)))
        strided = draw(st.booleans())
        axis = st.integers(1, 2)
        kwargs["strides" if strided else "dilation_rate"] = draw(st.one_of(axis, st.tuples(*[axis] * rank)))
        kwargs["padding"] = draw(st.sampled_from(["valid", "same"]))
        kwargs["data_format"] = draw(st.sampled_from(list(data_formats)))
        kwargs.pop("unroll", None)  # not a ConvLSTM argument
    else:
        kwargs["units"] = draw(st.integers(1, 6))
    return kwargs


def _kernel(rank: int) -> st.SearchStrategy:
    side = st.integers(1, 3)
    return st.one_of(side, st.tuples(*[side] * rank))


@st.composite
def layer_configs(draw, layers: Sequence[str] = LAYERS, **kwargs: Any) -> dict:
    """A config in ``keras.layers.serialize`` form ({"module", "class_name", "config"}), which
    ``keras.layers.deserialize`` and ``refimpl.deserialize`` both accept."""
    name = draw(st.sampled_from(list(layers)))
    if name == "Bidirectional":
        inner_name = draw(st.sampled_from([n for n in layers if n != "Bidirectional"] or list(DENSE)))
        inner = _serialized(inner_name, draw(layer_kwargs(inner_name, wrapped=True, **kwargs)))
        config = {"layer": inner}
        mode = draw(_maybe(st.sampled_from(MERGE_MODES)))
        if mode is not _OMIT:
            config["merge_mode"] = mode
        return _serialized(name, config)
    return _serialized(name, draw(layer_kwargs(name, **kwargs)))


def _serialized(name: str, config: dict) -> dict:
    return {"module": "keras.layers", "class_name": name, "config": config, "registered_name": None}


def _inner(config: dict) -> dict:
    return config["config"]["layer"] if config["class_name"] == "Bidirectional" else config


@st.composite
def input_shapes(draw, config: dict, max_batch: int = 4, max_steps: int = 8) -> tuple[int, ...]:
    """(B, T, F), or for ConvLSTM (B, T, *spatial, C) / (B, T, C, *spatial) big enough for the kernel."""
    batch, steps = draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps))
    features = draw(st.integers(1, 5))
    inner = _inner(config)
    if inner["class_name"] not in CONV:
        return (batch, steps, features)
    kw, rank = inner["config"], int(inner["class_name"][-2])
    k = _per_axis(kw["kernel_size"], rank)
    d = _per_axis(kw.get("dilation_rate", 1), rank)
    spatial = tuple(draw(st.integers((ki - 1) * di + 1, (ki - 1) * di + 4)) for ki, di in zip(k, d))
    if kw.get("data_format") == "channels_first":
        return (batch, steps, features, *spatial)
    return (batch, steps, *spatial, features)


def _per_axis(value: Any, rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def inputs(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float64 inputs in [-1, 1], from a drawn seed (fast, and shrinks to small seeds)."""
    return st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed).uniform(-1, 1, shape))


def masks(batch: int, steps: int) -> st.SearchStrategy[np.ndarray | None]:
    """None, a named edge pattern (all true, right/left padding, holes, a fully masked row, masked
    first steps), all false, or arbitrary booleans."""
    named = st.sampled_from(MASKS).map(lambda name: mask_pattern(name, batch, steps))
    return st.one_of(st.none(), named, st.just(np.zeros((batch, steps), bool)),
                     st.lists(st.booleans(), min_size=batch * steps, max_size=batch * steps).map(
                         lambda bits: np.array(bits, bool).reshape(batch, steps)))


def weights(shapes: Sequence[tuple[int, ...]]) -> st.SearchStrategy[list[np.ndarray]]:
    """Independent uniform [-0.6, 0.6] entries: every gate differs, and no bias is zero."""
    def draw(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        out = [rng.uniform(-0.6, 0.6, s) for s in shapes]
        return [np.where(w == 0, 0.1, w) for w in out]
    return st.integers(0, 2**32 - 1).map(draw)


def initial_states(shapes: Sequence[tuple[int, ...]]) -> st.SearchStrategy[list[np.ndarray] | None]:
    """None (zeros), or one array per state, values in [-0.8, 0.8]."""
    drawn = st.integers(0, 2**32 - 1).map(
        lambda seed: [np.random.default_rng(seed).uniform(-0.8, 0.8, s) for s in shapes])
    return st.one_of(st.none(), drawn)


@dataclass
class Drawn:
    """One drawn example: a config, a built refimpl twin with drawn weights, and its data."""

    config: dict
    layer: Any
    inputs: np.ndarray
    mask: np.ndarray | None
    initial_state: list | None
    weights: list[np.ndarray]


@st.composite
def layers_and_data(draw, layers: Sequence[str] = LAYERS, *, with_masks: bool = True,
                    with_states: bool = True, **kwargs: Any) -> Drawn:
    """A config, the refimpl layer built from it with drawn weights, inputs, and maybe a mask and
    initial states. (Stateful layers are drawn only by ``layer_kwargs`` callers who ask.)"""

    config = draw(layer_configs(layers, **kwargs))
    shape = draw(input_shapes(config))
    layer = refimpl.deserialize(config)
    layer.build(shape)
    w = draw(weights([np.shape(x) for x in layer.get_weights()]))
    layer.set_weights(w)
    mask = draw(masks(*shape[:2])) if with_masks else None
    state = None
    if with_states:
        state = draw(initial_states([z.shape for z in layer.get_initial_state(shape[0])]))
    return Drawn(config, layer, draw(inputs(shape)), mask, state, w)


@st.composite
def cases(draw, layers: Sequence[str] = LAYERS) -> Case:
    """A conformance ``Case`` (float64, channels_last): what the differential fuzzer runs through
    Keras and refimpl with the harness's own data, comparison and reports."""
    config = draw(layer_configs(layers, data_formats=("channels_last",), training=True))
    shape = draw(input_shapes(config, max_batch=3, max_steps=6))
    inner = _inner(config)
    wrapped = ()
    if config["class_name"] == "Bidirectional":
        layer_spec = spec("Bidirectional", **{k: v for k, v in config["config"].items() if k != "layer"})
        wrapped = (spec(inner["class_name"], **inner["config"]),)
    else:
        layer_spec = spec(config["class_name"], **config["config"])
    conv = inner["class_name"] in CONV
    stateful = draw(st.booleans()) and draw(st.booleans())  # a quarter of cases
    if stateful:  # on the recurrent layer itself (Bidirectional takes it from its inner layer)
        add = lambda s: (s[0], tuple(sorted({**dict(s[1]), "stateful": True}.items())))
        wrapped, layer_spec = ((add(wrapped[0]),), layer_spec) if wrapped else ((), add(layer_spec))
    rates = dict(inner["config"])
    training = bool(rates.get("dropout") or rates.get("recurrent_dropout"))
    return Case(layer_spec, wrapped=wrapped, dtype="float64", batch=shape[0], steps=max(shape[1], 2 if stateful else 1),
                features=shape[-1], spatial=tuple(shape[2:-1]) if conv else (),
                mask=draw(st.one_of(st.none(), st.sampled_from(MASKS))), initial_state=draw(st.booleans()),
                training=training, stateful_calls=stateful)
