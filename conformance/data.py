"""Deterministic inputs for one case: weights, sequences, masks, initial states, dropout masks,
and the calls a case makes with them.

Everything is drawn from ``numpy.random.default_rng(case.seed)``. Weights are uniform in
[-0.6, 0.6] and independent per element, so every gate differs and every bias is non-zero:
constant or all-ones weights make gate-order bugs invisible (swapping GRU's z and r changes
nothing when both gates see identical numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.case import MASKS, Case
from conformance.recorded import RESET, Call

Array = np.ndarray


@dataclass
class CaseData:
    weights: list[Array]
    inputs: Array  # (B, T, F)
    mask: Array | None  # (B, T) bool
    initial_state: list | None  # nested like the layer's states
    dropout_masks: list | None  # per cell: (input_mask | None, recurrent_mask | None)


def mask_pattern(name: str, batch: int, steps: int) -> Array:
    """(B, T) bool masks (True: a valid step):
    right_pad / left_pad: row i has max(1, T - 1 - i % T) valid steps, at its start / end (so every
        row of right_pad ends on a padded step);
    holes: every odd step masked, the last row all valid, row 0's last step masked;
    masked_row: the last row all masked, row 0 valid for its first two steps only;
    first_masked: step 0 masked in every row, step 1 too in row 1;
    all_true: nothing masked."""
    m = np.ones((batch, steps), bool)
    lengths = [max(1, steps - 1 - (i % steps)) for i in range(batch)]
    if name == "right_pad":
        for i, n in enumerate(lengths):
            m[i, n:] = False
    elif name == "left_pad":
        for i, n in enumerate(lengths):
            m[i, : steps - n] = False
    elif name == "holes":
        m[:, 1::2] = False
        m[-1, :] = True
        m[0, -1] = False
    elif name == "masked_row":
        m[-1, :] = False
        m[0, 2:] = False
    elif name == "first_masked":
        m[:, 0] = False
        m[1 % batch, :2] = False
    elif name != "all_true":
        raise ValueError(f"mask={name!r}, expected one of {', '.join(MASKS)}")
    return m


def make_data(case: Case, weight_shapes: list[tuple], state_shapes: list,
              dropout_layout: list[tuple[tuple, tuple, int | None, float, float]]) -> CaseData:
    """``state_shapes``: the layer's initial-state shapes, nested as its states are.
    ``dropout_layout``: per cell (step input shape, state shape, masks per gate or None, dropout,
    recurrent_dropout)."""
    rng = np.random.default_rng(case.seed)
    weights = [rng.uniform(-0.6, 0.6, s) for s in weight_shapes]
    inputs = rng.uniform(-1.0, 1.0, case.input_shape)
    inputs[:, :case.zero_steps] = 0.0  # (B, T, ...): padded steps, unmasked
    mask = mask_pattern(case.mask, case.batch, case.steps) if case.mask else None
    initial_state = _draw_nested(rng, state_shapes) if case.initial_state else None
    dropout_masks = None
    if case.training:
        dropout_masks = [(_dropout(rng, step, count, rate), _dropout(rng, state, count, rec_rate))
                         for step, state, count, rate, rec_rate in dropout_layout]
    return CaseData(weights, inputs, mask, initial_state, dropout_masks)


def _draw_nested(rng: np.random.Generator, shapes: Any) -> Any:
    if isinstance(shapes, tuple):
        return rng.uniform(-0.8, 0.8, shapes)
    return [_draw_nested(rng, s) for s in shapes]


def _dropout(rng: np.random.Generator, shape: tuple, count: int | None, rate: float) -> Array | None:
    """Keep with probability 1 - rate, scaled by 1 / (1 - rate), as Keras's dropout of ones."""
    if rate == 0:
        return None
    full = shape if count is None else (count, *shape)
    return (rng.random(full) >= rate) / (1.0 - rate)


def call_plan(case: Case, data: CaseData) -> list[Call | str]:
    """The case's calls: one ``{"inputs", "mask", "initial_state"}``, or for stateful cases the
    first half, the second half, ``RESET`` (reset_state()), and the first half again."""
    if not case.stateful_calls:
        return [Call(inputs=data.inputs, mask=data.mask, initial_state=data.initial_state)]
    half, m = case.steps // 2, data.mask
    first = Call(inputs=data.inputs[:, :half], mask=None if m is None else m[:, :half],
                 initial_state=data.initial_state)
    second = Call(inputs=data.inputs[:, half:], mask=None if m is None else m[:, half:], initial_state=None)
    return [first, second, RESET, first]
