"""refimpl's backward pass against its own forward pass, by finite differences (no Keras): for drawn
layers and data, the directional derivative of sum <outputs, cotangents> along a random direction
of (inputs, weights, initial states) equals <gradients, direction>. Keras's own gradients are
checked against the fixture sets (tests/test_fixtures.py) and live (tests/live)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refimpl
from conformance import strategies as rs
from conformance.tolerances import FINITE_DIFFERENCES
from refimpl.rnn import _flatten, _pack

# Activations and dtypes where central differences are meaningful: smooth at every point the draws
# reach (no kinks), float64.
SMOOTH = ("tanh", "sigmoid", "linear", "softplus", "silu", "gelu", "mish", "softsign")
SMOOTH_GATES = ("sigmoid", "tanh", "linear", "softsign")


def _loss_and_gradient_agree(layer, x, mask, initial_state, rng, training=False, dropout_masks=None):
    out = layer(x, mask=mask, initial_state=initial_state, training=training, dropout_masks=dropout_masks)
    flat = _flatten(out if isinstance(out, list) else [out])
    cotangents = [rng.standard_normal(o.shape) for o in flat]
    weights = layer.get_weights()
    reset = getattr(layer, "reset_state", None) if getattr(layer, "stateful", False) else None
    g = refimpl.vjp(layer, x, _pack(out, cotangents) if isinstance(out, list) else cotangents[0], mask=mask,
                    initial_state=initial_state, training=training, dropout_masks=dropout_masks)
    v_x = rng.standard_normal(x.shape)
    v_w = [rng.standard_normal(w.shape) for w in weights]
    v_s = None if initial_state is None else [rng.standard_normal(np.shape(s)) for s in _flatten(initial_state)]

    def loss(e: float) -> float:
        if reset:
            reset()
        layer.set_weights([w + e * v for w, v in zip(weights, v_w)])
        state = None if initial_state is None else _pack(initial_state, [s + e * v for s, v in zip(_flatten(initial_state), v_s)])
        o = layer(x + e * v_x, mask=mask, initial_state=state, training=training, dropout_masks=dropout_masks)
        return sum(float((a * c).sum()) for a, c in zip(_flatten(o if isinstance(o, list) else [o]), cotangents))

    eps = 1e-6
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    analytic = float((g.inputs * v_x).sum()) + sum(float((a * v).sum()) for a, v in zip(g.weights, v_w))
    if v_s is not None:
        analytic += sum(float((a * v).sum()) for a, v in zip(_flatten(g.initial_state), v_s))
    tol = FINITE_DIFFERENCES
    assert abs(numeric - analytic) <= tol.atol + tol.rtol * abs(numeric), (numeric, analytic)


@settings(max_examples=settings().max_examples)  # the profile's (tests/conftest.py)
@given(drawn=rs.layers_and_data(["SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D"], activations=SMOOTH,
                                        recurrent_activations=SMOOTH_GATES),
       seed=st.integers(0, 2**32 - 1))
def test_the_gradients_are_the_derivative_of_the_forward_pass(drawn, seed):
    _loss_and_gradient_agree(drawn.layer, drawn.inputs, drawn.mask, drawn.initial_state, np.random.default_rng(seed))


@given(drawn=rs.layers_and_data(["Bidirectional"], activations=SMOOTH, recurrent_activations=SMOOTH_GATES), seed=st.integers(0, 2**32 - 1))
def test_the_gradients_of_bidirectional_layers_are_the_derivative(drawn, seed):
    _loss_and_gradient_agree(drawn.layer, drawn.inputs, drawn.mask, drawn.initial_state, np.random.default_rng(seed))


@pytest.mark.parametrize("cells", [
    lambda: [refimpl.LSTMCell(3), refimpl.GRUCell(2, reset_after=False), refimpl.SimpleRNNCell(2)],
    lambda: [refimpl.GRUCell(3)],
], ids=["three cells", "one cell"])
def test_the_gradients_of_stacked_cells_are_the_derivative(cells):
    rng = np.random.default_rng(1)
    layer = refimpl.RNN(cells(), return_sequences=True, return_state=True)
    x = rng.uniform(-1, 1, (3, 5, 4))
    layer.build(x.shape)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    mask = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    _loss_and_gradient_agree(layer, x, mask, None, rng)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_the_gradients_through_per_gate_dropout_masks_are_the_derivative(name):
    rng = np.random.default_rng(2)
    layer = getattr(refimpl, name)(3, dropout=0.2, recurrent_dropout=0.3, return_sequences=True,
                                    **({"reset_after": False} if name == "GRU" else {}))
    x = rng.uniform(-1, 1, (3, 5, 4))
    gates = 4 if name == "LSTM" else 3
    masks = refimpl.DropoutMasks(rng.integers(0, 2, (gates, 3, 4)) / 0.8, rng.integers(0, 2, (gates, 3, 3)) / 0.7)
    layer.build(x.shape)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    _loss_and_gradient_agree(layer, x, None, None, rng, training=True, dropout_masks=masks)


def test_a_custom_activation_has_no_derivative_and_says_so():
    layer = refimpl.SimpleRNN(2, activation=lambda a: a * 2)
    x = np.zeros((1, 3, 2))
    layer(x)
    with pytest.raises(NotImplementedError, match="no derivative for a custom activation"):
        refimpl.vjp(layer, x, np.ones((1, 2)))


def test_vjp_needs_a_layer_not_a_cell():
    with pytest.raises(TypeError, match="wrap a cell in refimpl.RNN"):
        refimpl.vjp(refimpl.GRUCell(2), np.zeros((1, 2)), np.zeros((1, 2)))


@pytest.mark.parametrize("make, cotangents, message", [
    (lambda: refimpl.GRU(3), lambda o: np.zeros((2, 4)), r"cotangents.shape=\(2, 4\), expected \(2, 3\)"),
    (lambda: refimpl.GRU(3, return_sequences=True), lambda o: np.zeros((2, 3)),
     r"cotangents.shape=\(2, 3\), expected \(2, 5, 3\)"),
    (lambda: refimpl.LSTM(3, return_state=True), lambda o: [o[0], o[1]], "has 2 entries, expected a list of 3"),
    (lambda: refimpl.LSTM(3, return_state=True), lambda o: [o[0], o[1], np.zeros((3,))],
     r"cotangents\[2\].shape=\(3,\), expected \(2, 3\)"),
    (lambda: refimpl.RNN(refimpl.StackedRNNCells([refimpl.LSTMCell(2), refimpl.GRUCell(3)]), return_state=True),
     lambda o: [o[0], o[1], [o[1][0]]], r"cotangents\[2\]\[0\].shape=\(2, 2\), expected \(2, 3\)"),
    (lambda: refimpl.Bidirectional(refimpl.SimpleRNN(3), merge_mode=None), lambda o: o[0],
     "has an array, expected a list of 2"),
])
def test_cotangents_of_another_structure_or_shape_are_rejected(make, cotangents, message):
    layer = make()
    x = np.ones((2, 5, 4))
    out, pullback = refimpl.vjp_fn(layer, x)
    with pytest.raises(ValueError, match=message):
        pullback(cotangents(out))
