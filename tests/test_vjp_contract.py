"""The contract of refimpl.vjp beyond the derivative itself (tests/test_vjp.py): what None
cotangents, other dtypes and layouts mean, what the gradients' dtypes and structures are, and that
a vjp call leaves a layer as a call does. Each test compares refimpl with itself."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl
from conformance.tolerances import REARRANGED
from refimpl.rnn import _flatten, _pack


def RNG(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _cot(out, rng, dtype=None):
    flat = _flatten(out if isinstance(out, list) else [out])
    c = [rng.standard_normal(np.shape(o)).astype(dtype or np.asarray(o).dtype) for o in flat]
    return _pack(out, c) if isinstance(out, list) else c[0]


def _eq(a, b):
    fa, fb = _flatten(a), _flatten(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        np.testing.assert_array_equal(x, y)


def _geq(g, h):
    _eq(g.inputs, h.inputs)
    _eq(g.weights, h.weights)
    assert (g.initial_state is None) == (h.initial_state is None)
    if g.initial_state is not None:
        _eq(g.initial_state, h.initial_state)


# time_major=True (Keras 2) is the batch-major layer with axes 0, 1 swapped, backward too.
@pytest.mark.parametrize("cls", [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU])
@pytest.mark.parametrize("rs", [False, True])
def test_time_major_vjp_is_the_batch_major_vjp_transposed(cls, rs):
    rng = RNG(1)
    x = rng.standard_normal((3, 5, 4))  # B != T
    bm = cls(3, return_sequences=rs, return_state=True, keras_version=2)
    tm = cls(3, return_sequences=rs, return_state=True, keras_version=2, time_major=True)
    out = bm(x)
    tm(np.swapaxes(x, 0, 1))
    tm.set_weights(bm.get_weights())
    cot = _cot(out, rng)
    cot_tm = [np.swapaxes(cot[0], 0, 1) if rs else cot[0], *cot[1:]]
    g = refimpl.vjp(bm, x, cot)
    h = refimpl.vjp(tm, np.swapaxes(x, 0, 1), cot_tm)
    np.testing.assert_allclose(np.swapaxes(h.inputs, 0, 1), g.inputs, rtol=0, atol=REARRANGED.atol)
    for a, b in zip(h.weights, g.weights):
        np.testing.assert_allclose(a, b, rtol=0, atol=REARRANGED.atol)


# vjp / vjp_fn default to inference, as a call does.
def test_vjp_defaults_to_training_false():
    rng = RNG(2)
    layer = refimpl.LSTM(3, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
    x = rng.standard_normal((2, 4, 3))
    out = layer(x)
    cot = _cot(out, rng)
    _geq(refimpl.vjp(layer, x, cot), refimpl.vjp(layer, x, cot, training=False))
    ret, pull = refimpl.vjp_fn(layer, x)
    _eq(ret, layer(x))
    _geq(pull(cot), refimpl.vjp(layer, x, cot, training=False))


# after vjp the cell holds no dropout masks (as after a call): a direct cell call on another batch works.
def test_vjp_resets_the_cells_dropout_masks():
    rng = RNG(3)
    cell = refimpl.LSTMCell(3, dropout=0.5, recurrent_dropout=0.5)
    layer = refimpl.RNN(cell, return_sequences=True)
    x = rng.standard_normal((3, 4, 2))
    out = layer(x, training=True)
    refimpl.vjp(layer, x, _cot(out, rng), training=True)
    h, _ = cell(rng.standard_normal((2, 2)), [np.zeros((2, 3)), np.zeros((2, 3))], training=True)
    assert h.shape == (2, 3)


# mixed precision: weight gradients are float32 holding compute-dtype (float16) values, as Keras's
# cast-variable gradients are.
@pytest.mark.parametrize("cls", [refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU])
def test_mixed_policy_weight_gradients_are_compute_dtype_values(cls):
    rng = RNG(4)
    layer = cls(3, return_sequences=True, dtype="mixed_float16")
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    out = layer(x)
    g = refimpl.vjp(layer, x, _cot(out, rng))
    for w in g.weights:
        assert w.dtype == np.float32
        np.testing.assert_array_equal(w.astype(np.float16).astype(np.float32), w)


# g.initial_state has the nesting of the initial_state given; a bare array works.
def test_initial_state_gradient_mirrors_the_given_structure():
    rng = RNG(5)
    x = rng.standard_normal((3, 4, 2))
    lstm = refimpl.LSTM(3, return_state=True)
    s = [rng.standard_normal((3, 3)), rng.standard_normal((3, 3))]
    out = lstm(x, initial_state=s)
    g = refimpl.vjp(lstm, x, _cot(out, rng), initial_state=s)
    assert isinstance(g.initial_state, list) and len(g.initial_state) == 2
    assert all(np.shape(d) == (3, 3) for d in g.initial_state)
    gru = refimpl.GRU(3)
    h0 = rng.standard_normal((3, 3))
    out = gru(x, initial_state=h0)
    cot = _cot(out, rng)
    g1 = refimpl.vjp(gru, x, cot, initial_state=h0)
    g2 = refimpl.vjp(gru, x, cot, initial_state=[h0])
    _geq(g1, g2)


# Keras 2 stateful layer with non-zero stored states ignores a passed initial_state: its gradient is zeros.
def test_ignored_initial_state_has_zero_gradient():
    rng = RNG(6)
    layer = refimpl.LSTM(3, stateful=True, return_state=True, keras_version=2)
    x = rng.standard_normal((2, 4, 3))
    layer(x)
    s = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    stored = [np.copy(a) for a in layer.states]
    out = layer(x, initial_state=s)
    layer.states = stored
    g = refimpl.vjp(layer, x, _cot(out, rng), initial_state=s)
    assert len(g.initial_state) == 2
    for d, a in zip(g.initial_state, s):
        assert d.shape == a.shape and d.dtype == a.dtype
        np.testing.assert_array_equal(d, 0)


# gradients come in the dtype of what they differentiate (float), compute dtype for integer ones.
def test_gradient_dtypes():
    rng = RNG(7)
    layer = refimpl.GRU(3, return_state=True)
    x = rng.standard_normal((2, 4, 3))
    h0 = rng.standard_normal((2, 3)).astype(np.float32)
    out = layer(x, initial_state=[h0])
    g = refimpl.vjp(layer, x, _cot(out, rng), initial_state=[h0])
    assert g.inputs.dtype == np.float64 and g.initial_state[0].dtype == np.float32
    xi = rng.integers(-3, 3, (2, 4, 3))
    hi = rng.integers(-3, 3, (2, 3))
    out = layer(xi, initial_state=[hi])
    g = refimpl.vjp(layer, xi, _cot(out, rng), initial_state=[hi])
    assert g.inputs.dtype == np.float32 and g.initial_state[0].dtype == np.float32


# a None cotangent is zeros.
@pytest.mark.parametrize("rs", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_none_cotangents_are_zeros_rnn(rs, masked):
    rng = RNG(8)
    layer = refimpl.LSTM(3, return_sequences=rs, return_state=True)
    x = rng.standard_normal((2, 4, 5))
    mask = np.array([[1, 1, 0, 1], [1, 0, 1, 1]], bool) if masked else None
    out = layer(x, mask=mask)
    cot = _cot(out, rng)
    for k in range(3):
        with_none = [None if i == k else c for i, c in enumerate(cot)]
        zeros = [np.zeros_like(c) if i == k else c for i, c in enumerate(cot)]
        _geq(refimpl.vjp(layer, x, with_none, mask=mask), refimpl.vjp(layer, x, zeros, mask=mask))
    simple = refimpl.GRU(3, return_sequences=rs)
    out = simple(x, mask=mask)
    _geq(refimpl.vjp(simple, x, None, mask=mask), refimpl.vjp(simple, x, np.zeros_like(out), mask=mask))


@pytest.mark.parametrize("masked", [False, True])
def test_none_cotangents_are_zeros_stacked(masked):
    rng = RNG(9)
    cells = [refimpl.SimpleRNNCell(2), refimpl.LSTMCell(3)]
    layer = refimpl.RNN(refimpl.StackedRNNCells(cells), return_sequences=True, return_state=True)
    x = rng.standard_normal((3, 4, 5))
    mask = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [1, 1, 1, 0]], bool) if masked else None
    out = layer(x, mask=mask)
    cot = _cot(out, rng)
    for k in (1, 2):
        with_none = [None if i == k else c for i, c in enumerate(cot)]
        zeros = [_pack(c, [np.zeros_like(a) for a in _flatten(c)]) if i == k else c for i, c in enumerate(cot)]
        _geq(refimpl.vjp(layer, x, with_none, mask=mask), refimpl.vjp(layer, x, zeros, mask=mask))


def test_none_cotangents_are_zeros_bidirectional():
    rng = RNG(10)
    layer = refimpl.Bidirectional(refimpl.GRU(3, return_sequences=True), merge_mode=None)
    x = rng.standard_normal((2, 4, 5))
    out = layer(x)
    cot = _cot(out, rng)
    for k in (0, 1):
        with_none = [None if i == k else c for i, c in enumerate(cot)]
        zeros = [np.zeros_like(c) if i == k else c for i, c in enumerate(cot)]
        _geq(refimpl.vjp(layer, x, with_none), refimpl.vjp(layer, x, zeros))


# cotangents are taken in the output's dtype: a wider cotangent gives the gradients of its cast.
def test_cotangents_are_cast_to_the_output_dtype_rnn():
    rng = RNG(11)
    layer = refimpl.LSTM(3, return_sequences=True, return_state=True, dtype="float16")
    x = rng.standard_normal((2, 4, 5)).astype(np.float16)
    out = layer(x)
    cot64 = [rng.standard_normal(o.shape) for o in out]
    cot16 = [c.astype(np.float16) for c in cot64]
    _geq(refimpl.vjp(layer, x, cot64), refimpl.vjp(layer, x, cot16))


@pytest.mark.parametrize("mode", ["concat", "sum", "ave", "mul"])
def test_cotangents_are_cast_to_the_output_dtype_bidirectional(mode):
    rng = RNG(12)
    layer = refimpl.Bidirectional(refimpl.LSTM(3, return_sequences=True, dtype="float64"), merge_mode=mode,
                                  dtype="float32")
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    cot64 = rng.standard_normal(out.shape)
    _geq(refimpl.vjp(layer, x, cot64), refimpl.vjp(layer, x, cot64.astype(np.float32)))


@pytest.mark.parametrize("mode", ["concat", "sum", "ave", "mul", None])
def test_integer_cotangents_are_their_float_values_bidirectional(mode):
    rng = RNG(13)
    layer = refimpl.Bidirectional(refimpl.SimpleRNN(3, return_sequences=True), merge_mode=mode)
    x = rng.standard_normal((2, 4, 5))
    out = layer(x)
    cot = _cot(out, rng)
    cot_i = _pack(cot, [np.round(3 * c).astype(np.int64) for c in _flatten(cot)])
    cot_f = _pack(cot, [c.astype(np.float64) for c in _flatten(cot_i)])
    _geq(refimpl.vjp(layer, x, cot_i), refimpl.vjp(layer, x, cot_f))


# a no-policy Bidirectional equals the same with the input dtype's policy, forward and vjp (bit for bit).
@pytest.mark.parametrize("dt", ["float64", "float16"])
@pytest.mark.parametrize("mode", ["concat", "mul"])
def test_bidirectional_no_policy_is_the_input_dtype_policy(dt, mode):
    rng = RNG(14)
    x = rng.standard_normal((2, 4, 5)).astype(dt)
    a = refimpl.Bidirectional(refimpl.LSTM(3, return_sequences=True), merge_mode=mode)
    b = refimpl.Bidirectional(refimpl.LSTM(3, return_sequences=True, dtype=dt), merge_mode=mode, dtype=dt)
    a(x)
    b(x)
    b.set_weights(a.get_weights())
    ra, pa = refimpl.vjp_fn(a, x)
    rb, pb = refimpl.vjp_fn(b, x)
    _eq(ra, rb)
    _eq(ra, a(x))
    cot = _cot(ra, rng)
    ga, gb = pa(cot), pb(cot)
    _eq(ga.inputs, gb.inputs)
    for wa, wb in zip(ga.weights, gb.weights):
        np.testing.assert_array_equal(wa.astype(wb.dtype), wb)


# vjp on a fresh Bidirectional builds it, as a call does.
def test_vjp_builds_an_unbuilt_bidirectional():
    rng = RNG(15)
    x = rng.standard_normal((2, 4, 5))
    a = refimpl.Bidirectional(refimpl.GRU(3, return_sequences=True))
    b = refimpl.Bidirectional(refimpl.GRU(3, return_sequences=True))
    ret, pull = refimpl.vjp_fn(a, x)
    out = b(x)
    assert a.built and a.build_input_shape == b.build_input_shape
    b.set_weights(a.get_weights())
    _eq(ret, b(x))
    cot = _cot(out, rng)
    _geq(pull(cot), refimpl.vjp(b, x, cot))


# The backward loop frees each step's tape entry once used, so a pullback runs once and says so.
def test_a_pullback_called_twice_says_it_runs_once():
    x = RNG(16).standard_normal((2, 4, 5))
    layer = refimpl.LSTM(3, return_sequences=True)
    out, pull = refimpl.vjp_fn(layer, x)
    first = pull(np.ones_like(out))
    _geq(first, refimpl.vjp(layer, x, np.ones_like(out)))
    with pytest.raises(RuntimeError, match="already called; it runs once"):
        pull(np.ones_like(out))
