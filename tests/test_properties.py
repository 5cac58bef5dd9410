"""Properties that hold for every layer and config, on refimpl alone, drawn with the public
strategies in ``conformance.strategies``.

Each compares refimpl with itself under a transformation (reversal, chunking, padding, batching)
or with a closed form, so no cell math is restated here.
"""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import refimpl
from conformance import strategies as rs
from conformance.tolerances import REARRANGED

DENSE, CONV, ALL = rs.DENSE, rs.CONV, rs.LAYERS
RECURRENT = DENSE + CONV  # everything but the wrapper
CELLS = {"SimpleRNN": refimpl.SimpleRNNCell, "LSTM": refimpl.LSTMCell, "GRU": refimpl.GRUCell}


def twin(drawn: rs.Drawn, **overrides):
    """The drawn layer rebuilt with some arguments changed and the same weights."""
    config = copy.deepcopy(drawn.config)
    target = config["config"]["layer"] if config["class_name"] == "Bidirectional" else config
    target["config"].update(overrides)
    layer = refimpl.deserialize(config)
    layer.build(drawn.inputs.shape)
    layer.set_weights(drawn.weights)
    return layer


def as_list(out) -> list:
    return out if isinstance(out, list) else [out]


def flat(out) -> list:
    return [y for x in out for y in flat(x)] if isinstance(out, list) else [out]


@given(rs.layers_and_data(ALL))
def test_outputs_have_the_shapes_compute_output_shape_promises(drawn):
    out = drawn.layer(drawn.inputs, mask=drawn.mask, initial_state=drawn.initial_state)
    expected = drawn.layer.compute_output_shape(drawn.inputs.shape)
    expected = list(expected) if isinstance(expected, tuple) and isinstance(expected[0], tuple) else [expected]
    assert [o.shape for o in as_list(out)] == expected


@given(rs.layers_and_data(ALL, with_masks=False, with_states=False))
def test_count_params_matches_the_closed_form(drawn):
    config = rs._inner(drawn.config)
    name, kw = config["class_name"], config["config"]
    d = drawn.inputs.shape[2 if kw.get("data_format") == "channels_first" else -1]
    bias = kw.get("use_bias", True)
    if name in CONV:
        f, k = kw["filters"], int(np.prod(rs._per_axis(kw["kernel_size"], int(name[-2]))))
        count = 4 * f * k * (d + f) + bias * 4 * f
    else:
        u = kw["units"]
        count = {"SimpleRNN": u * (d + u) + bias * u,
                 "LSTM": 4 * u * (d + u) + bias * 4 * u,
                 "GRU": 3 * u * (d + u) + bias * (6 * u if kw.get("reset_after", True) else 3 * u)}[name]
    assert drawn.layer.count_params() == count * (2 if drawn.config["class_name"] == "Bidirectional" else 1)


@given(rs.layers_and_data(RECURRENT))
def test_go_backwards_equals_forward_processing_of_the_reversed_input_and_mask(drawn):
    seq = dict(return_sequences=True, return_state=True)
    backwards = twin(drawn, go_backwards=True, **seq)
    forwards = twin(drawn, go_backwards=False, **seq)
    mask = None if drawn.mask is None else drawn.mask[:, ::-1]
    for a, b in zip(backwards(drawn.inputs, mask=drawn.mask, initial_state=drawn.initial_state),
                    forwards(drawn.inputs[:, ::-1], mask=mask, initial_state=drawn.initial_state)):
        np.testing.assert_array_equal(a, b)


@given(rs.layers_and_data(RECURRENT, with_masks=False, with_states=False), st.data())
def test_stateful_chunks_equal_one_call_and_reset_state_restores_zeros(drawn, data):
    """Chunks fed in processing order (the later chunk first with go_backwards) carry the state."""
    x = drawn.inputs
    cut = data.draw(st.integers(1, x.shape[1]))
    stateful = twin(drawn, stateful=True, return_sequences=True, return_state=True)
    whole = twin(drawn, return_sequences=True, return_state=True)(x)
    chunks = [c for c in (x[:, :cut], x[:, cut:]) if c.shape[1]]
    if stateful.go_backwards:
        chunks.reverse()
    outs = [stateful(c) for c in chunks]
    for a, b in zip(outs[-1][1:], whole[1:]):  # final states
        np.testing.assert_allclose(a, b, rtol=0, atol=REARRANGED.atol)
    np.testing.assert_allclose(np.concatenate([o[0] for o in outs], axis=1), whole[0], rtol=0, atol=REARRANGED.atol)
    stateful.reset_state()
    np.testing.assert_array_equal(stateful(x)[0], whole[0])


@given(rs.layers_and_data(ALL, with_masks=False, with_states=False), st.data())
def test_right_padding_gives_the_output_and_states_of_the_unpadded_prefix(drawn, data):
    x = drawn.inputs
    # (zero_output_for_mask=True would zero the last output of a padded row, by design)
    layer = twin(drawn, return_sequences=False, return_state=True, zero_output_for_mask=False)
    lengths = data.draw(st.lists(st.integers(1, x.shape[1]), min_size=x.shape[0], max_size=x.shape[0]))
    mask = np.arange(x.shape[1])[None, :] < np.array(lengths)[:, None]  # (B, T)
    garbage = np.random.default_rng(0).uniform(-1, 1, x.shape)
    padded = np.where(mask.reshape(mask.shape + (1,) * (x.ndim - 2)), x, garbage)
    out = flat(layer(padded, mask=mask))
    for i, n in enumerate(lengths):
        for a, b in zip(out, flat(layer(x[i:i + 1, :n]))):
            np.testing.assert_allclose(a[i:i + 1], b, rtol=0, atol=REARRANGED.atol)


@given(rs.layers_and_data(RECURRENT, with_masks=False), st.booleans())
def test_a_fully_masked_row_keeps_its_initial_state_and_emits_zeros(drawn, zero_output):
    layer = twin(drawn, zero_output_for_mask=zero_output, return_sequences=True, return_state=True)
    init = drawn.initial_state or [np.full(z.shape, 0.25) for z in layer.get_initial_state(drawn.inputs.shape[0])]
    mask = np.ones(drawn.inputs.shape[:2], bool)
    mask[0] = False
    out = layer(drawn.inputs, mask=mask, initial_state=init)
    for state, start in zip(out[1:], init):
        np.testing.assert_array_equal(state[0], start[0])
    np.testing.assert_array_equal(out[0][0], 0.0)  # "previous output" starts at zeros


@given(rs.layers_and_data(RECURRENT, with_masks=False))
def test_masked_steps_repeat_the_previous_output_or_emit_zeros(drawn):
    x = drawn.inputs
    mask = np.ones(x.shape[:2], bool)
    mask[:, 1::2] = False
    kwargs = dict(return_sequences=True, return_state=False, go_backwards=False)  # outputs in input order
    seq = twin(drawn, zero_output_for_mask=False, **kwargs)(x, mask=mask, initial_state=drawn.initial_state)
    zeros = twin(drawn, zero_output_for_mask=True, **kwargs)(x, mask=mask, initial_state=drawn.initial_state)
    for t in range(1, x.shape[1], 2):
        np.testing.assert_array_equal(seq[:, t], seq[:, t - 1])
        np.testing.assert_array_equal(zeros[:, t], 0.0)
    np.testing.assert_array_equal(zeros[:, ::2], seq[:, ::2])


@given(rs.layers_and_data(ALL, with_states=False))
def test_each_batch_row_is_computed_independently(drawn):
    layer = twin(drawn, stateful=False)
    out = flat(layer(drawn.inputs, mask=drawn.mask))
    for i in range(drawn.inputs.shape[0]):
        row_mask = None if drawn.mask is None else drawn.mask[i:i + 1]
        for a, b in zip(out, flat(layer(drawn.inputs[i:i + 1], mask=row_mask))):
            np.testing.assert_allclose(a[i:i + 1], b, rtol=0, atol=REARRANGED.atol)


@given(rs.layers_and_data(DENSE))
def test_unroll_does_not_change_the_numbers(drawn):
    kwargs = dict(return_sequences=True, return_state=True)
    for a, b in zip(twin(drawn, unroll=True, **kwargs)(drawn.inputs, mask=drawn.mask),
                    twin(drawn, unroll=False, **kwargs)(drawn.inputs, mask=drawn.mask)):
        np.testing.assert_array_equal(a, b)


LOOP_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")


@given(rs.layers_and_data(DENSE, with_states=False))
def test_rnn_of_the_cell_equals_the_layer(drawn):
    config = drawn.config["config"]
    cell_kwargs = {k: v for k, v in config.items() if k not in LOOP_ARGS}
    loop_kwargs = {k: v for k, v in config.items() if k in LOOP_ARGS}
    rnn = refimpl.RNN(CELLS[drawn.config["class_name"]](**cell_kwargs), **loop_kwargs)
    rnn.build(drawn.inputs.shape)
    rnn.set_weights(drawn.weights)
    for a, b in zip(flat(rnn(drawn.inputs, mask=drawn.mask)), flat(drawn.layer(drawn.inputs, mask=drawn.mask))):
        np.testing.assert_array_equal(a, b)


@given(rs.layers_and_data(DENSE, with_masks=False, with_states=False),
       rs.layer_configs(DENSE), st.integers(0, 2**32 - 1))
def test_stacked_cells_equal_chained_layers(first, second_config, seed):
    strip = lambda kw: {k: v for k, v in kw.items() if k not in LOOP_ARGS}
    layer1 = twin(first, return_sequences=True, return_state=False, go_backwards=False, stateful=False)
    kw1, kw2 = strip(first.config["config"]), strip(second_config["config"])
    name1, name2 = first.config["class_name"], second_config["class_name"]
    layer2 = getattr(refimpl, name2)(**kw2, return_sequences=True)
    layer2.build((None, None, kw1["units"]))
    rng = np.random.default_rng(seed)
    layer2.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer2.get_weights()])
    stacked = refimpl.RNN([CELLS[name1](**kw1), CELLS[name2](**kw2)], return_sequences=True)
    stacked.build(first.inputs.shape)
    stacked.set_weights(layer1.get_weights() + layer2.get_weights())
    np.testing.assert_allclose(stacked(first.inputs), layer2(layer1(first.inputs)), rtol=0, atol=REARRANGED.atol)


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
