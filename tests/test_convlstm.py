"""ConvLSTM on refimpl alone: argument checks, shapes, parameter counts, data_format symmetry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refimpl
from conformance.tolerances import REARRANGED

CLASSES = {1: refimpl.ConvLSTM1D, 2: refimpl.ConvLSTM2D, 3: refimpl.ConvLSTM3D}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"kernel_size": 0}, ValueError, r"kernel_size=0, expected a positive int or 2 positive ints"),
    ({"kernel_size": (3, 3, 3)}, ValueError, r"kernel_size=\(3, 3, 3\), expected"),
    ({"kernel_size": 3, "strides": (1, 0)}, ValueError, r"strides=\(1, 0\)"),
    ({"kernel_size": 3, "padding": "full"}, ValueError, r"padding='full', expected one of \('valid', 'same'\)"),
    ({"kernel_size": 3, "padding": "causal"}, NotImplementedError, "padding='causal'"),
    ({"kernel_size": 3, "padding": 1}, ValueError, r"padding=1, expected one of \('valid', 'same'\)"),
    ({"kernel_size": 3, "data_format": "NHWC"}, ValueError, "data_format='NHWC'"),
    ({"kernel_size": 3, "strides": 2, "dilation_rate": 2}, ValueError, "strides=.* with dilation_rate="),
    ({"kernel_size": 3, "dropout": 1.0}, ValueError, r"dropout=1.0, expected a float in \[0, 1\)"),
])
def test_bad_convolution_arguments_are_rejected_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        refimpl.ConvLSTM2D(2, **kwargs)


def test_padding_is_case_insensitive_as_in_keras():
    assert refimpl.ConvLSTM2D(2, 3, padding="SAME").get_config()["padding"] == "same"


def test_implementation_is_not_a_conv_lstm_argument():
    with pytest.raises(TypeError, match="implementation"):
        refimpl.ConvLSTM2D(2, 3, implementation=1)


def test_filters_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="filters=0, expected a positive integer"):
        refimpl.ConvLSTM1D(0, 3)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_inputs_must_have_rank_plus_three_axes(rank):
    with pytest.raises(ValueError, match=rf"expected rank {rank + 3}"):
        CLASSES[rank](2, 1)(np.zeros((1, 2, 3)))


def test_inputs_smaller_than_the_kernel_are_rejected():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        refimpl.ConvLSTM1D(2, 5)(np.zeros((1, 2, 3, 1)))


@st.composite
def conv_layers(draw):
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    strided = draw(st.booleans())
    strides = tuple(draw(st.integers(1, 2)) for _ in range(rank)) if strided else 1
    dilation = 1 if strided else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same"]))
    spatial = tuple(draw(st.integers(5, 7)) for _ in range(rank))
    kwargs = dict(filters=draw(st.integers(1, 3)), kernel_size=kernel, strides=strides, dilation_rate=dilation,
                  padding=padding, use_bias=draw(st.booleans()), return_sequences=draw(st.booleans()),
                  return_state=draw(st.booleans()))
    channels = draw(st.integers(1, 3))
    return rank, kwargs, spatial, channels


@given(conv_layers())
def test_outputs_have_the_shapes_compute_output_shape_promises(setup):
    rank, kwargs, spatial, channels = setup
    layer = CLASSES[rank](**kwargs)
    shape = (2, 3, *spatial, channels)
    out = layer(np.random.default_rng(0).uniform(-1, 1, shape))
    expected = layer.compute_output_shape(shape)
    got = [o.shape for o in out] if kwargs["return_state"] else out.shape
    assert got == (list(expected) if kwargs["return_state"] else expected)


@given(conv_layers())
def test_count_params_is_four_filters_times_kernel_volume_times_inputs_plus_filters(setup):
    rank, kwargs, spatial, channels = setup
    layer = CLASSES[rank](**kwargs)
    layer.build((2, 3, *spatial, channels))
    f, k = kwargs["filters"], int(np.prod(kwargs["kernel_size"]))
    assert layer.count_params() == 4 * f * k * (channels + f) + kwargs["use_bias"] * 4 * f


@given(conv_layers())
def test_channels_first_is_channels_last_with_the_channel_axis_moved(setup):
    rank, kwargs, spatial, channels = setup
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, *spatial, channels))
    last = CLASSES[rank](**kwargs)
    last.build(x.shape)
    first = CLASSES[rank](**kwargs, data_format="channels_first")
    first.build(np.moveaxis(x, -1, 2).shape)
    first.set_weights(last.get_weights())
    out_last, out_first = last(x), first(np.moveaxis(x, -1, 2))
    if not kwargs["return_state"]:
        out_last, out_first = [out_last], [out_first]
    for k, (a, b) in enumerate(zip(out_last, out_first)):
        channel_axis = 2 if (k == 0 and kwargs["return_sequences"]) else 1
        np.testing.assert_allclose(np.moveaxis(b, channel_axis, -1), a, rtol=0, atol=REARRANGED.atol)


def test_recurrent_convolution_keeps_the_state_shape_whatever_the_input_strides():
    layer = refimpl.ConvLSTM2D(3, (3, 2), strides=2, padding="valid", return_state=True)
    _, h, c = layer(np.zeros((1, 4, 9, 7, 2)))
    assert h.shape == c.shape == (1, 4, 3, 3)
    assert layer.cell.recurrent_kernel.shape == (3, 2, 3, 12)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_the_cell_stepped_by_hand_is_the_layer(rank, data_format, training):
    """ConvLSTMCell.call, one step at a time in the layer's data_format, gives the layer's sequence
    and final states (the layer hoists the input convolution over all steps; the cell does not). In
    training, with the same seed, the cell draws on its first step the masks the layer draws (one
    per gate) and keeps them for every step."""
    kwargs = dict(padding="same", data_format=data_format, bias_initializer="random_normal")
    if training:
        kwargs.update(dropout=0.3, recurrent_dropout=0.4, seed=7)
    layer = CLASSES[rank](2, 3, return_sequences=True, return_state=True, **kwargs)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 4, *(5,) * rank, 3))  # (B, T, *spatial, C)
    if data_format == "channels_first":
        x = np.moveaxis(x, -1, 2)
    seq, h, c = layer(x, training=training)
    cell = refimpl.ConvLSTMCell(rank, 2, 3, **kwargs)
    cell.build(x[:, 0].shape)
    cell.set_weights(layer.get_weights())
    state_shape = seq.shape[:1] + seq.shape[2:]
    states = [np.zeros(state_shape), np.zeros(state_shape)]
    outputs = []
    for t in range(x.shape[1]):
        out, states = cell.call(x[:, t], states, training=training)
        outputs.append(out)
    for got, want in zip([np.stack(outputs, 1), *states], [seq, h, c]):
        np.testing.assert_allclose(got, want, rtol=0, atol=REARRANGED.atol)
    if training:
        assert not np.allclose(seq, layer(x)[0])  # the masks dropped something
