"""The backward pass: the vector-Jacobian product of one layer call.

    g = refimpl.vjp(layer, inputs, cotangents, mask=..., initial_state=..., training=..., dropout_masks=...)

gives the gradient of  loss = sum_i <output_i, cotangent_i>  (the outputs as the call returns them,
``[output, *states]`` with return_state=True) with respect to the inputs (``g.inputs``), each
weight in ``get_weights()`` order (``g.weights``) and the initial states given (``g.initial_state``,
None when none was given). It is the reverse of refimpl/rnn.py's time loop, step by step, written
once for every cell: the forward loop records each step on a tape (``cell.step(..., tape)``), and
``_loop_vjp`` walks the tape backwards calling ``cell.step_vjp``, each cell's backward step beside
its forward step with its equations. The loop's own parts reverse as:

    masked step   output = where(m, h, fill): d_h = m d_output, and (1 - m) d_output flows to the
                  previous step's output when fill is it (zero_output_for_mask=False);
                  states = where(m, new, old): m d_states to the step, (1 - m) d_states straight back
    go_backwards  the gradient of the reversed inputs, reversed back
    x @ kernel    hoisted in the forward pass; its backward runs once after the loop
                  (``cell.project_inputs_vjp``), for the kernel, the input bias and d inputs

Gradients flow through the initial states given; a stateful layer's stored states (from an earlier
call) are constants, as Keras's state variables are. Checked against tf.GradientTape on Keras
3.15.1 (tests/live) and against refimpl's own forward pass by finite differences (tests/).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from refimpl._typing import Array
from refimpl.base import is_float
from refimpl.bidirectional import Bidirectional
from refimpl.cell import RNNCell, WeightGrads
from refimpl.conv_lstm import ConvLSTM
from refimpl.legacy.layer import Recurrent as LegacyRecurrent
from refimpl.rnn import RNN, _expand, _flatten, _map, _map2, _pack, _reset_dropout


class Gradients(NamedTuple):
    inputs: Array  # the shape and dtype of the inputs
    weights: list[Array]  # one per weight, in get_weights() order
    initial_state: list | None  # as the initial_state given, or None when none was


def vjp(layer: Any, inputs: Any, cotangents: Any, *, mask: Any = None, initial_state: Any = None,
        training: bool = False, dropout_masks: Any = None) -> Gradients:
    """The gradients of sum_i <output_i, cotangents_i> for one call of ``layer`` (see the module
    docstring). ``cotangents`` has the structure the call returns; None stands for zeros. The call
    happens as ``layer(...)`` would make it (a stateful layer keeps its new states)."""
    _, pullback = vjp_fn(layer, inputs, mask=mask, initial_state=initial_state, training=training,
                         dropout_masks=dropout_masks)
    return pullback(cotangents)


def vjp_fn(layer: Any, inputs: Any, *, mask: Any = None, initial_state: Any = None, training: bool = False,
           dropout_masks: Any = None) -> tuple[Any, Callable[[Any], Gradients]]:
    """(what the call returns, its pullback), as ``jax.vjp`` gives them: the call is made once, and
    ``pullback(cotangents)`` (once) gives the Gradients for cotangents of that structure."""
    taped = _forward(layer, inputs, mask, initial_state, training, dropout_masks)
    used = False

    def pullback(cotangents: Any) -> Gradients:
        nonlocal used
        if used:  # the backward loop frees the tape as it goes
            raise RuntimeError(f"{layer.name}: this pullback was already called; it runs once (call "
                               "vjp_fn again for another cotangent)")
        used = True
        try:
            _check_structure(layer, taped.returned, cotangents)
            return taped.backward(cotangents)
        finally:
            taped.close()
    return taped.returned, pullback


def _check_structure(layer: Any, returned: Any, cotangents: Any, where: str = "cotangents") -> None:
    """Raise ValueError unless ``cotangents`` has the structure and shapes of ``returned`` (None
    anywhere stands for zeros)."""
    if cotangents is None:
        return
    if isinstance(returned, (list, tuple)):
        if not isinstance(cotangents, (list, tuple)) or len(cotangents) != len(returned):
            got = f"{len(cotangents)} entries" if isinstance(cotangents, (list, tuple)) else "an array"
            raise ValueError(f"{layer.name}: {where} has {got}, expected a list of {len(returned)} "
                             "(the structure the call returns)")
        for i, (r, c) in enumerate(zip(returned, cotangents)):
            _check_structure(layer, r, c, f"{where}[{i}]")
    elif np.shape(cotangents) != np.shape(returned):
        raise ValueError(f"{layer.name}: {where}.shape={np.shape(cotangents)}, expected {np.shape(returned)} "
                         "(the shape of what the call returned)")


def _forward(layer: Any, inputs: Any, mask: Any, initial_state: Any, training: bool, dropout_masks: Any) -> Any:
    if isinstance(layer, Bidirectional):
        return _TapedBidirectional(layer, inputs, mask, initial_state, training, dropout_masks)
    if isinstance(layer, RNN):
        return _TapedRNN(layer, inputs, mask, initial_state, training, dropout_masks)
    if isinstance(layer, LegacyRecurrent):
        raise NotImplementedError(f"layer={layer!r}: the backward pass of Keras {layer.release}'s layers is not "
                                  "modelled by refimpl (their forward pass is; docs/history.md)")
    raise TypeError(f"layer={layer!r}, expected a refimpl recurrent layer (RNN, a layer built on it, "
                    "or Bidirectional); wrap a cell in refimpl.RNN")


class _TapedRNN:
    """One forward call of an RNN layer, recorded; ``backward(cotangents)`` gives its Gradients."""

    def __init__(self, layer: RNN, inputs: Any, mask: Any, initial_state: Any, training: bool, dropout_masks: Any):
        self.layer, self.training, self.conv = layer, training, isinstance(layer, ConvLSTM)
        self.inputs, self.initial_state = np.asarray(inputs), initial_state
        if self.conv:  # the loop runs channels_last
            inputs, initial_state, dropout_masks = layer.to_loop_layout(inputs, initial_state, dropout_masks)
        self.run = layer._begin(inputs, mask, initial_state, dropout_masks)
        self.cells = _cells(layer.cell)
        self.tape: list = []
        try:
            self.output, self.states = layer._loop(self.run.x, self.run.states, self.run.mask, training, self.tape)
        except BaseException:
            self.close()
            raise
        returned = layer._end(self.output, self.states)
        self.returned = layer.outputs_layout(returned, layer.cell.to_format) if self.conv else returned

    def close(self) -> None:
        _reset_dropout(self.layer.cell)

    def backward(self, cotangents: Any) -> Gradients:
        layer, run = self.layer, self.run
        if self.conv:
            cotangents = layer.outputs_layout(cotangents, layer.cell.to_last)
        d_output, d_states = self._split(cotangents)
        grads = {cell: WeightGrads(cell, run.x.dtype) for cell in self.cells}
        d_steps, d_initial = _loop_vjp(layer, self.tape, d_output, d_states, run.mask, grads, self.training)
        if isinstance(layer.cell, RNNCell):  # the hoisted x @ kernel, all steps at once
            d_x = layer.cell.project_inputs_vjp(run.x, d_steps, grads, self.training)
        else:
            d_x = np.swapaxes(d_steps, 0, 1)  # (B, T, ...)
        if layer.go_backwards:
            d_x = d_x[:, ::-1]
        if layer.time_major:
            d_x = np.swapaxes(d_x, 0, 1)
        if self.conv:
            d_x = layer.cell.to_format(d_x, 2)
            d_initial = [layer.cell.to_format(d) for d in d_initial]
        weights = [w.astype(layer.variable_dtype) for cell in self.cells for w in grads[cell].as_list()]
        initial = None
        if self.initial_state is not None:
            given = self.initial_state if isinstance(self.initial_state, (list, tuple)) else [self.initial_state]
            flat = _flatten(given)
            d_flat = _flatten(d_initial) if run.given else [np.zeros_like(np.asarray(g)) for g in flat]
            initial = _pack(list(given), [d.astype(_float_dtype(g, d)) for d, g in zip(d_flat, flat)])
        return Gradients(d_x.astype(_float_dtype(self.inputs, d_x)), weights, initial)

    def _split(self, cotangents: Any) -> tuple[Array, list]:
        """(d output, d final states nested as the states), zeros where a cotangent is None, in the
        loop's layout and dtype."""
        layer, dtype = self.layer, self.run.x.dtype
        d_output, d_states = (cotangents[0], list(cotangents[1:])) if layer.return_state else (cotangents, None)
        d_output = np.zeros_like(self.output) if d_output is None else np.asarray(d_output, dtype)
        if layer.time_major and layer.return_sequences:
            d_output = np.swapaxes(d_output, 0, 1)
        if d_states is None:
            return d_output, _map(np.zeros_like, self.states)
        return d_output, _map2(lambda d, s: np.zeros_like(s) if d is None else np.asarray(d, dtype),
                               _fill(d_states, self.states), self.states)


def _loop_vjp(layer: RNN, tape: list, d_output: Array, d_states: list, mask: Array | None, grads: dict,
              training: bool) -> tuple[Array, list]:
    """The time loop backwards: per step (in processing order) the gradient of what the step took
    (x_proj for a cell, its inputs for a stack), and the initial states' gradients."""
    cell = layer.cell
    step_vjp = cell.step_vjp if isinstance(cell, RNNCell) else cell.call_vjp
    zeros = np.zeros_like(d_output[:, 0] if layer.return_sequences else d_output)  # one step's output
    d_carry = zeros if layer.return_sequences else d_output  # d of the output the next step may repeat
    d_steps: list = [None] * len(tape)
    for t in reversed(range(len(tape))):
        d_out = d_output[:, t] + d_carry if layer.return_sequences else d_carry
        d_new, d_old = d_states, None
        if mask is not None:
            m = mask[:, t]  # (B,)
            d_h = np.where(_expand(m, d_out), d_out, 0)
            d_carry = zeros if layer.zero_output_for_mask else np.where(_expand(m, d_out), 0, d_out)
            d_new = _map(lambda d: np.where(_expand(m, d), d, 0), d_states)
            d_old = _map(lambda d: np.where(_expand(m, d), 0, d), d_states)
        else:
            d_h, d_carry = d_out, zeros
        d_steps[t], d_prev = step_vjp(tape[t], d_h, d_new, grads, training)
        tape[t] = None  # used once: the steps still to go reuse its memory instead of fresh pages
        d_states = d_prev if d_old is None else _map2(np.add, d_prev, d_old)
    return np.stack(d_steps), d_states  # (T, B, ...)


class _TapedBidirectional:
    """One forward call of a Bidirectional layer: both directions recorded, then merged."""

    def __init__(self, layer: Bidirectional, inputs: Any, mask: Any, initial_state: Any, training: bool,
                 dropout_masks: Any):
        self.layer, self.inputs = layer, np.asarray(inputs)
        if not layer.built:
            layer.build(self.inputs.shape)
        fwd_state, bwd_state = layer.split_initial_state(initial_state)
        fwd_masks, bwd_masks = dropout_masks if dropout_masks is not None else (None, None)
        self.forward = _forward(layer.forward_layer, inputs, mask, fwd_state, training, fwd_masks)
        try:
            self.backward_run = _forward(layer.backward_layer, inputs, mask, bwd_state, training, bwd_masks)
        except BaseException:
            self.forward.close()
            raise
        self.returned = layer.merge(inputs, self.forward.returned, self.backward_run.returned)

    def close(self) -> None:
        self.forward.close()
        self.backward_run.close()

    def backward(self, cotangents: Any) -> Gradients:
        layer = self.layer
        y, y_rev, states = layer.unmerged(self.forward.returned, self.backward_run.returned, self.inputs)
        if layer.return_state:
            n_out = 2 if layer.merge_mode is None else 1
            d_merged, d_states = list(cotangents[:n_out]), list(cotangents[n_out:])
            d_merged = d_merged if layer.merge_mode is None else d_merged[0]
        else:
            d_merged, d_states = cotangents, [None] * len(states)
        d_y, d_y_rev = _merge_vjp(layer.merge_mode, y, y_rev, d_merged)
        if layer.return_sequences:
            d_y_rev = d_y_rev[:, ::-1]  # the backward layer returned it in processing order
        half = len(layer.forward_layer.state_size)
        fwd = self.forward.backward(_restructure(layer.forward_layer, d_y, d_states[:half]))
        bwd = self.backward_run.backward(_restructure(layer.backward_layer, d_y_rev, d_states[half:]))
        initial = None if fwd.initial_state is None else fwd.initial_state + bwd.initial_state
        return Gradients(fwd.inputs + bwd.inputs, fwd.weights + bwd.weights, initial)


def _merge_vjp(mode: str | None, y: Array, y_rev: Array, d: Any) -> tuple[Array, Array]:
    """d y and d y_rev (in their own dtypes) from d of the merged output."""
    if mode is None:
        d_y, d_y_rev = d
    elif mode == "concat":
        d_y, d_y_rev = d[..., :y.shape[-1]], d[..., y.shape[-1]:]
    elif mode == "sum":
        d_y = d_y_rev = d
    elif mode == "ave":
        d_y = d_y_rev = np.asarray(d) / 2
    else:  # mul; the cotangent in the outputs' dtype (an integer one would truncate y)
        d = np.asarray(d, y.dtype)
        d_y, d_y_rev = d * y_rev.astype(y.dtype), d * y
    zeros = lambda a, like: np.zeros_like(like) if a is None else np.asarray(a).astype(like.dtype)  # noqa: E731
    return zeros(d_y, y), zeros(d_y_rev, y_rev)


def _restructure(sub: RNN, d_output: Array, d_states: list) -> Any:
    """Cotangents for a Bidirectional's direction, in the structure its call returns."""
    return [d_output, *d_states] if sub.return_state else d_output


def _cells(cell: Any) -> list:
    """The refimpl cells holding weights, in get_weights() order (a stack's, or the one cell)."""
    cells = list(getattr(cell, "cells", [cell]))
    if not all(isinstance(c, RNNCell) for c in cells):
        raise NotImplementedError(f"cell={cell!r}: the backward pass needs refimpl cells (step_vjp)")
    return cells


def _fill(given: Sequence[Any], like: Sequence[Any]) -> list:
    """``given`` with None where a whole cell's states are None, nested as ``like``."""
    return [_map(lambda _: None, s) if g is None else g for g, s in zip(given, like)]


def _float_dtype(reference: Any, fallback: Array) -> np.dtype:
    """The dtype a gradient is returned in: its input's, for a float input."""
    dtype = np.asarray(reference).dtype
    return dtype if is_float(dtype) else fallback.dtype


