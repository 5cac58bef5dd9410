"""Dropout contract (identity at inference, caller masks make training deterministic) and
initializers (distributions, seeding, unit_forget_bias). Values against Keras are in tests/live."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import refimpl
from conformance.tolerances import REARRANGED
from refimpl import activations, initializers

X = np.random.default_rng(1).uniform(-1, 1, (3, 6, 4))


@pytest.mark.parametrize("cls", [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU], ids=lambda c: c.__name__)
def test_dropout_is_the_identity_when_not_training(cls):
    plain = cls(3, return_sequences=True)
    plain.build(X.shape)
    dropped = cls(3, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    dropped.build(X.shape)
    dropped.set_weights(plain.get_weights())
    np.testing.assert_array_equal(dropped(X, training=False), plain(X))


@pytest.mark.parametrize("cls", [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU], ids=lambda c: c.__name__)
def test_supplied_dropout_masks_make_training_deterministic(cls):
    layer = cls(3, dropout=0.5, recurrent_dropout=0.25, return_sequences=True)
    count = getattr(layer.cell, "dropout_mask_count", None)
    lead = () if count is None else (count,)
    rng = np.random.default_rng(7)
    masks = refimpl.DropoutMasks(input=(rng.random(lead + (3, 4)) > 0.5) * 2.0,
                                 recurrent=(rng.random(lead + (3, 3)) > 0.25) / 0.75)
    a = layer(X, training=True, dropout_masks=masks)
    b = layer(X, training=True, dropout_masks=masks)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, layer(X, training=False))


def test_all_ones_masks_equal_no_dropout():
    layer = refimpl.GRU(3, dropout=0.3, return_sequences=True)
    ones = refimpl.DropoutMasks(input=np.ones((3, 4)))
    np.testing.assert_array_equal(layer(X, training=True, dropout_masks=ones), layer(X))


def test_masks_drawn_from_a_seed_are_reproducible_and_reused_across_steps():
    a = refimpl.LSTM(3, dropout=0.4, seed=11, return_sequences=True)
    a.build(X.shape)
    b = refimpl.LSTM(3, dropout=0.4, seed=11, return_sequences=True)
    b.build(X.shape)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a(X, training=True), b(X, training=True))
    # Drawn masks hold only 0 and 1 / (1 - rate), as Keras's dropout of ones.
    a.cell.prepare_dropout((3, 4), None)
    mask = a.cell._dropout_mask
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}


def test_per_gate_masks_are_used_with_recurrent_dropout_as_keras_implementation_1():
    assert refimpl.LSTMCell(2, recurrent_dropout=0.1).dropout_mask_count == 4
    assert refimpl.GRUCell(2, recurrent_dropout=0.1).dropout_mask_count == 3
    assert refimpl.GRUCell(2, dropout=0.1).dropout_mask_count is None
    assert refimpl.GRUCell(2, dropout=0.1, implementation=1).dropout_mask_count == 3


@pytest.mark.parametrize("name, shape, bound", [
    ("glorot_uniform", (30, 50), np.sqrt(6 / 80)),
    ("he_uniform", (30, 50), np.sqrt(6 / 30)),
    ("lecun_uniform", (30, 50), np.sqrt(3 / 30)),
    ("random_uniform", (30, 50), 0.05),
])
def test_uniform_initializers_stay_within_their_limits(name, shape, bound):
    w = initializers.get(name)(shape, np.float64)
    assert w.shape == shape and np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


@pytest.mark.parametrize("name, stddev", [("glorot_normal", np.sqrt(2 / 80)), ("he_normal", np.sqrt(2 / 30)),
                                          ("truncated_normal", 0.05)])
def test_truncated_normal_initializers_cut_at_two_standard_deviations(name, stddev):
    w = initializers.get(name)((30, 50), np.float64)
    # variance scaling divides by 0.8796 so the truncated distribution keeps the target stddev
    limit = 2 * (stddev / 0.87962566103423978 if name != "truncated_normal" else stddev)
    assert np.abs(w).max() <= limit * (1 + 1e-12)


def test_orthogonal_initializer_is_orthogonal_and_scaled_by_gain():
    w = initializers.get({"class_name": "Orthogonal", "config": {"gain": 2.0, "seed": 3}})((4, 12), np.float64)
    np.testing.assert_allclose(w @ w.T, 4.0 * np.eye(4), atol=1e-12)


def test_seeded_initializers_are_reproducible():
    init = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1.0, "seed": 5}}
    np.testing.assert_array_equal(initializers.get(init)((3, 3), np.float64),
                                  initializers.get(init)((3, 3), np.float64))


@pytest.mark.parametrize("bias_initializer", ["zeros", "random_normal", {"class_name": "Constant", "config": {"value": 0.3}}])
def test_unit_forget_bias_sets_the_forget_slice_to_exactly_one(bias_initializer):
    layer = refimpl.LSTM(5, bias_initializer=bias_initializer)
    layer.build((None, 2, 3))
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias[5:10], 1.0)
    assert not np.any(bias[:5] == 1.0) and not np.any(bias[10:] == 1.0)


def test_unknown_initializer_names_are_rejected():
    with pytest.raises(ValueError, match="initializer='glorot_uniformm'"):
        refimpl.GRU(2, kernel_initializer="glorot_uniformm")


def test_hard_sigmoid_switches_definition_with_keras_version():
    x = np.array([-3.0, -2.5, 0.0, 2.5, 3.0])
    k3, k2 = activations.get("hard_sigmoid"), activations.get("hard_sigmoid", keras_version=2)
    # Keras 3 saturates at |x| = 3 (slope 1/6), Keras 2 at |x| = 2.5 (slope 0.2).
    assert k3(x)[[0, 2, 4]].tolist() == [0.0, 0.5, 1.0] and 0 < k3(x)[1] < k3(x)[3] < 1
    assert k2(x)[[1, 2, 3]].tolist() == [0.0, 0.5, 1.0]
    layer = refimpl.LSTM(2, recurrent_activation="hard_sigmoid", keras_version=2)
    assert layer.get_config()["recurrent_activation"] == "hard_sigmoid"


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS) + sorted(activations.ALIASES))
@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("keras_version", [3, 2])
def test_every_activation_and_its_derivative_keep_the_dtype_and_shape(name, dtype, keras_version):
    x = np.linspace(-4, 4, 12, dtype=dtype).reshape(3, 4)
    fn = activations.get(name, keras_version=keras_version)
    y = fn(x)
    assert y.dtype == np.dtype(dtype) and y.shape == x.shape and np.all(np.isfinite(y))
    d = activations.vjp(fn)(x, y, np.ones_like(y))
    assert d.dtype == np.dtype(dtype) and d.shape == x.shape and np.all(np.isfinite(d))


@pytest.mark.parametrize("activation", [np.tanh, lambda a: a * 2, functools.partial(np.clip, a_min=-1, a_max=1)],
                         ids=["ufunc", "lambda", "partial"])
def test_a_custom_activation_survives_serialize_and_deserialize(activation):
    layer = refimpl.GRU(2, activation=activation, return_sequences=True)
    twin = refimpl.deserialize(refimpl.serialize(layer))
    assert twin.cell.activation is activation
    twin.build(X.shape)
    twin.set_weights(layer.get_weights() if layer.built else twin.get_weights())
    layer.build(X.shape)
    layer.set_weights(twin.get_weights())
    np.testing.assert_array_equal(twin(X), layer(X))


@pytest.mark.parametrize("make", [
    lambda seed: refimpl.SimpleRNNCell(3, dropout=0.3, recurrent_dropout=0.4, seed=seed),
    lambda seed: refimpl.LSTMCell(3, dropout=0.3, recurrent_dropout=0.4, seed=seed),
    lambda seed: refimpl.GRUCell(3, dropout=0.3, seed=seed),
    lambda seed: refimpl.GRUCell(3, reset_after=False, dropout=0.3, recurrent_dropout=0.4, seed=seed),
], ids=["SimpleRNNCell", "LSTMCell", "GRUCell-dropout", "GRUCell-reset_before"])
def test_a_cell_stepped_by_hand_in_training_draws_the_masks_the_layer_draws(make):
    """A cell called step by step in training draws its masks on the first step and keeps them
    until reset_dropout_mask(), as Keras's DropoutRNNCell does: the same seed gives what RNN(cell)
    gives, and the masks really drop (the output differs from inference)."""
    layer = refimpl.RNN(make(7), return_sequences=True)
    layer.build(X.shape)
    cell = make(7)
    cell.build(X[:, 0].shape)
    cell.set_weights(layer.get_weights())
    want = layer(X, training=True)
    states = cell.get_initial_state(X.shape[0], X.dtype)
    outputs = []
    for t in range(X.shape[1]):
        out, states = cell.call(X[:, t], states, training=True)
        outputs.append(out)
    np.testing.assert_allclose(np.stack(outputs, 1), want, rtol=0, atol=REARRANGED.atol)
    assert not np.allclose(want, layer(X))
    cell.reset_dropout_mask()
    first, _ = cell.call(X[:, 0], cell.get_initial_state(X.shape[0], X.dtype), training=True)
    assert not np.allclose(first, outputs[0])  # a new sequence, new masks
