"""Properties of the time loop that hold for every layer and config, checked on refimpl alone.

Each compares refimpl with itself under a transformation (reversal, chunking, padding, batching),
so no cell math is restated here.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import refimpl

LAYERS = {"SimpleRNN": refimpl.SimpleRNN, "LSTM": refimpl.LSTM, "GRU": refimpl.GRU}
CELLS = {"SimpleRNN": refimpl.SimpleRNNCell, "LSTM": refimpl.LSTMCell, "GRU": refimpl.GRUCell}


@st.composite
def setups(draw, **fixed):
    """A layer name, its kwargs, and float64 data (B, T, F) with values that keep gates unsaturated."""
    name = draw(st.sampled_from(sorted(LAYERS)))
    kwargs = {"units": draw(st.integers(1, 6)), "use_bias": draw(st.booleans())}
    if name != "SimpleRNN":
        kwargs["recurrent_activation"] = draw(st.sampled_from(["sigmoid", "hard_sigmoid", "tanh"]))
    if name == "GRU":
        kwargs["reset_after"] = draw(st.booleans())
    kwargs["activation"] = draw(st.sampled_from(["tanh", "relu", "softsign", None]))
    kwargs.update(fixed)
    b, t, f = draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (b, t, f))
    layer = LAYERS[name](**kwargs)
    layer.build(x.shape)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    return name, kwargs, layer, x, rng


def _twin(layer, x, **overrides):
    """The same layer and weights with some arguments changed, built for inputs like x."""
    config = {**layer.get_config(), **overrides}
    config.pop("name")
    twin = type(layer)(**config)
    twin.build(x.shape)
    twin.set_weights(layer.get_weights())
    return twin


@given(setups(return_sequences=True, return_state=True))
def test_go_backwards_equals_forward_processing_of_the_reversed_input(setup):
    _, _, layer, x, _ = setup
    backwards = _twin(layer, x, go_backwards=True)
    for a, b in zip(backwards(x), layer(x[:, ::-1])):
        np.testing.assert_allclose(a, b, rtol=0, atol=0)


@given(setups(return_sequences=True, return_state=True), st.data())
def test_stateful_chunks_equal_one_call_on_the_whole_sequence(setup, data):
    _, _, layer, x, _ = setup
    cut = data.draw(st.integers(0, x.shape[1]))
    stateful = _twin(layer, x, stateful=True)
    parts = [stateful(x[:, :cut]) if cut else None, stateful(x[:, cut:]) if cut < x.shape[1] else None]
    whole = layer(x)
    last = parts[1] if parts[1] is not None else parts[0]
    for a, b in zip(last[1:], whole[1:]):  # final states
        np.testing.assert_allclose(a, b, atol=1e-14)
    seq = np.concatenate([p[0] for p in parts if p is not None], axis=1)
    np.testing.assert_allclose(seq, whole[0], atol=1e-14)
    stateful.reset_state()
    np.testing.assert_array_equal(stateful(x)[0], whole[0])


@given(setups(return_state=True), st.data())
def test_right_padding_gives_the_final_state_of_the_unpadded_prefix(setup, data):
    _, _, layer, x, rng = setup
    lengths = data.draw(st.lists(st.integers(1, x.shape[1]), min_size=x.shape[0], max_size=x.shape[0]))
    mask = np.arange(x.shape[1])[None, :] < np.array(lengths)[:, None]  # (B, T)
    padded = np.where(mask[..., None], x, rng.uniform(-1, 1, x.shape))  # garbage in padded steps
    out = layer(padded, mask=mask)
    for i, n in enumerate(lengths):
        alone = layer(x[i:i + 1, :n])
        for a, b in zip(out, alone):
            np.testing.assert_allclose(a[i:i + 1], b, atol=1e-14)


@given(setups(return_sequences=True, return_state=True), st.booleans())
def test_a_fully_masked_row_keeps_its_initial_state(setup, zero_output):
    _, _, layer, x, rng = setup
    layer = _twin(layer, x, zero_output_for_mask=zero_output)
    init = [rng.uniform(-1, 1, (x.shape[0], s)) for s in layer.state_size]
    mask = np.ones(x.shape[:2], bool)
    mask[0] = False
    out = layer(x, mask=mask, initial_state=init)
    for state, start in zip(out[1:], init):
        np.testing.assert_array_equal(state[0], start[0])
    np.testing.assert_array_equal(out[0][0], 0.0)  # "previous output" starts at zeros


@given(setups(return_sequences=True, return_state=True))
def test_masked_steps_repeat_the_previous_output_or_emit_zeros(setup):
    _, _, layer, x, _ = setup
    mask = np.ones(x.shape[:2], bool)
    mask[:, 1::2] = False
    seq = layer(x, mask=mask)[0]
    zeros = _twin(layer, x, zero_output_for_mask=True)(x, mask=mask)[0]
    for t in range(1, x.shape[1], 2):
        np.testing.assert_array_equal(seq[:, t], seq[:, t - 1])
        np.testing.assert_array_equal(zeros[:, t], 0.0)
    np.testing.assert_array_equal(zeros[:, ::2], seq[:, ::2])


@given(setups(return_sequences=True, return_state=True))
def test_each_batch_row_is_computed_independently(setup):
    _, _, layer, x, _ = setup
    out = layer(x)
    for i in range(x.shape[0]):
        for a, b in zip(out, layer(x[i:i + 1])):
            np.testing.assert_allclose(a[i:i + 1], b, atol=1e-14)


@given(setups(return_sequences=True, return_state=True))
def test_unroll_does_not_change_the_numbers(setup):
    _, _, layer, x, _ = setup
    for a, b in zip(_twin(layer, x, unroll=True)(x), layer(x)):
        np.testing.assert_array_equal(a, b)


@given(setups(return_sequences=True, return_state=True))
def test_rnn_of_the_cell_equals_the_layer(setup):
    name, kwargs, layer, x, _ = setup
    kwargs = {k: v for k, v in kwargs.items() if k not in ("return_sequences", "return_state")}
    rnn = refimpl.RNN(CELLS[name](**kwargs), return_sequences=True, return_state=True)
    rnn.build(x.shape)
    rnn.set_weights(layer.get_weights())
    for a, b in zip(rnn(x), layer(x)):
        np.testing.assert_array_equal(a, b)


@given(setups(return_sequences=True), setups(return_sequences=True))
def test_stacked_cells_equal_chained_layers(first, second):
    name1, kw1, layer1, x, _ = first
    name2, kw2, layer2, _, rng = second
    strip = lambda kw: {k: v for k, v in kw.items() if k != "return_sequences"}
    layer2 = type(layer2)(**{**strip(kw2), "return_sequences": True})
    layer2.build((None, None, kw1["units"]))
    layer2.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer2.get_weights()])
    stacked = refimpl.RNN([CELLS[name1](**strip(kw1)), CELLS[name2](**strip(kw2))], return_sequences=True)
    stacked.build(x.shape)
    stacked.set_weights(layer1.get_weights() + layer2.get_weights())
    np.testing.assert_allclose(stacked(x), layer2(layer1(x)), atol=1e-14)


@given(setups())
def test_count_params_matches_the_closed_form(setup):
    name, kwargs, layer, x, _ = setup
    u, d, bias = kwargs["units"], x.shape[-1], kwargs["use_bias"]
    expected = {
        "SimpleRNN": u * (d + u) + bias * u,
        "LSTM": 4 * u * (d + u) + bias * 4 * u,
        "GRU": 3 * u * (d + u) + bias * (6 * u if kwargs.get("reset_after") else 3 * u),
    }[name]
    assert layer.count_params() == expected


def test_lstm_with_forget_gate_open_and_input_gate_shut_keeps_its_cell_state():
    u, d = 3, 2
    layer = refimpl.LSTM(u, return_state=True, recurrent_activation="hard_sigmoid")
    layer.build((None, None, d))
    kernel, recurrent, bias = (np.zeros_like(w) for w in layer.get_weights())
    bias[:u], bias[u:2 * u] = -10.0, 10.0  # i = hard_sigmoid(-10) = 0, f = hard_sigmoid(10) = 1
    layer.set_weights([kernel, recurrent, bias])
    c0 = np.array([[0.3, -0.7, 0.5]])
    _, _, c = layer(np.ones((1, 6, d)), initial_state=[np.zeros((1, u)), c0])
    np.testing.assert_array_equal(c, c0)


def test_gru_with_update_gate_shut_keeps_its_state():
    u, d = 3, 2
    layer = refimpl.GRU(u, return_state=True, recurrent_activation="hard_sigmoid")
    layer.build((None, None, d))
    kernel, recurrent, bias = (np.zeros_like(w) for w in layer.get_weights())
    bias[0, :u] = 10.0  # z = 1: h_t = h_{t-1}
    layer.set_weights([kernel + 0.3, recurrent + 0.2, bias])
    h0 = np.array([[0.3, -0.7, 0.5]])
    _, h = layer(np.ones((1, 6, d)), initial_state=[h0])
    np.testing.assert_array_equal(h, h0)
