"""ConvLSTM1D/2D/3D cases: every padding x stride x dilation x rank Keras accepts, both data
formats, and the LSTM options (sequences, states, masks, stateful, dropout) on convolutions.

TensorFlow's CPU kernels reject channels_first convolutions, so channels_first cases run the
Keras oracle in channels_last on transposed inputs and transpose its outputs back (ConvLSTM's
weights have the same layout in both formats); see conformance/oracle/live.py.
"""

from __future__ import annotations

import itertools
from typing import Iterable

from conformance.case import MASKS, Case, spec

SPATIAL = {1: (7,), 2: (6, 5), 3: (5, 4, 4)}
KERNEL = {1: 3, 2: 3, 3: 2}


def _conv(rank: int, **kwargs) -> tuple:
    return spec(f"ConvLSTM{rank}D", **{"filters": 2, "kernel_size": KERNEL[rank], **kwargs})


def convlstm_cases() -> Iterable[Case]:
    for rank in (1, 2, 3):
        sp = SPATIAL[rank]
        # Geometry: padding x (strides, dilation) x data_format, with sequences and states out.
        for padding, (s, d), fmt in itertools.product(("valid", "same"), ((1, 1), (2, 1), (1, 2)),
                                                      ("channels_last", "channels_first")):
            yield Case(_conv(rank, padding=padding, strides=s, dilation_rate=d, data_format=fmt,
                             return_sequences=True, return_state=True), spatial=sp, steps=4, features=3)
        # A 1-wide kernel with a larger stride: "same" needs no padding, and on some axes the
        # formula's total goes negative (6 wide, stride 3: -2), which must clamp to zero.
        for padding, s in itertools.product(("valid", "same"), (2, 3)):
            yield Case(_conv(rank, kernel_size=1, padding=padding, strides=s, return_sequences=True),
                       spatial=(6, 6, 5)[:rank], steps=3, features=2)
        # Per-axis kernel sizes, strides and dilations.
        if rank > 1:
            yield Case(_conv(rank, kernel_size=(3, 1, 2)[:rank], strides=(2, 1, 1)[:rank], padding="same",
                             return_sequences=True), spatial=sp, steps=3, features=2)
            yield Case(_conv(rank, kernel_size=(2, 2, 1)[:rank], dilation_rate=(1, 2, 1)[:rank],
                             return_state=True), spatial=sp, steps=3, features=2)
        # Sequence options.
        for rs, st, gb in itertools.product((False, True), repeat=3):
            yield Case(_conv(rank, padding="same", return_sequences=rs, return_state=st, go_backwards=gb),
                       spatial=sp, steps=4, features=2)
        # Dropout with supplied masks (ConvLSTM always uses one mask per gate), and switches.
        yield Case(_conv(rank, dropout=0.3, recurrent_dropout=0.4, padding="same", return_sequences=True,
                         return_state=True), spatial=sp, steps=4, features=2, training=True)
        yield Case(_conv(rank, dropout=0.5, return_sequences=True), spatial=sp, steps=3, features=2)  # inference
        for sw in ({"use_bias": False}, {"unit_forget_bias": False}, {"activation": "relu"},
                   {"recurrent_activation": "hard_sigmoid"}, {"activation": None},
                   {"activation": "softmax"}, {"activation": "log_softmax"}):  # over the filters axis
            yield Case(_conv(rank, **sw, return_sequences=True), spatial=sp, steps=4, features=2)
        # Lower precision.
        for dtype in ("float32", "float16"):
            yield Case(_conv(rank, padding="same", return_sequences=True, return_state=True),
                       dtype=dtype, spatial=sp, steps=4, features=3)
    # Masks, initial states and stateful calls, in 2D.
    for m, gb, zo in itertools.product(MASKS[1:], (False, True), (False, True)):
        yield Case(_conv(2, padding="same", go_backwards=gb, zero_output_for_mask=zo, return_sequences=True,
                         return_state=True), spatial=(4, 3), steps=5, features=2, mask=m)
    for m, fmt in itertools.product((None, "first_masked", "masked_row"), ("channels_last", "channels_first")):
        yield Case(_conv(2, data_format=fmt, return_sequences=True, return_state=True), spatial=(4, 3),
                   steps=4, features=2, mask=m, initial_state=True)
    for fmt, gb in itertools.product(("channels_last", "channels_first"), (False, True)):
        yield Case(_conv(2, data_format=fmt, stateful=True, go_backwards=gb, return_state=True), spatial=(4, 3),
                   steps=4, features=2, stateful_calls=True)
    yield Case(_conv(2, data_format="channels_first", dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
               spatial=(4, 3), steps=4, features=2, training=True)
