"""StackedRNNCells: several cells run as one, each feeding its output to the next at every step.

Checked against Keras 3.15.1 ``keras/src/layers/rnn/stacked_rnn_cells.py``. States are nested: one
entry per cell, each that cell's own state list (or a bare array when the cell was given one).
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from refimpl._typing import Array, Config, Shape, States
from refimpl.base import Layer
from refimpl.serialization import serialize


class StackedRNNCells(Layer):
    def __init__(self, cells: Sequence[Any], **kwargs: Any):
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError("cells=[], expected at least one cell")
        for i, cell in enumerate(cells):
            if not callable(getattr(cell, "call", None)) or getattr(cell, "state_size", None) is None:
                raise ValueError(f"cells[{i}]={cell!r}, expected a call method and a state_size")
        self.cells = cells

    @property
    def state_size(self) -> list:
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        return _output_size(self.cells[-1])

    @property
    def step_ndim(self) -> int | None:
        """The rank of one step's input: the first cell's (None when that cell does not say)."""
        return getattr(self.cells[0], "step_ndim", None)

    def get_initial_state(self, batch_size: int, dtype: Any = "float32") -> list:
        states = []
        for cell in self.cells:
            get = getattr(cell, "get_initial_state", None)
            if isinstance(cell, Layer) and get is not None:
                states.append(get(batch_size, dtype=dtype))
            elif get is not None:
                states.append(get(batch_size=batch_size))
            elif isinstance(cell.state_size, int):
                states.append(np.zeros((batch_size, cell.state_size), dtype))  # a bare array
            else:
                states.append([np.zeros((batch_size, s), dtype) for s in cell.state_size])
        return states

    def build(self, input_shape: Shape) -> None:
        input_shape = self.build_input_shape = tuple(input_shape)
        for cell in self.cells:
            if hasattr(cell, "build") and not getattr(cell, "built", True):
                cell.build(input_shape)
            input_shape = (input_shape[0], _output_size(cell))
        self.built = True

    # --- dropout: each cell prepares its own masks, for the step shape it sees -------------------
    def prepare_dropout(self, step_shape: tuple, masks: Sequence[Any] | None) -> None:
        """``masks``: one ``DropoutMasks`` (or None) per cell, in order."""
        masks = [None] * len(self.cells) if masks is None else list(masks)
        if len(masks) != len(self.cells):
            raise ValueError(f"len(dropout_masks)={len(masks)}, expected one per cell ({len(self.cells)})")
        for cell, cell_masks in zip(self.cells, masks):
            prepare = getattr(cell, "prepare_dropout", None)
            if prepare is not None:
                prepare(step_shape, cell_masks)
            elif cell_masks is not None:
                raise ValueError(f"dropout_masks were given for cell {cell!r}, which takes none")
            step_shape = (step_shape[0], _output_size(cell))

    def reset_dropout_mask(self) -> None:
        for cell in self.cells:
            reset = getattr(cell, "reset_dropout_mask", None)
            if reset is not None:
                reset()

    def call(self, inputs: Array, states: States, training: bool = False,
             tape: list | None = None) -> tuple[Array, States]:
        """inputs (B, d) through every cell in order; returns the last output and each cell's states.
        ``tape``: gets what ``call_vjp`` needs (each cell records its own step)."""
        new_states, saved = [], []
        for cell, cell_states in zip(self.cells, states):
            is_list = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if is_list else [cell_states]
            if tape is not None:
                if not callable(getattr(cell, "call_vjp", None)):
                    raise NotImplementedError(f"cell={cell!r}: the backward pass needs refimpl cells (call_vjp)")
                record: list = []
                inputs, cell_states = cell.call(inputs, cell_states, training=training, tape=record)
                saved.append((record[0], is_list))
            elif "training" in inspect.signature(cell.call).parameters:
                inputs, cell_states = cell.call(inputs, cell_states, training=training)
            else:
                inputs, cell_states = cell.call(inputs, cell_states)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            new_states.append(cell_states[0] if len(cell_states) == 1 and not is_list else list(cell_states))
        if tape is not None:
            tape.append(saved)
        return inputs, (new_states[0] if len(new_states) == 1 else new_states)

    def call_vjp(self, saved: list, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """The backward of ``call``: the last cell first; each cell's output is the next cell's input,
        so d of cell k's output is d of cell k+1's inputs. ``d_states`` and the d states returned
        are nested as the time loop holds the states: one entry per cell."""
        d_out, d_prev = d_h, [None] * len(self.cells)
        for k in reversed(range(len(self.cells))):
            cell_saved, is_list = saved[k]
            d_cell = list(d_states[k]) if is_list else [d_states[k]]
            d_out, d_cell_prev = self.cells[k].call_vjp(cell_saved, d_out, d_cell, grads, training)
            d_prev[k] = d_cell_prev if is_list else d_cell_prev[0]
        return d_out, d_prev

    def get_weights(self) -> list[Array]:
        return [w for c in self.cells if hasattr(c, "get_weights") for w in c.get_weights()]

    def set_weights(self, weights: list[Array]) -> None:
        weights = list(weights)
        expected = len(self.get_weights())
        if len(weights) != expected:
            raise ValueError(f"{self.name}.set_weights: len(weights)={len(weights)}, expected {expected}")
        for c in self.cells:
            if hasattr(c, "get_weights"):
                n = len(c.get_weights())
                c.set_weights(weights[:n])
                weights = weights[n:]

    def get_config(self) -> Config:
        return {**self.base_config(), "cells": [serialize(c) for c in self.cells]}


def _output_size(cell: Any) -> int:
    """A cell's output size: its ``output_size``, else its first state's size (Keras's rule)."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    return cell.state_size[0] if isinstance(cell.state_size, (list, tuple)) else cell.state_size
