"""Cells on their own and the layer-cell contract, on refimpl alone: a cell called directly
defaults to inference and keeps its compute dtype; weights and states come in the dtype asked
for; ConvLSTM's build and argument checks; a built cell round-trips built; a layer's defaults are
its cell's; the backward pass computes in the compute dtype; an unbuilt ConvLSTMCell builds on its
first step (stepping one by hand is in tests/test_convlstm.py). Found by mutation testing
(docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl
from conformance.tolerances import REARRANGED
from refimpl.cell import DropoutMasks

X = np.random.default_rng(1).uniform(-1, 1, (2, 3, 4))
XC = np.random.default_rng(2).uniform(-1, 1, (2, 3, 5, 5, 3))  # ConvLSTM2D (B, T, H, W, C)

CELLS = {
    "SimpleRNNCell": lambda **k: refimpl.SimpleRNNCell(3, **k),
    "LSTMCell": lambda **k: refimpl.LSTMCell(3, **k),
    "GRUCell": lambda **k: refimpl.GRUCell(3, **k),
    "ConvLSTMCell": lambda **k: refimpl.ConvLSTMCell(2, 2, 3, padding="same", **k),
}


def _step_and_states(name, cell, dtype):
    x = (XC[:, 0] if name == "ConvLSTMCell" else X[:, 0]).astype(dtype)
    cell.build(x.shape)
    states = cell.get_initial_state(x.shape[0], dtype)
    return x, states


# inference is the default (cell.call and ConvLSTM.__call__ without training=)
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_call_defaults_to_inference(name):
    cell = CELLS[name](dropout=0.5, recurrent_dropout=0.5, seed=1)
    x, states = _step_and_states(name, cell, "float64")
    states = [s + 0.5 for s in states]
    h_default, _ = cell.call(x, states)
    cell.reset_dropout_mask()
    h_inference, _ = cell.call(x, states, training=False)
    np.testing.assert_array_equal(h_default, h_inference)


def test_conv_lstm_layer_defaults_to_inference():
    layer = refimpl.ConvLSTM2D(2, 3, padding="same", dropout=0.5, recurrent_dropout=0.5, seed=1)
    np.testing.assert_array_equal(layer(XC), layer(XC, training=False))


# a cell's call keeps the compute dtype, whatever dtype the states come in
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_call_keeps_the_input_dtype(name):
    cell = CELLS[name](bias_initializer="random_normal")
    x, states32 = _step_and_states(name, cell, "float32")
    states32 = [s + np.float32(0.25) for s in states32]
    states64 = [s.astype(np.float64) for s in states32]
    h32, s32 = cell.call(x, states32)
    h64, s64 = cell.call(x, states64)
    assert h32.dtype == np.float32 and all(s.dtype == np.float32 for s in s32)
    assert h64.dtype == np.float32 and all(s.dtype == np.float32 for s in s64)
    np.testing.assert_array_equal(h32, h64)


# weights are created in the variable dtype
@pytest.mark.parametrize("policy", ["float32", "float16", "mixed_float16"])
@pytest.mark.parametrize("make", [
    lambda d: refimpl.SimpleRNN(3, dtype=d), lambda d: refimpl.GRU(3, dtype=d),
    lambda d: refimpl.LSTM(3, unit_forget_bias=False, dtype=d), lambda d: refimpl.LSTM(3, dtype=d),
    lambda d: refimpl.ConvLSTM2D(2, 3, dtype=d),
    lambda d: refimpl.ConvLSTM2D(2, 3, unit_forget_bias=False, dtype=d),
    lambda d: refimpl.ConvLSTM2D(2, 3, bias_initializer={"class_name": "Constant", "config": {"value": 1}}, dtype=d),
], ids=["SimpleRNN", "GRU", "LSTM-nofb", "LSTM", "ConvLSTM2D", "ConvLSTM2D-nofb", "ConvLSTM2D-const"])
def test_weights_are_built_in_the_variable_dtype(make, policy):
    layer = make(policy)
    layer.build(XC.shape if isinstance(layer, refimpl.ConvLSTM2D) else X.shape)
    assert [w.dtype for w in layer.get_weights()] == [layer.variable_dtype] * len(layer.get_weights())


def test_constant_bias_is_float_without_policy():
    layer = refimpl.GRU(3, bias_initializer={"class_name": "Constant", "config": {"value": 1}})
    layer.build(X.shape)
    assert all(w.dtype == np.float64 for w in layer.get_weights())


# get_initial_state returns zeros in the dtype asked for
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_conv_lstm_initial_states_in_the_dtype_asked(dtype):
    layer = refimpl.ConvLSTM2D(2, 3, padding="same", data_format="channels_first")
    layer.build(np.moveaxis(XC, -1, 2).shape)
    assert [s.dtype for s in layer.get_initial_state(2, dtype)] == [np.dtype(dtype)] * 2
    assert [s.dtype for s in layer.cell.get_initial_state(2, dtype)] == [np.dtype(dtype)] * 2


# ConvLSTM build rejects unknown spatial dims and inputs smaller than the kernel with ValueError
@pytest.mark.parametrize("shape", [(2, 3, None, 5, 3), (2, 3, 5, None, 3), (2, 3, 2, 5, 3), (2, 3, 5, 2, 3)])
def test_conv_lstm_build_rejects_unusable_step_shapes(shape):
    with pytest.raises(ValueError):
        refimpl.ConvLSTM2D(2, 3).build(shape)


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 5, 5, 5, 3)])
def test_conv_lstm_cell_build_rejects_the_wrong_rank(shape):
    with pytest.raises(ValueError):
        refimpl.ConvLSTMCell(2, 2, 3).build(shape)


# a built cell serializes with its build_config and comes back built
@pytest.mark.parametrize("name", list(CELLS))
def test_built_cell_round_trips_built(name):
    cell = CELLS[name]()
    x, _ = _step_and_states(name, cell, "float64")
    again = refimpl.deserialize(refimpl.serialize(cell))
    assert again.built and refimpl.serialize(again) == refimpl.serialize(cell)
    assert refimpl.serialize(cell)["build_config"] == {"input_shape": list(x.shape)}


# an unbuilt ConvLSTMCell called on a step builds itself from that step, in its data_format
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_unbuilt_conv_lstm_cell_builds_on_first_call(data_format):
    layer = refimpl.ConvLSTM2D(2, 3, padding="same", data_format=data_format, return_state=True,
                               bias_initializer="random_normal")
    x = XC if data_format == "channels_last" else np.moveaxis(XC, -1, 2)
    _, h, c = layer(x[:, :1])
    cell = refimpl.deserialize(refimpl.serialize(layer.cell) | {"build_config": None})
    assert not cell.built
    zeros = [np.zeros_like(h), np.zeros_like(c)]
    cell.call(x[:, 0], zeros)
    cell.set_weights(layer.get_weights())
    h1, (h2, c2) = cell.call(x[:, 0], zeros)
    np.testing.assert_allclose(h1, h, rtol=0, atol=REARRANGED.atol)
    np.testing.assert_allclose(c2, c, rtol=0, atol=REARRANGED.atol)


# initial_state must be a list; a stacked array (2, B, ...) or a scalar is rejected with ValueError
@pytest.mark.parametrize("bad", ["stacked", "scalar"])
def test_conv_lstm_initial_state_not_a_list(bad):
    layer = refimpl.ConvLSTM2D(2, 3, padding="same")
    zeros = np.zeros((2, 5, 5, 2))
    with pytest.raises(ValueError):
        layer(XC, initial_state=np.stack([zeros, zeros]) if bad == "stacked" else np.zeros(()))


# ConvLSTM with only some dropout masks given (the others None)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_lstm_dropout_masks_with_a_none_entry(data_format):
    layer = refimpl.ConvLSTM2D(2, 3, padding="same", data_format=data_format, dropout=0.5)
    x = XC if data_format == "channels_last" else np.moveaxis(XC, -1, 2)
    ones = np.ones((4, *x.shape[:1], *x.shape[2:]))
    got = layer(x, training=True, dropout_masks=DropoutMasks(input=ones))
    np.testing.assert_allclose(got, layer(x), rtol=0, atol=REARRANGED.atol)


# a None cotangent stands for zeros, whichever entry it is
def test_conv_lstm_vjp_none_state_cotangents_are_zeros():
    layer = refimpl.ConvLSTM2D(2, 3, padding="same", return_state=True, data_format="channels_first")
    x = np.moveaxis(XC, -1, 2)
    out, h, c = layer(x)
    d = np.random.default_rng(5).normal(size=out.shape)
    g_none = refimpl.vjp(layer, x, [d, None, None])
    g_zero = refimpl.vjp(layer, x, [d, np.zeros_like(h), np.zeros_like(c)])
    np.testing.assert_array_equal(g_none.inputs, g_zero.inputs)


# a layer's defaults are its cell's defaults (config of the default layer vs default cell)
@pytest.mark.parametrize("layer_cls, cell", [
    (lambda: refimpl.LSTM(3), lambda: refimpl.LSTMCell(3)),
    (lambda: refimpl.GRU(3), lambda: refimpl.GRUCell(3)),
    (lambda: refimpl.SimpleRNN(3), lambda: refimpl.SimpleRNNCell(3)),
    (lambda: refimpl.ConvLSTM1D(2, 3), lambda: refimpl.ConvLSTMCell(1, 2, 3)),
    (lambda: refimpl.ConvLSTM2D(2, 3), lambda: refimpl.ConvLSTMCell(2, 2, 3)),
    (lambda: refimpl.ConvLSTM3D(2, 3), lambda: refimpl.ConvLSTMCell(3, 2, 3)),
])
def test_layer_defaults_are_the_cell_defaults(layer_cls, cell):
    ours = layer_cls().get_config()
    theirs = cell().get_config()
    for key, value in theirs.items():
        if key in ours and key not in ("name", "rank"):
            assert ours[key] == value, key


# the backward pass runs in the compute dtype (spy on the cell's backward pieces)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("make", [
    lambda: refimpl.LSTM(3, dropout=0.3, recurrent_dropout=0.3, seed=2, return_sequences=True),
    lambda: refimpl.GRU(3, dropout=0.3, recurrent_dropout=0.3, seed=2, return_sequences=True),
    lambda: refimpl.SimpleRNN(3, dropout=0.3, recurrent_dropout=0.3, seed=2, return_sequences=True),
    lambda: refimpl.ConvLSTM2D(2, 3, padding="same", dropout=0.3, recurrent_dropout=0.3, seed=2,
                               return_sequences=True),
], ids=["LSTM", "GRU", "SimpleRNN", "ConvLSTM2D"])
def test_backward_pass_keeps_the_compute_dtype(make, training):
    layer = make()
    x = (XC if isinstance(layer, refimpl.ConvLSTM2D) else X).astype(np.float32)
    layer.build(x.shape)
    cell, seen = layer.cell, []
    step_vjp, piv = cell.step_vjp, cell.project_inputs_vjp

    def spy_step(saved, d_h, d_states, grads, training):
        d_x, d_prev = step_vjp(saved, d_h, d_states, grads, training)
        seen.extend([d_x.dtype, *(d.dtype for d in d_prev), *(g.dtype for g in grads[cell].as_list())])
        return d_x, d_prev

    def spy_piv(x, d_xw, grads, training):
        d_x = piv(x, d_xw, grads, training)
        seen.extend([d_x.dtype, *(g.dtype for g in grads[cell].as_list())])
        return d_x
    cell.step_vjp, cell.project_inputs_vjp = spy_step, spy_piv
    out = layer(x)
    refimpl.vjp(layer, x, np.ones_like(out), training=training)
    assert seen and set(seen) == {np.dtype(np.float32)}


@pytest.mark.parametrize("make", [lambda: refimpl.LSTM(2, return_sequences=True),
                                  lambda: refimpl.GRU(2, return_sequences=True, reset_after=False)],
                         ids=["LSTM", "GRU-reset_before"])
def test_a_batch_wider_than_a_projection_block_is_stepped_in_blocks(make):
    """The layer projects x @ kernel a block of steps at a time (refimpl/rnn.py: ~2**20 elements a
    block); with 65536 rows a block is one step, and the result is the cell stepped by hand."""
    x = np.random.default_rng(4).uniform(-1, 1, (65536, 6, 4)).astype(np.float32)  # (B, T, F), F < T
    layer = make()
    seq = layer(x)
    states = layer.cell.get_initial_state(x.shape[0], x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        out, states = layer.cell.call(x[:, t], states)
        outputs.append(out)
    np.testing.assert_allclose(np.stack(outputs, 1), seq, rtol=0, atol=REARRANGED.atol)
