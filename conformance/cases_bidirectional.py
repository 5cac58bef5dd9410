"""Bidirectional cases: every merge mode over SimpleRNN, LSTM, GRU and ConvLSTM2D, with states,
masks, initial states (split half forward, half backward), stateful calls, dropout, an explicit
backward_layer, and a wrapped layer with a dtype of its own."""

from __future__ import annotations

import itertools
from typing import Iterable

from conformance.case import MERGE_MODES, Case, spec

INNER = ("SimpleRNN", "LSTM", "GRU")


def _bi(inner: tuple, merge_mode: str | None = "concat", backward: tuple | None = None, **kw) -> dict:
    wrapped = (inner,) if backward is None else (inner, backward)
    return dict(layer=spec("Bidirectional", merge_mode=merge_mode), wrapped=wrapped, **kw)


def bidirectional_cases() -> Iterable[Case]:
    for name, mode, rs, st in itertools.product(INNER, MERGE_MODES, (False, True), (False, True)):
        yield Case(**_bi(spec(name, units=3, return_sequences=rs, return_state=st), mode))
    for name, mode in itertools.product(INNER, ("concat", None)):
        for m in ("right_pad", "holes", "masked_row"):
            yield Case(**_bi(spec(name, units=3, return_sequences=True, return_state=True), mode, mask=m))
        yield Case(**_bi(spec(name, units=3, return_sequences=True, return_state=True), mode,
                         mask="first_masked", initial_state=True))
        yield Case(**_bi(spec(name, units=3, return_state=True), mode, initial_state=True))
    for name in INNER:
        for out in ({"return_state": True}, {"return_sequences": True}):
            yield Case(**_bi(spec(name, units=3, stateful=True, **out), "sum", stateful_calls=True))
        yield Case(**_bi(spec(name, units=3, dropout=0.3, recurrent_dropout=0.2, return_sequences=True),
                         "concat", training=True))
        yield Case(**_bi(spec(name, units=2, unroll=True, return_sequences=True), "ave", mask="holes"))
        for dtype in ("float32", "float16"):
            yield Case(**_bi(spec(name, units=3, return_sequences=True, return_state=True), "concat",
                             dtype=dtype, mask="left_pad"))
    # A different layer type for the backward direction (it must say go_backwards=True itself).
    yield Case(**_bi(spec("LSTM", units=3, return_sequences=True),
                     backward=spec("GRU", units=3, return_sequences=True, go_backwards=True), mask="holes"))
    yield Case(**_bi(spec("GRU", units=2, return_state=True), "sum",
                     backward=spec("GRU", units=2, return_state=True, go_backwards=True, reset_after=False),
                     initial_state=True))
    # ConvLSTM2D inside. channels_first merges by concat along the last (spatial) axis in Keras,
    # which the channels_last oracle cannot express, so its cases use the other modes.
    conv = dict(filters=2, kernel_size=3, padding="same")
    for mode, rs, st in itertools.product(MERGE_MODES, (False, True), (False, True)):
        yield Case(**_bi(spec("ConvLSTM2D", **conv, return_sequences=rs, return_state=st), mode,
                         spatial=(4, 3), steps=3, features=2))
    for mode in ("sum", "mul", None):
        yield Case(**_bi(spec("ConvLSTM2D", **conv, data_format="channels_first", return_sequences=True,
                              return_state=True), mode, spatial=(4, 3), steps=3, features=2, mask="holes"))
    yield Case(**_bi(spec("ConvLSTM2D", **conv, return_sequences=True, return_state=True), "concat",
                     spatial=(4, 3), steps=4, features=2, mask="right_pad", initial_state=True))
    # The wrapped layer keeps its own dtype policy: a float32 LSTM inside a float64 Bidirectional
    # computes in float32; Keras casts both directions' outputs to float64 before merging them,
    # and the states come back float32.
    yield Case(**_bi(spec("LSTM", units=3, dtype="float32", return_sequences=True, return_state=True), "concat"))
    yield Case(**_bi(spec("GRU", units=3, dtype="float32"), "ave", mask="right_pad"))
