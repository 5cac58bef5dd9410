"""Bad input fails loudly, naming the argument; options refimpl does not model raise NotImplementedError."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl

LAYERS = [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU]
CELLS = [refimpl.SimpleRNNCell, refimpl.LSTMCell, refimpl.GRUCell]


@pytest.mark.parametrize("cls", LAYERS + CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("units, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                          (True, TypeError), ("4", TypeError)])
def test_units_must_be_a_positive_integer(cls, units, error):
    with pytest.raises(error, match=rf"units={units!r}, expected a positive integer"):
        cls(units)


@pytest.mark.parametrize("cls", LAYERS + CELLS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("arg", ["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rates_outside_zero_one_are_rejected(cls, arg, rate):
    with pytest.raises(ValueError, match=rf"{arg}={rate!r}, expected a float in \[0, 1\)"):
        cls(2, **{arg: rate})


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_unknown_activation_is_a_value_error_listing_the_names(cls):
    with pytest.raises(ValueError, match=r"activation='tanhh', expected one of \[.*'tanh'"):
        cls(2, activation="tanhh")


@pytest.mark.parametrize("name", ["glu", "threshold", "sparsemax"])
def test_keras_activations_that_cannot_work_in_a_cell_raise_not_implemented(name):
    with pytest.raises(NotImplementedError, match=rf"activation='{name}'"):
        refimpl.LSTM(2, activation=name)


def test_unknown_keyword_argument_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['return_sequence'\]"):
        refimpl.LSTM(2, return_sequence=True)


@pytest.mark.parametrize("kwargs, what", [
    ({"dtype": "float8_e4m3fn"}, "dtype='float8_e4m3fn'"),
    ({"dtype": "int8_from_float32"}, "dtype='int8_from_float32'"),
    ({"autocast": False}, "autocast=False"),
    ({"weights": [np.zeros((2, 8))]}, "weights="),
    ({"kernel_initializer": {"class_name": "GlorotUniform", "config": {"input_axes": [0]}}}, "input_axes"),
])
def test_options_refimpl_does_not_model_raise_not_implemented(kwargs, what):
    with pytest.raises(NotImplementedError, match=what):
        refimpl.LSTM(2, **kwargs)


def test_time_major_is_a_keras_2_argument():
    with pytest.raises(ValueError, match="time_major=True is a Keras 2 argument"):
        refimpl.GRU(2, time_major=True)


@pytest.mark.parametrize("shape", [(4, 3), (3,), (), (1, 2, 1, 1)])
def test_inputs_of_another_rank_than_three_are_rejected(shape):
    with pytest.raises(ValueError, match=r"inputs.shape=.*expected rank 3 \(batch, timesteps, features"):
        refimpl.SimpleRNN(2)(np.zeros(shape))


def test_inputs_with_a_different_feature_size_than_built_are_rejected():
    layer = refimpl.LSTM(2)
    layer(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"inputs.shape=\(1, 3, 5\), but the layer was built for features \(4,\)"):
        layer(np.zeros((1, 3, 5)))


def test_set_weights_checks_count_and_shapes_in_keras_order():
    layer = refimpl.GRU(3)
    layer.build((None, 5, 4))
    with pytest.raises(ValueError, match=r"len\(weights\)=2, expected 3 \(kernel, recurrent_kernel, bias\)"):
        layer.set_weights(layer.get_weights()[:2])
    bad = layer.get_weights()
    bad[2] = np.zeros(9)
    with pytest.raises(ValueError, match=r"bias.shape=\(9,\), expected \(2, 9\)"):
        layer.set_weights(bad)


def test_weights_are_unavailable_before_build():
    with pytest.raises(ValueError, match="needs a built layer"):
        refimpl.LSTM(2).get_weights()


@pytest.mark.parametrize("mask_shape", [(2, 4), (3, 5), (2,)])
def test_mask_must_be_batch_by_timesteps(mask_shape):
    with pytest.raises(ValueError, match=r"mask.shape=.*expected \(batch, timesteps\)=\(2, 5\)"):
        refimpl.LSTM(2)(np.zeros((2, 5, 3)), mask=np.ones(mask_shape, bool))


def test_initial_state_count_and_shapes_are_checked():
    x = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match=r"len\(initial_state\)=1, expected 2"):
        refimpl.LSTM(4)(x, initial_state=[np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"initial_state\[1\].shape=\(2, 3\), expected \(2, 4\)"):
        refimpl.LSTM(4)(x, initial_state=[np.zeros((2, 4)), np.zeros((2, 3))])


def test_stateful_layer_keeps_its_batch_size():
    layer = refimpl.SimpleRNN(2, stateful=True)
    layer(np.zeros((3, 4, 1)))
    with pytest.raises(ValueError, match="stateful: batch size 2, expected 3"):
        layer(np.zeros((2, 4, 1)))


def test_stateful_build_needs_a_batch_size():
    with pytest.raises(ValueError, match="stateful=True needs a known batch size"):
        refimpl.GRU(2, stateful=True).build((None, 4, 1))


def test_rnn_rejects_objects_that_are_not_cells():
    with pytest.raises(ValueError, match="expected an object with a call"):
        refimpl.RNN(object())

    class NoSize:
        def call(self, x, states):
            return x, states

    with pytest.raises(ValueError, match=r"cell.state_size=None"):
        refimpl.RNN(NoSize())


@pytest.mark.parametrize("kwargs, match", [
    ({"use_bias": "yes"}, "use_bias='yes', expected True or False"),
    ({"return_sequences": 1}, "return_sequences=1, expected True or False"),
    ({"use_cudnn": "always"}, r"use_cudnn='always', expected one of \('auto', True, False\)"),
    ({"implementation": 3}, r"implementation=3, expected one of \(1, 2\)"),
])
def test_flags_are_type_checked(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        refimpl.LSTM(2, **kwargs)


def test_dropout_mask_of_the_wrong_shape_is_rejected():
    layer = refimpl.GRU(3, dropout=0.5)
    with pytest.raises(ValueError, match=r"dropout mask shape=\(2, 5\), expected \(2, 4\)"):
        layer(np.zeros((2, 3, 4)), training=True, dropout_masks=refimpl.DropoutMasks(input=np.ones((2, 5))))


@pytest.mark.parametrize("masks", [{"input": np.ones((2, 4))}, {"recurrent": np.ones((2, 3))}], ids=["input", "recurrent"])
def test_a_dropout_mask_for_a_rate_of_zero_is_rejected(masks):
    with pytest.raises(ValueError, match="mask was given but .*dropout=0.0"):
        refimpl.GRU(3)(np.zeros((2, 3, 4)), training=True, dropout_masks=refimpl.DropoutMasks(**masks))


def test_per_gate_dropout_masks_are_required_with_recurrent_dropout():
    layer = refimpl.LSTM(3, recurrent_dropout=0.5)  # Keras switches to implementation=1: 4 masks
    with pytest.raises(ValueError, match=r"expected \(4, 2, 3\) \(one per gate: 4\)"):
        layer(np.zeros((2, 3, 4)), training=True, dropout_masks=refimpl.DropoutMasks(recurrent=np.ones((2, 3))))


def test_deserialize_rejects_unknown_classes_and_non_configs():
    with pytest.raises(NotImplementedError, match=r"class_name='Dense'"):
        refimpl.deserialize({"class_name": "Dense", "config": {"units": 2}})
    with pytest.raises(ValueError, match="expected a dict with 'class_name' and 'config'"):
        refimpl.deserialize({"units": 2})
