"""refimpl.legacy's API, validation and weight conversions, without Keras. Its numbers are checked
against the real Keras 0.2.0 / 1.2.2 by the committed sets (tests/test_fixtures.py replays them)
and live by tests/historical."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl
from refimpl.legacy import keras0, keras1, names, port

X = np.random.default_rng(0).uniform(-1, 1, (3, 5, 4))  # (B, T, F)
ALL = [*keras0.CLASSES.values(), *keras1.CLASSES.values()]


def _random_weights(layer, seed=1):
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"keras{c.version}.{c.__name__}")
def test_config_round_trip_gives_the_same_layer(cls):
    layer = cls(output_dim=3, input_dim=4, return_sequences=True)
    weights = _random_weights(layer)
    saved = refimpl.legacy.serialize(layer)
    again = refimpl.deserialize(saved, keras_version=cls.version)
    assert type(again) is cls and again.get_config() == layer.get_config()
    again.set_weights(weights)
    np.testing.assert_array_equal(again(X), layer(X))
    assert layer.count_params() == sum(w.size for w in weights)
    assert layer.compute_output_shape((3, 5, 4)) == (3, 5, 3) == layer(X).shape


@pytest.mark.parametrize("cls", ALL, ids=lambda c: f"keras{c.version}.{c.__name__}")
def test_get_weights_is_what_set_weights_took(cls):
    layer = cls(output_dim=3, input_dim=4)
    weights = _random_weights(layer)
    for got, want in zip(layer.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layer", ["GRU", "LSTM"])
def test_per_gate_lists_land_in_todays_gate_blocks(layer):
    """fused() puts gate g's W, U and b in today's block of g (names.GATES); split() undoes it."""
    u, f, order = 2, 3, names.PER_GATE_ORDER[layer]
    shapes = {"W": (f, u), "U": (u, u), "b": (u,)}
    old = [np.full(shapes[k], 10.0 * i + "WUb".index(k)) for i, g in enumerate(order) for k in "WUb"]
    for k, w in enumerate(names.fused(layer, old, per_gate=True)):  # kernel, recurrent_kernel, bias
        for j, g in enumerate(names.GATES[layer]):
            assert np.all(w[..., j * u:(j + 1) * u] == 10 * order.index(g) + k), (k, g)
    for a, b in zip(names.split(layer, names.fused(layer, old, per_gate=True), per_gate=True), old, strict=True):
        np.testing.assert_array_equal(a, b)


def test_names_follow_the_old_lists():
    assert names.names("LSTM", True)[:6] == ["W_i", "U_i", "b_i", "W_c", "U_c", "b_c"]
    assert names.names("GRU", False) == ["W", "U", "b"]


@pytest.mark.parametrize("make, version", [
    (lambda: keras0.GRU(output_dim=3, input_dim=4, return_sequences=True), 1),
    (lambda: keras0.LSTM(output_dim=3, input_dim=4, activation="relu"), 2),
    (lambda: keras0.SimpleRNN(output_dim=3, input_dim=4, activation="tanh"), 3),
    (lambda: keras1.LSTM(3, input_dim=4, consume_less="mem", go_backwards=True, inner_activation="sigmoid"), 3),
    (lambda: keras1.GRU(3, input_dim=4, consume_less="gpu", return_sequences=True), 2),
])
def test_a_port_computes_the_same_numbers_without_a_mask(make, version):
    """Unmasked, and hard_sigmoid kept out of Keras 3: the port is exact (docs/history.md)."""
    old = make()
    _random_weights(old)
    config, weights = port(old, keras_version=version)
    new = refimpl.deserialize(config, keras_version=version)
    if not new.built:
        new.build(X.shape)
    new.set_weights(weights)
    np.testing.assert_allclose(new(X), old(X), rtol=0, atol=1e-15)


def test_keras3_hard_sigmoid_is_the_one_number_a_port_cannot_carry():
    old = keras1.GRU(3, input_dim=4)  # inner_activation hard_sigmoid: 0.2 x + 0.5 in Keras <= 2
    _random_weights(old)
    config, weights = port(old, keras_version=3)
    new = refimpl.deserialize(config, keras_version=3)
    new.build(X.shape)
    new.set_weights(weights)
    assert np.abs(new(X) - old(X)).max() > 1e-3


def test_keras0_masking_zeroes_the_state_a_masked_step_hands_on():
    """Keras 0.2: after a masked step the next step starts from zeros; the masked step's own output
    is computed, not held (Keras >= 1 holds both)."""
    layer = keras0.GRU(output_dim=3, input_dim=4, return_sequences=True)
    _random_weights(layer)
    mask = np.ones((3, 5), bool)
    mask[:, 2] = False
    x = X.copy()
    x[:, 2] = 0.0  # what Masking hands on
    y = layer(x, mask=mask)
    fresh = layer(x[:, 3:])  # steps 3, 4 from a zero state
    np.testing.assert_allclose(y[:, 3:], fresh, rtol=0, atol=1e-15)
    assert not np.allclose(y[:, 2], y[:, 1])


@pytest.mark.parametrize("make, error, match", [
    (lambda: keras0.GRU(output_dim=0), ValueError, "output_dim=0"),
    (lambda: keras0.GRU(output_dim=3, activation="gelu"), ValueError, "Keras 0.2.0's activations"),
    (lambda: keras1.LSTM(3, inner_activation="time_distributed_softmax"), ValueError, "Keras 1.2.2's"),
    (lambda: keras1.GRU(3, consume_less="fast"), ValueError, "consume_less='fast'"),
    (lambda: keras1.GRU(3, dropout_W=1.0), ValueError, "dropout_W=1.0"),
    (lambda: keras1.GRU(3, return_sequences="yes"), TypeError, "return_sequences='yes'"),
    (lambda: keras0.GRU(output_dim=3, go_backwards=True), TypeError, "go_backwards"),
    (lambda: keras0.JZS1(output_dim=3, truncate_gradient=1.5), TypeError, "truncate_gradient=1.5"),
    (lambda: keras0.SimpleDeepRNN(output_dim=3, depth=0), ValueError, "depth=0"),
    (lambda: keras0.LSTM(output_dim=3, forget_bias_init="uniform"), NotImplementedError, "forget_bias_init"),
    (lambda: keras0.GRU(output_dim=3, weights=[np.zeros(1)]), NotImplementedError, "set_weights"),
    (lambda: keras1.GRU(3, input_dtype="float32"), NotImplementedError, "input_dtype"),
    (lambda: refimpl.deserialize({"name": "MUT4", "output_dim": 3}, keras_version=0), NotImplementedError, "MUT4"),
    (lambda: refimpl.deserialize({"output_dim": 3}, keras_version=0), ValueError, "'name'"),
    (lambda: refimpl.deserialize({"name": "GRU"}, keras_version=1), ValueError, "class_name"),
])
def test_bad_arguments_fail_loudly(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_calls_and_weights_fail_loudly():
    layer = keras1.LSTM(3, input_dim=4, dropout_U=0.5)
    with pytest.raises(ValueError, match=r"inputs.shape=\(5, 4\)"):
        layer(np.zeros((5, 4)))
    with pytest.raises(NotImplementedError, match="dropout_W/dropout_U with training=True"):
        layer(X, training=True)
    with pytest.raises(ValueError, match="not stateful"):
        layer.reset_states()
    with pytest.raises(ValueError, match=r"len\(weights\)=3, expected 12 \(W_i, U_i"):
        layer.set_weights(layer.get_weights()[:3])
    bad = layer.get_weights()
    bad[4] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"U_c.shape=\(4, 3\), expected \(3, 3\)"):
        layer.set_weights(bad)
    with pytest.raises(NotImplementedError, match="backward pass of Keras 1.2.2"):
        refimpl.vjp(layer, X, np.ones((3, 3)))
    with pytest.raises(NotImplementedError, match="no later Keras"):
        port(keras0.JZS2(output_dim=3, input_dim=4))
    with pytest.raises(ValueError, match="a later Keras than 1.2.2"):
        port(keras1.GRU(3, input_dim=4), keras_version=1)
    with pytest.raises(ValueError, match="needs a built layer"):
        keras1.GRU(3).get_weights()


def test_keras1_stateful_layers_carry_their_states_until_reset():
    layer = keras1.SimpleRNN(3, batch_input_shape=(3, None, 4), stateful=True, return_sequences=True)
    _random_weights(layer)
    first = layer(X[:, :2])
    second = layer(X[:, 2:])
    layer.reset_states()
    np.testing.assert_array_equal(layer(X[:, :2]), first)
    whole = keras1.SimpleRNN(3, input_dim=4, return_sequences=True)
    whole.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole(X), rtol=0, atol=1e-15)
    assert layer.get_config()["batch_input_shape"] == [3, None, 4]


def test_default_names_follow_each_version():
    assert keras0.JZS3(output_dim=2).name == "JZS3"
    a, b = keras1.GRU(2), keras1.GRU(2)
    assert a.name.startswith("gru_") and b.name == f"gru_{int(a.name[4:]) + 1}"


# --- against what the old Keras saved (the committed sets) -------------------------------------------
def _recorded():
    from conformance.cases_legacy import legacy_cases
    from conformance.oracle.fixture import FixtureOracle, find_set

    for name, version in (("keras-0.2.0_theano-1.0.5_cpu", 0), ("keras-1.2.2_theano-1.0.5_cpu", 1)):
        cases = {c.id: c for c in legacy_cases(version)}
        for rec in FixtureOracle(find_set(name)).items:
            yield pytest.param(version, cases[rec.id], rec, id=f"{name}::{rec.id}")


RECORDED = list(_recorded())


@pytest.mark.parametrize("version, case, rec", RECORDED)
def test_configs_are_what_that_keras_saved_key_for_key(version, case, rec):
    """Read back: the same config. Built from the case's arguments alone: the same config too, so
    every default refimpl.legacy fills in is the one that Keras filled in."""
    assert refimpl.legacy.serialize(refimpl.deserialize(rec.config, keras_version=version)) == rec.config
    cls = (keras0 if version == 0 else keras1).CLASSES[case.layer_name]
    extra = {"input_dim": case.features} if version == 0 else {}  # how the oracle builds each (theano_worker.py)
    layer = cls(**case.kwargs(), **extra)
    if not layer.built:
        layer.build(case.input_shape)
    mine, theirs = refimpl.legacy.serialize(layer), rec.config
    if version == 1:  # Keras 1 numbers its layer names per process
        mine, theirs = mine["config"] | {"name": None}, theirs["config"] | {"name": None}
    assert mine == theirs
