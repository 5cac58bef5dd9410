"""refimpl's API against Keras's own: constructor signatures, config keys, activations, param counts."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import refimpl
from conformance.tolerances import CONVOLUTION, DERIVATIVE, ELEMENTWISE
from refimpl import activations

CLASSES = ["SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "RNN", "StackedRNNCells",
           "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Bidirectional"]


def test_conv_lstm_cell_takes_keras_arguments_with_keras_defaults():
    from keras.src.layers.rnn.conv_lstm import ConvLSTMCell  # not exported by Keras

    assert _params(refimpl.ConvLSTMCell.__init__) == _params(ConvLSTMCell.__init__)


def _params(fn):
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if name not in ("self", "kwargs") and p.kind is not p.VAR_KEYWORD}


@pytest.mark.parametrize("name", CLASSES)
def test_constructor_takes_keras_arguments_with_keras_defaults(name):
    ours, theirs = _params(getattr(refimpl, name).__init__), _params(getattr(keras.layers, name).__init__)
    assert list(ours) == list(theirs)
    assert ours == theirs


KERAS_LAYERS = [
    keras.layers.SimpleRNN(3, return_sequences=True, go_backwards=True),
    keras.layers.LSTM(2, unit_forget_bias=False, dropout=0.2, activation="relu", seed=4),
    keras.layers.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid", stateful=True),
    keras.layers.RNN([keras.layers.GRUCell(2), keras.layers.SimpleRNNCell(3)], return_state=True),
    keras.layers.RNN(keras.layers.LSTMCell(2), zero_output_for_mask=True),
    keras.layers.ConvLSTM1D(2, 3, strides=2, padding="same", return_sequences=True),
    keras.layers.Bidirectional(keras.layers.GRU(3, return_state=True), merge_mode="mul"),
    keras.layers.Bidirectional(keras.layers.LSTM(3), backward_layer=keras.layers.SimpleRNN(3, go_backwards=True)),
]


@pytest.mark.parametrize("layer", KERAS_LAYERS, ids=lambda layer: type(layer).__name__)
def test_config_has_keras_keys_and_values_and_keras_can_load_it(layer):
    layer.build((2, 5, 6, 3) if "ConvLSTM" in type(layer).__name__ else (2, 5, 3))
    twin = refimpl.deserialize(keras.layers.serialize(layer))
    ours, theirs = twin.get_config(), layer.get_config()
    assert set(ours) == set(theirs)
    nested = {"dtype", "cell", "layer", "backward_layer", "kernel_initializer", "recurrent_initializer",
              "bias_initializer"}
    for key in set(theirs) - nested:
        assert _lists(ours[key]) == _lists(theirs[key]), key
    again = keras.layers.deserialize(refimpl.serialize(twin))
    assert _unbuilt(again.get_config()) == _unbuilt({**layer.get_config(), "name": again.name})
    assert twin.count_params() == layer.count_params()


def _lists(value):
    """Keras keeps tuples (kernel_size=(3,)) in get_config; compare them as JSON would."""
    return list(value) if isinstance(value, tuple) else value


def _unbuilt(config):
    """A config without Keras's build_config entries (refimpl does not write them for nested cells)."""
    if isinstance(config, dict):
        return {k: _unbuilt(v) for k, v in config.items() if k != "build_config"}
    if isinstance(config, list):
        return [_unbuilt(c) for c in config]
    return config


GRID = np.concatenate([np.linspace(-6, 6, 241), [-30.0, -3.0, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0, 30.0]])


TF_FLOAT32_CONSTANTS = pytest.mark.xfail(
    strict=True, reason="TensorFlow rounds this activation's constant to float32 in float64 math; "
                        "see conformance/deviations.json")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=TF_FLOAT32_CONSTANTS) if n in ("gelu", "leaky_relu") else n
    for n in sorted(activations.ACTIVATIONS) + sorted(activations.ALIASES)])
def test_activation_matches_keras_in_float64(name):
    _check_activation(name, "float64")


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS) + sorted(activations.ALIASES))
def test_activation_matches_keras_in_float32(name):
    _check_activation(name, "float32")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=TF_FLOAT32_CONSTANTS) if n in ("gelu", "leaky_relu") else n
    for n in sorted(activations.ACTIVATIONS) + sorted(activations.ALIASES)])
def test_activation_derivative_matches_tensorflows_gradient_kinks_included(name):
    """refimpl's f_vjp against tf.GradientTape of Keras's f, on a grid through every kink (0, ±0.5,
    ±1, ±2.5, ±3, 6) where TensorFlow's ops pick a one-sided value."""
    import tensorflow as tf

    x = np.stack([GRID, GRID[::-1]])  # float64
    g = np.random.default_rng(0).uniform(-1, 1, x.shape)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = keras.activations.get(name)(xt)
    expected = tape.gradient(y, xt, output_gradients=tf.constant(g)).numpy()
    fn = activations.get(name)
    actual = activations.vjp(fn)(x, fn(x), g)
    scale = np.maximum(1.0, np.abs(expected))
    np.testing.assert_allclose(actual / scale, expected / scale, rtol=0, atol=DERIVATIVE.atol)


def _check_activation(name, dtype):
    x = np.stack([GRID, GRID[::-1]]).astype(dtype)  # softmax needs a last axis
    expected = keras.ops.convert_to_numpy(keras.activations.get(name)(keras.ops.convert_to_tensor(x)))
    actual = activations.get(name)(x)
    scale = np.maximum(1.0, np.abs(expected))  # exponential reaches e^30
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual / scale, expected / scale, rtol=0, atol=ELEMENTWISE[dtype].atol)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)])
@pytest.mark.parametrize("kernel", [1, 2, 3])
def test_convolution_matches_keras_ops_conv(rank, padding, strides, dilation, kernel, request):
    from refimpl.conv import conv

    size = (9, 8, 7)[:rank]
    extent = (kernel - 1) * dilation + 1
    needed = [(-(-n // strides) - 1) * strides + extent - n for n in size]  # "same" padding per axis
    if rank == 3 and padding == "same" and min(needed) <= -2:
        request.applymarker(pytest.mark.xfail(strict=True, reason="TensorFlow's 3-D 'same' convolution "
                                              "does not clamp negative padding; see deviations.json"))
    rng = np.random.default_rng(rank * 100 + strides * 10 + kernel)
    x, w = rng.uniform(-1, 1, (2, *size, 3)), rng.uniform(-1, 1, (*(kernel,) * rank, 3, 4))
    expected = np.asarray(keras.ops.conv(x, w, strides=strides, padding=padding, dilation_rate=dilation))
    actual = conv(x, w, strides=(strides,) * rank, padding=padding, dilation_rate=(dilation,) * rank)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=CONVOLUTION.atol)


def test_unit_forget_bias_matches_keras_exactly():
    layer = keras.layers.LSTM(5, bias_initializer="random_uniform")
    layer.build((None, 2, 3))
    twin = refimpl.LSTM(5, bias_initializer="random_uniform")
    twin.build((None, 2, 3))
    np.testing.assert_array_equal(layer.get_weights()[2][5:10], twin.get_weights()[2][5:10])


@pytest.mark.parametrize("form", ["trailing axis of one", "float", "int", "trailing axis, float"])
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_keras_takes_a_mask_with_a_trailing_axis_of_one_or_of_numbers_as_the_boolean_mask(name, form):
    """What refimpl's mask handling rests on (tests/test_ranks.py checks refimpl against itself)."""
    forms = {"trailing axis of one": lambda m: m[..., None], "float": lambda m: m.astype("float32"),
             "int": lambda m: m.astype("int32"), "trailing axis, float": lambda m: m[..., None].astype("float32")}
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4)).astype("float32")
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    layer = getattr(keras.layers, name)(2, return_sequences=True)
    want = keras.ops.convert_to_numpy(layer(x, mask=mask))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, mask=forms[form](mask))), want)


@pytest.mark.parametrize("use_cudnn", [True, False])
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_keras_does_not_save_use_cudnn_and_neither_does_refimpl(name, use_cudnn):
    assert "use_cudnn" not in getattr(keras.layers, name)(2, use_cudnn=use_cudnn).get_config()
    assert "use_cudnn" not in getattr(refimpl, name)(2, use_cudnn=use_cudnn).get_config()


def test_keras_takes_padding_in_any_case_as_refimpl_does():
    assert keras.layers.ConvLSTM2D(2, 3, padding="SAME").get_config()["padding"] == "same"
    assert refimpl.ConvLSTM2D(2, 3, padding="SAME").get_config()["padding"] == "same"


@pytest.mark.parametrize("shape", [(), (5,), (4, 6), (3, 4, 6), (3, 3, 4, 8), (2, 3, 2, 4, 8)])
def test_fans_are_keras_fans(shape):
    from keras.src.initializers.random_initializers import compute_fans

    from refimpl import initializers

    assert initializers.compute_fans(shape) == tuple(float(f) for f in compute_fans(shape))
