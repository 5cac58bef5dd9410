"""The case matrix: every option that changes the numbers, and the combinations that interact.

SimpleRNN, LSTM, GRU and ``RNN(cell)`` / ``StackedRNNCells`` here; ConvLSTM1D/2D/3D in
cases_convlstm.py; Bidirectional in cases_bidirectional.py. ``all_cases()`` is the whole matrix, in
a fixed order (fixture sets and reports follow it).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterable

from conformance.case import CELL_OF, DTYPES, LAYERS, MASKS, POLICIES, Case, check_unique_ids, spec
from conformance.cases_bidirectional import bidirectional_cases
from conformance.cases_convlstm import convlstm_cases

ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "linear", "relu", "relu6", "leaky_relu", "elu",
               "selu", "celu", "softplus", "softsign", "silu", "swish", "hard_silu", "hard_swish",
               "gelu", "exponential", "mish", "log_sigmoid", "tanh_shrink", "hard_tanh",
               "soft_shrink", "hard_shrink", "sparse_plus", "sparse_sigmoid", "squareplus",
               "softmax", "log_softmax", None)
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "tanh", "linear", "relu", "softsign",
                         "sparse_sigmoid", "exponential", "silu")


def _layer_cases(layer: str) -> Iterable[Case]:
    base = {"units": 3}
    # Defaults in every dtype, and odd sizes (one unit, one feature, one step, batch of one).
    for dtype in DTYPES:
        yield Case(spec(layer, **base), dtype=dtype)
        yield Case(spec(layer, units=4, return_sequences=True, return_state=True), dtype=dtype, mask="holes")
    yield Case(spec(layer, units=1, return_sequences=True), features=1)
    yield Case(spec(layer, units=8, return_state=True), batch=1, steps=1)
    yield Case(spec(layer, units=5, return_sequences=True), steps=12, features=7)
    # Sequence options.
    for rs, st, gb in itertools.product((False, True), repeat=3):
        yield Case(spec(layer, **base, return_sequences=rs, return_state=st, go_backwards=gb))
    # Activations (and recurrent activations for gated cells).
    for act in ACTIVATIONS:
        yield Case(spec(layer, **base, activation=act, return_sequences=True))
    if layer != "SimpleRNN":
        for act in RECURRENT_ACTIVATIONS:
            yield Case(spec(layer, **base, recurrent_activation=act, return_sequences=True))
    # Zero-padded steps without a mask and no bias: every preactivation of the first steps is
    # exactly 0, the kink of these activations, where the gradient is a convention (TensorFlow's).
    # leaky_relu in float32: in float64 Keras's alpha is a float32 constant (a known deviation).
    for act in ("relu", "relu6", "elu", "selu", "celu", "leaky_relu"):
        yield Case(spec(layer, **base, activation=act, use_bias=False, return_sequences=True, return_state=True),
                   dtype="float32" if act == "leaky_relu" else "float64", zero_steps=2)
    # Layer-specific switches, each with and without go_backwards.
    switches = [{"use_bias": False}]
    if layer == "LSTM":
        switches += [{"unit_forget_bias": False}, {"implementation": 1}]
    if layer == "GRU":
        switches += [{"reset_after": False}, {"reset_after": False, "use_bias": False},
                     {"implementation": 1}, {"reset_after": False, "implementation": 1},
                     # a gate activation whose derivative reads its input, on the reset-before path
                     {"reset_after": False, "recurrent_activation": "hard_sigmoid"}]
    for sw, gb in itertools.product(switches, (False, True)):
        yield Case(spec(layer, **base, **sw, go_backwards=gb, return_sequences=True, return_state=True))
    # Masks x go_backwards x zero_output_for_mask, with every output returned.
    for m, gb, zo in itertools.product(MASKS, (False, True), (False, True)):
        yield Case(spec(layer, **base, go_backwards=gb, zero_output_for_mask=zo, return_sequences=True,
                        return_state=True), mask=m)
    # Last output only, rows ending on a masked step beside rows that do not (every row ending
    # masked gives zeros whatever the weights: a case any port passes).
    for m in ("holes", "first_masked", "masked_row"):
        yield Case(spec(layer, **base, zero_output_for_mask=True), mask=m)
    # Initial states, alone and with masks that hide the first steps / whole rows.
    for m, gb in itertools.product((None, "first_masked", "masked_row", "left_pad"), (False, True)):
        yield Case(spec(layer, **base, go_backwards=gb, return_sequences=True, return_state=True),
                   mask=m, initial_state=True)
    # unroll=True must give the same numbers (Keras only builds its graph differently).
    for m, gb, zo in itertools.product((None, "holes"), (False, True), (False, True)):
        if m is None and zo:
            continue
        yield Case(spec(layer, **base, unroll=True, go_backwards=gb, zero_output_for_mask=zo,
                        return_sequences=True, return_state=True), mask=m)
    # Stateful: states carried across calls, reset_state() restores zeros.
    for gb, m in itertools.product((False, True), (None, "right_pad")):
        yield Case(spec(layer, **base, stateful=True, go_backwards=gb, return_sequences=True,
                        return_state=True), mask=m, stateful_calls=True)
    yield Case(spec(layer, **base, stateful=True, return_state=True), initial_state=True, stateful_calls=True)
    # Dropout with caller-supplied masks (training=True); identity with training=False.
    rates = [{"dropout": 0.3}, {"recurrent_dropout": 0.4}, {"dropout": 0.25, "recurrent_dropout": 0.5}]
    if layer != "SimpleRNN":
        rates += [{"dropout": 0.3, "implementation": 1},
                  {"dropout": 0.3, "implementation": 1, "recurrent_dropout": 0.0}]
    if layer == "GRU":  # reset_after=False: the candidate sees r * (its own dropped copy of h_tm1)
        rates += [{"reset_after": False, "recurrent_dropout": 0.4},
                  {"reset_after": False, "dropout": 0.25, "recurrent_dropout": 0.5}]
    for r, gb in itertools.product(rates, (False, True)):
        yield Case(spec(layer, **base, **r, go_backwards=gb, return_sequences=True, return_state=True),
                   training=True, mask="holes" if gb else None)
    yield Case(spec(layer, **base, dropout=0.5, recurrent_dropout=0.5, return_sequences=True))
    # Lower precision: the combinations that matter most, again in float32 and float16.
    for dtype in ("float32", "float16"):
        for m, gb in itertools.product(MASKS, (False, True)):
            yield Case(spec(layer, **base, go_backwards=gb, return_sequences=True, return_state=True),
                       dtype=dtype, mask=m, initial_state=m == "first_masked")
        for act in ("relu", "hard_sigmoid", "softplus", "gelu", "leaky_relu", None):
            yield Case(spec(layer, **base, activation=act, return_sequences=True), dtype=dtype)
        yield Case(spec(layer, **base, dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
                   dtype=dtype, training=True)
        yield Case(spec(layer, **base, stateful=True, return_state=True), dtype=dtype, stateful_calls=True)
        yield Case(spec(layer, **base, unroll=True, return_sequences=True), dtype=dtype, mask="holes")
        yield Case(spec(layer, units=6, return_sequences=True), dtype=dtype, steps=12, features=7)
    # softmax over units with preactivations near 10: exp overflows float16 without the max shift.
    for act in ("softmax", "log_softmax"):
        yield Case(spec(layer, units=4, activation=act, return_sequences=True), dtype="float16", batch=16,
                   features=300)


def _rnn_cases() -> Iterable[Case]:
    for layer, cell in CELL_OF.items():
        extra = {"reset_after": False} if layer == "GRU" else {}
        yield Case(spec("RNN", return_sequences=True, return_state=True), cells=(spec(cell, units=3, **extra),))
        yield Case(spec("RNN", go_backwards=True, return_state=True), cells=(spec(cell, units=2),),
                   mask="holes", initial_state=True)
        yield Case(spec("RNN", return_sequences=True), cells=(spec(cell, units=3, dropout=0.3),), training=True)
    stacks = [
        (spec("SimpleRNNCell", units=2), spec("LSTMCell", units=3)),
        (spec("GRUCell", units=3), spec("GRUCell", units=2, reset_after=False)),
        (spec("LSTMCell", units=2), spec("SimpleRNNCell", units=3), spec("GRUCell", units=2)),
        (spec("LSTMCell", units=3),),
    ]
    for cells in stacks:
        yield Case(spec("RNN", return_sequences=True, return_state=True), cells=cells, stacked=True)
        yield Case(spec("RNN", return_sequences=True, return_state=True, go_backwards=True), cells=cells,
                   stacked=True, mask="right_pad", initial_state=True)
        yield Case(spec("RNN", return_state=True, stateful=True), cells=cells, stacked=True,
                   stateful_calls=True)
    yield Case(spec("RNN", return_sequences=True),
               cells=(spec("LSTMCell", units=3, dropout=0.2, recurrent_dropout=0.3),
                      spec("GRUCell", units=2, recurrent_dropout=0.4)), stacked=True, training=True)
    yield Case(spec("RNN", return_sequences=True, return_state=True),  # each cell its own rates and masks
               cells=(spec("SimpleRNNCell", units=2, recurrent_dropout=0.3), spec("LSTMCell", units=3, dropout=0.2),
                      spec("GRUCell", units=2, reset_after=False, dropout=0.3, recurrent_dropout=0.4)),
               stacked=True, training=True, mask="holes")
    yield Case(spec("RNN", return_sequences=True, zero_output_for_mask=True, unroll=True),
               cells=(spec("SimpleRNNCell", units=2), spec("GRUCell", units=3)), stacked=True, mask="holes")


def _policy_cases() -> Iterable[Case]:
    """Dtype policies: mixed_float16 and mixed_bfloat16 compute in 16 bits with float32 variables
    (and float32 inputs, as a user feeds them); bfloat16 does both in bfloat16. TensorFlow's CPU QR
    has no bfloat16, so Keras cannot build the default Orthogonal recurrent initializer there: the
    bfloat16 cases use glorot_uniform (the weights are set afterwards either way)."""
    for layer, policy in itertools.product(LAYERS, POLICIES):
        extra = {"recurrent_initializer": "glorot_uniform"} if policy == "bfloat16" else {}
        yield Case(spec(layer, units=3, **extra), dtype=policy)
        yield Case(spec(layer, units=4, return_sequences=True, return_state=True, **extra), dtype=policy, mask="holes")
    yield Case(spec("Bidirectional", merge_mode="concat"), wrapped=(spec("LSTM", units=3, return_sequences=True),),
               dtype="mixed_float16", mask="right_pad")
    yield Case(spec("ConvLSTM2D", filters=2, kernel_size=3, padding="same", return_sequences=True, return_state=True),
               dtype="mixed_bfloat16", spatial=(4, 3), steps=4, features=2)


def float32_mirror(cases: list[Case]) -> list[Case]:
    """Every float64 case again in float32, unless the matrix has that twin already: deployed
    runtimes (ONNX Runtime, LiteRT, OpenVINO) compute in float32 and some lack float64 kernels, so a
    feature that existed only in float64 (reset_after=False, use_bias=False, merge modes, cells,
    ConvLSTM geometry) went unchecked there. Left out: activation='exponential', whose float32
    rounding grows with exp's slope past the float32 tolerance (refimpl's own float32 and float64
    runs differ by 2.4x it), and 'soft_shrink', which zeroes |x| <= 0.5: on the LSTM twin's own
    draws (a twin's id, so its seed, differs) every output is 0 whatever the weights
    (tests/test_matrix_strength.py)."""
    have = {c.id for c in cases}
    out = []
    for c in cases:
        twin = dataclasses.replace(c, dtype="float32")
        if c.dtype == "float64" and twin.id not in have and not any(a in c.id for a in _NOT_MIRRORED):
            out.append(twin)
    return out


_NOT_MIRRORED = ("'exponential'", "'soft_shrink'")


def mirror_ids() -> set[str]:
    """The ids of the float32 mirror's cases (the tf-keras set leaves them out: the mirror serves
    runtimes that deploy Keras 3 models; Keras 2 is checked in float32 where the matrix says so)."""
    return {c.id for c in all_cases()[len(_base_cases()):]}


def _base_cases() -> list[Case]:
    return ([c for layer in LAYERS for c in _layer_cases(layer)] + list(_rnn_cases())
            + list(convlstm_cases()) + list(bidirectional_cases()) + list(_policy_cases()))


def all_cases() -> list[Case]:
    """The matrix, in its fixed order; the float32 mirror comes last, so every earlier case keeps
    its place (and its key in the fixture files)."""
    cases = _base_cases()
    cases += float32_mirror(cases)
    check_unique_ids(c.id for c in cases)
    return cases
