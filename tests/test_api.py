"""The Keras-shaped API: configs, deserialization (Keras 3 and 2 forms), weights, states, protocol cells."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl

RNG = np.random.default_rng(0)


def _x(b=2, t=5, f=3, dtype="float64"):
    return RNG.uniform(-1, 1, (b, t, f)).astype(dtype)


@pytest.mark.parametrize("layer", [
    refimpl.SimpleRNN(3, return_sequences=True, go_backwards=True),
    refimpl.LSTM(2, unit_forget_bias=False, dropout=0.2, stateful=True),
    refimpl.GRU(4, reset_after=False, activation="relu", zero_output_for_mask=True, unroll=True),
    refimpl.RNN([refimpl.LSTMCell(2), refimpl.GRUCell(3)], return_state=True),
    refimpl.RNN(refimpl.SimpleRNNCell(2, activation=None)),
], ids=lambda layer: type(layer).__name__)
def test_get_config_round_trips_through_deserialize(layer):
    twin = refimpl.deserialize(refimpl.serialize(layer))
    assert type(twin) is type(layer)
    assert twin.get_config() == layer.get_config()


def test_deserialize_accepts_keras_2_configs_with_their_extra_keys():
    keras2 = {"class_name": "LSTM", "config": {
        "name": "lstm", "trainable": True, "dtype": "float32", "batch_input_shape": [None, 5, 3],
        "return_sequences": False, "return_state": False, "go_backwards": False, "stateful": False,
        "unroll": False, "time_major": False, "units": 2, "activation": "tanh",
        "recurrent_activation": "hard_sigmoid", "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "recurrent_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "unit_forget_bias": True,
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
        "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2}}
    layer = refimpl.deserialize(keras2, keras_version=2)
    assert isinstance(layer, refimpl.LSTM) and layer.units == 2 and layer.dtype == "float32"
    assert layer.recurrent_activation.__name__ == "hard_sigmoid_keras2"
    assert refimpl.deserialize(keras2).recurrent_activation.__name__ == "hard_sigmoid"


def test_deserialize_nested_keras_3_rnn_of_stacked_cells_and_builds_it():
    config = refimpl.serialize(refimpl.RNN([refimpl.SimpleRNNCell(2), refimpl.LSTMCell(3)]))
    config["build_config"] = {"input_shape": [None, 4, 5]}
    layer = refimpl.deserialize(config)
    assert layer.built
    assert [w.shape for w in layer.get_weights()] == [(5, 2), (2, 2), (2,), (2, 12), (3, 12), (12,)]


def test_weights_follow_keras_order_and_shapes():
    shapes = {
        refimpl.SimpleRNN(3): [(4, 3), (3, 3), (3,)],
        refimpl.LSTM(3): [(4, 12), (3, 12), (12,)],
        refimpl.GRU(3): [(4, 9), (3, 9), (2, 9)],
        refimpl.GRU(3, reset_after=False): [(4, 9), (3, 9), (9,)],
        refimpl.LSTM(3, use_bias=False): [(4, 12), (3, 12)],
    }
    for layer, expected in shapes.items():
        layer.build((None, 7, 4))
        assert [w.shape for w in layer.get_weights()] == expected, layer.get_config()


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
@pytest.mark.parametrize("layer_cls", [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU], ids=lambda c: c.__name__)
def test_outputs_have_the_shapes_compute_output_shape_promises(layer_cls, return_sequences, return_state):
    layer = layer_cls(3, return_sequences=return_sequences, return_state=return_state)
    out = layer(_x())
    expected = layer.compute_output_shape((2, 5, 3))
    if return_state:
        assert [o.shape for o in out] == list(expected)
    else:
        assert out.shape == expected


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_computes_in_the_input_float_dtype(dtype):
    out = refimpl.GRU(2, return_state=True)(_x(dtype=dtype))
    assert [o.dtype for o in out] == [np.dtype(dtype)] * 2


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU", "GRU-reset_before"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_no_policy_computes_as_the_policy_of_the_input_dtype(name, dtype):
    """Without a dtype policy a layer computes in its inputs' dtype, weights included: the same as
    with that policy, bit for bit, forward and backward (float64 weights are cast first)."""
    kwargs = {"reset_after": False} if name == "GRU-reset_before" else {}
    cls = getattr(refimpl, name.split("-")[0])
    x = _x(dtype=dtype)
    free, fixed = cls(3, return_sequences=True, **kwargs), cls(3, return_sequences=True, dtype=dtype, **kwargs)
    free.build(x.shape)
    fixed.build(x.shape)
    weights = [np.random.default_rng(k).uniform(-0.6, 0.6, w.shape) for k, w in enumerate(free.get_weights())]
    free.set_weights(weights)
    fixed.set_weights(weights)
    np.testing.assert_array_equal(free(x), fixed(x))
    cot = np.random.default_rng(9).uniform(-1, 1, free(x).shape).astype(dtype)
    a, b = refimpl.vjp(free, x, cot), refimpl.vjp(fixed, x, cot)
    assert a.inputs.dtype == np.dtype(dtype)
    for u, v in zip([a.inputs, *a.weights], [b.inputs, *b.weights]):
        np.testing.assert_array_equal(u, v)


def test_a_dtype_policy_overrides_the_input_dtype_as_in_keras():
    assert refimpl.LSTM(2, dtype="float32")(_x()).dtype == np.float32
    mixed = refimpl.LSTM(2, dtype="mixed_float16")
    assert mixed(_x()).dtype == np.float16
    assert all(w.dtype == np.float32 for w in mixed.get_weights())


def test_stateful_layer_carries_states_and_reset_state_zeroes_them():
    layer = refimpl.LSTM(3, stateful=True, return_state=True)
    x = _x()
    first = layer(x)
    second = layer(x)
    assert not np.allclose(first[0], second[0])
    layer.reset_state()
    assert all(np.all(s == 0) for s in layer.states)
    np.testing.assert_array_equal(layer(x)[0], first[0])
    layer.reset_states()  # Keras's alias
    assert all(np.all(s == 0) for s in layer.states)


def test_user_cell_following_the_keras_protocol():
    class Accumulate:
        """h_t = h_{t-1} + x_t, with an output twice the state."""
        state_size = 2
        output_size = 2

        def call(self, inputs, states):
            h = states[0] + inputs
            return 2 * h, [h]

    x = _x(f=2)
    out, h = refimpl.RNN(Accumulate(), return_state=True)(x)
    np.testing.assert_allclose(h, x.sum(axis=1))
    np.testing.assert_allclose(out, 2 * x.sum(axis=1))


def test_user_cell_with_list_state_size_training_flag_and_no_output_size():
    class TwoStates:
        state_size = [2, 1]

        def __init__(self):
            self.seen_training = []

        def call(self, inputs, states, training=False):
            self.seen_training.append(training)
            return inputs, [states[0] + inputs, states[1] + 1]

    cell = TwoStates()
    layer = refimpl.RNN(cell, return_state=True)
    out, h, n = layer(_x(t=4, f=2), training=True)
    assert layer.compute_output_shape((2, 4, 2)) == ((2, 2), (2, 2), (2, 1))
    np.testing.assert_array_equal(n, np.full((2, 1), 4.0))
    assert cell.seen_training == [True] * 4


def test_cells_called_directly_follow_keras_state_conventions():
    cell = refimpl.GRUCell(3)
    x = _x()[:, 0]
    h, states = cell(x, [np.zeros((2, 3))])
    assert isinstance(states, list) and states[0] is h
    h2, bare = cell(x, np.zeros((2, 3)))  # a bare state comes back bare, as in Keras
    assert isinstance(bare, np.ndarray)
    np.testing.assert_array_equal(h, h2)


def test_stacked_rnn_cells_returns_states_nested_per_cell():
    layer = refimpl.RNN([refimpl.SimpleRNNCell(2), refimpl.LSTMCell(3)], return_state=True)
    out, simple_states, lstm_states = layer(_x())
    assert out.shape == (2, 3)
    assert [s.shape for s in simple_states] == [(2, 2)]
    assert [s.shape for s in lstm_states] == [(2, 3), (2, 3)]
    np.testing.assert_array_equal(out, lstm_states[0])


def test_layer_attributes_are_forwarded_to_the_cell_as_in_keras():
    layer = refimpl.GRU(5, reset_after=False, recurrent_dropout=0.1)
    assert (layer.units, layer.reset_after, layer.recurrent_dropout) == (5, False, 0.1)
    with pytest.raises(AttributeError):
        layer.no_such_attribute
