"""Bidirectional on refimpl alone: argument checks, the merge identity, states, weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refimpl

X = np.random.default_rng(3).uniform(-1, 1, (3, 5, 4))


def test_a_layer_that_already_goes_backwards_is_rejected():
    with pytest.raises(ValueError, match="different go_backwards"):
        refimpl.Bidirectional(refimpl.LSTM(2, go_backwards=True))


def test_forward_and_backward_layers_must_agree_on_their_outputs():
    with pytest.raises(ValueError, match="must agree on return_sequences"):
        refimpl.Bidirectional(refimpl.GRU(2), backward_layer=refimpl.GRU(2, go_backwards=True, return_sequences=True))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"merge_mode": "max"}, ValueError, r"merge_mode='max', expected one of"),
    ({"weights": [np.zeros(2)]}, NotImplementedError, "weights="),
])
def test_bad_arguments_are_rejected_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        refimpl.Bidirectional(refimpl.SimpleRNN(2), **kwargs)


def test_only_recurrent_layers_can_be_wrapped():
    with pytest.raises(ValueError, match="expected a refimpl recurrent layer"):
        refimpl.Bidirectional(refimpl.LSTMCell(2))


def test_reset_state_needs_a_stateful_layer():
    with pytest.raises(AttributeError, match="not stateful"):
        refimpl.Bidirectional(refimpl.GRU(2)).reset_state()


@given(st.sampled_from(["SimpleRNN", "LSTM", "GRU"]), st.sampled_from(["concat", "sum", "ave", "mul", None]),
       st.booleans(), st.booleans())
def test_output_merges_the_forward_run_with_the_time_reversed_backward_run(name, mode, seqs, states):
    layer = refimpl.Bidirectional(getattr(refimpl, name)(3, return_sequences=seqs, return_state=states), mode)
    layer.build(X.shape)
    rng = np.random.default_rng(0)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])
    out = layer(X)
    fwd, bwd = layer.forward_layer(X), layer.backward_layer(X)
    if states:
        fwd_states, bwd_states = fwd[1:], bwd[1:]
        fwd, bwd = fwd[0], bwd[0]
    bwd = bwd[:, ::-1] if seqs else bwd
    expected = {"concat": lambda: np.concatenate([fwd, bwd], -1), "sum": lambda: fwd + bwd,
                "ave": lambda: (fwd + bwd) / 2, "mul": lambda: fwd * bwd, None: lambda: [fwd, bwd]}[mode]()
    expected = expected if isinstance(expected, list) else [expected]
    if states:
        expected += list(fwd_states) + list(bwd_states)
    got = out if isinstance(out, list) else [out]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_weights_are_the_forward_layers_then_the_backward_layers_and_count_twice():
    inner = refimpl.GRU(3)
    inner.build(X.shape)
    layer = refimpl.Bidirectional(inner)
    layer.build(X.shape)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in inner.get_weights()] * 2
    assert layer.count_params() == 2 * inner.count_params()
    assert (layer.forward_layer.name, layer.backward_layer.name) == (f"forward_{inner.name}", f"backward_{inner.name}")


def test_initial_state_is_split_half_forward_half_backward():
    layer = refimpl.Bidirectional(refimpl.LSTM(2, return_state=True), merge_mode=None)
    rng = np.random.default_rng(1)
    init = [rng.uniform(-1, 1, (3, 2)) for _ in range(4)]
    y, y_rev, *states = layer(X, initial_state=init)
    np.testing.assert_array_equal(layer.forward_layer(X, initial_state=init[:2])[0], y)
    np.testing.assert_array_equal(layer.backward_layer(X, initial_state=init[2:])[0], y_rev)
    assert len(states) == 4


def test_masked_steps_merge_as_zeros_when_returning_sequences():
    layer = refimpl.Bidirectional(refimpl.SimpleRNN(2, return_sequences=True), merge_mode="sum")
    mask = np.ones(X.shape[:2], bool)
    mask[:, 2] = False
    np.testing.assert_array_equal(layer(X, mask=mask)[:, 2], 0.0)  # zero_output_for_mask is forced


def test_stateful_bidirectional_carries_both_directions_and_resets():
    layer = refimpl.Bidirectional(refimpl.LSTM(2, stateful=True), merge_mode="concat")
    first = layer(X)
    assert not np.allclose(layer(X), first)
    layer.reset_state()
    np.testing.assert_array_equal(layer(X), first)
    assert len(layer.states) == 4


def test_config_round_trips_with_both_layers():
    layer = refimpl.Bidirectional(refimpl.LSTM(2), backward_layer=refimpl.GRU(2, go_backwards=True), merge_mode="ave")
    twin = refimpl.deserialize(refimpl.serialize(layer))
    assert type(twin.backward_layer) is refimpl.GRU and twin.merge_mode == "ave"
    assert twin.get_config()["layer"]["config"] == layer.get_config()["layer"]["config"]


# --- the wrapper's own API (these close gaps the mutation run found: docs/mutation.md) ---------------
@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("mode", ["concat", "sum", "ave", "mul", None])
@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("states", [False, True])
def test_outputs_have_the_shapes_compute_output_shape_promises(name, mode, sequences, states):
    layer = refimpl.Bidirectional(getattr(refimpl, name)(3, return_sequences=sequences, return_state=states), mode)
    out = layer(X)
    expected = layer.compute_output_shape(X.shape)
    got = [o.shape for o in out] if isinstance(out, list) else out.shape
    assert got == (list(expected) if isinstance(out, list) else expected)


def test_a_call_builds_the_layer_once_and_the_build_is_serialized():
    layer = refimpl.Bidirectional(refimpl.GRU(2))
    layer(X)
    assert layer.built and len(layer.get_weights()) == 6
    twin = refimpl.deserialize(refimpl.serialize(layer))
    assert twin.built and [w.shape for w in twin.get_weights()] == [w.shape for w in layer.get_weights()]
    layer(X[:, :3])  # a later call with fewer steps does not rebuild
    assert refimpl.serialize(layer)["build_config"]["input_shape"] == list(X.shape)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_initial_states_come_in_the_dtype_asked_for(dtype):
    layer = refimpl.Bidirectional(refimpl.LSTM(2))
    layer.build(X.shape)
    assert [s.dtype for s in layer.get_initial_state(3, dtype)] == [np.dtype(dtype)] * 4


def test_a_call_without_training_is_an_inference_call():
    layer = refimpl.Bidirectional(refimpl.LSTM(2, dropout=0.5, recurrent_dropout=0.5))
    np.testing.assert_array_equal(layer(X), layer(X, training=False))


def test_keras_3_merges_in_the_wrappers_compute_dtype_and_keeps_the_states_in_the_wrapped_layers():
    """No policy on the wrapper: it computes in the input's dtype (float64 here); the wrapped
    layer's own float32 policy decides its states' dtype, outputs and gradients alike."""
    layer = refimpl.Bidirectional(refimpl.LSTM(2, dtype="float32", return_sequences=True, return_state=True))
    out, *states = layer(X)
    assert out.dtype == np.float64 and [s.dtype for s in states] == [np.dtype("float32")] * 4
    grads = refimpl.vjp(layer, X, [np.ones_like(out)] + [np.ones_like(s) for s in states])
    assert grads.inputs.dtype == np.float64


@pytest.mark.parametrize("bad", ["one array", "a number"])
def test_initial_state_must_be_a_list_of_states(bad):
    layer = refimpl.Bidirectional(refimpl.LSTM(2))
    given = np.zeros((4, 3, 2)) if bad == "one array" else 0.5
    with pytest.raises(ValueError, match="initial_state"):
        layer(X, initial_state=given)
