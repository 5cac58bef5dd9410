"""RNN(cell): the one time loop every recurrent layer shares.

Checked against Keras 3.15.1 ``keras/src/layers/rnn/rnn.py`` and the TensorFlow backend's loop,
``keras/src/backend/tensorflow/rnn.py`` (``rnn()``). Per call, for inputs (B, T, ...):

    go_backwards      inputs and mask are reversed in time; outputs stay in processing order
                      (output[:, 0] belongs to the last input step).
    mask (B, T)       at a masked step the states keep their previous values and the output is the
                      previous step's output (zeros before the first step), or zeros with
                      zero_output_for_mask=True. A fully masked row keeps its initial state.
    initial_state     one array per state (a list per cell for StackedRNNCells); defaults to zeros,
                      or to the stored states when stateful=True.
    return_sequences  output (B, T, out) rather than the last step's output (B, out).
    return_state      [output, *final_states].
    stateful          final states are stored and start the next call; the batch size is fixed by
                      the first build; reset_state() zeroes them. A passed initial_state overrides
                      the stored states (Keras 2: only while they are all zero).
    unroll            changes how Keras builds its graph, not the numbers.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple, Sequence

import numpy as np

from refimpl._typing import Array, Config, Shape
from refimpl.base import Layer, check_bool, check_choice
from refimpl.cell import DropoutMasks, RNNCell
from refimpl.serialization import serialize
from refimpl.stacked import StackedRNNCells

class Run(NamedTuple):
    """One call, prepared: inputs (B, T, ...) and mask (B, T) in processing order, initial states."""
    x: Array
    mask: Array | None
    states: list
    given: bool  # the states are the initial_state passed (not zeros, nor a stateful layer's own)


RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
            "zero_output_for_mask")


class RNN(Layer):
    """Keras's ``RNN(cell)``: runs ``cell`` over time. ``cell`` is a refimpl cell, a list of cells
    (stacked), or any object with ``state_size`` and ``call(inputs, states[, training])``."""

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, **kwargs: Any):
        time_major = kwargs.pop("time_major", False)
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell, keras_version=self.keras_version)
        if not callable(getattr(cell, "call", None)):
            raise ValueError(f"cell={cell!r}, expected an object with a call(inputs, states) method")
        state_size = getattr(cell, "state_size", None)
        if not isinstance(state_size, (int, list, tuple)) or isinstance(state_size, bool):
            raise ValueError(f"cell.state_size={state_size!r}, expected an int or a list of ints")
        self.cell = cell
        for name, value in zip(RNN_ARGS, (return_sequences, return_state, go_backwards, stateful,
                                          unroll, zero_output_for_mask)):
            setattr(self, name, check_bool(name, value))
        self.time_major = check_bool("time_major", time_major)
        if self.time_major and self.keras_version != 2:
            raise ValueError("time_major=True is a Keras 2 argument; pass keras_version=2")
        self.states: list | None = None  # stateful storage
        self._batch_size: int | None = None
        self._step_shape: tuple | None = None

    # --- shapes -----------------------------------------------------------------------------------
    @property
    def state_size(self) -> list:
        s = self.cell.state_size
        return [s] if isinstance(s, int) else list(s)

    @property
    def output_size(self) -> int:
        size = getattr(self.cell, "output_size", None)
        return self.state_size[0] if size is None else size

    def compute_output_shape(self, input_shape: Shape) -> Any:
        """Keras's rule: (B, out) or (B, T, out), then one (B, size) per state if return_state."""
        batch, steps = input_shape[0], input_shape[1]
        out = (batch, steps, self.output_size) if self.return_sequences else (batch, self.output_size)
        if not self.return_state:
            return out
        states = [(batch, s) if isinstance(s, int) else [(batch, d) for d in s] for s in self.state_size]
        return (out, *states)

    def build(self, input_shape: Shape) -> None:
        input_shape = self.build_input_shape = tuple(input_shape)
        self._check_rank(len(input_shape), input_shape)
        step_shape = (input_shape[0], *input_shape[2:])
        if hasattr(self.cell, "build") and not getattr(self.cell, "built", True):
            self.cell.build(step_shape)
        self._step_shape = step_shape
        if self.stateful:
            if input_shape[0] is None:
                raise ValueError(f"stateful=True needs a known batch size, got input_shape={input_shape}")
            self._batch_size = input_shape[0]
            self.states = self._zero_states(input_shape[0], self.variable_dtype)
        self.built = True

    def _check_rank(self, ndim: int, shape: tuple) -> None:
        """Inputs are (batch, timesteps, *one step's shape): rank 3 for dense cells, or whatever
        rank the cell's steps take plus one (a cell without ``step_ndim`` takes rank 3 or more)."""
        step_ndim = getattr(self.cell, "step_ndim", None)
        if step_ndim is None and ndim < 3:
            raise ValueError(f"{self.name}: inputs.shape={shape}, expected (batch, timesteps, features...)")
        if step_ndim is not None and ndim != step_ndim + 1:
            what = "features" if step_ndim == 2 else f"{step_ndim - 2} spatial dims and channels"
            raise ValueError(f"{self.name}: inputs.shape={shape}, expected rank {step_ndim + 1} "
                             f"(batch, timesteps, {what})")

    # --- states -----------------------------------------------------------------------------------
    def _zero_states(self, batch_size: int, dtype: Any) -> list:
        get = getattr(self.cell, "get_initial_state", None)
        if get is None:
            return [np.zeros((batch_size, s), dtype) for s in self.state_size]
        if isinstance(self.cell, Layer):
            states = get(batch_size, dtype=dtype)
        else:
            states = get(batch_size=batch_size)
        return list(states) if isinstance(states, (list, tuple)) else [states]

    def get_initial_state(self, batch_size: int, dtype: Any = "float64") -> list:
        """The zero states a call starts from, one array per state, as Keras's RNN.get_initial_state."""
        return self._zero_states(batch_size, dtype)

    def reset_state(self) -> None:
        """Zero the stored states of a stateful layer (no-op otherwise), as Keras's reset_state."""
        if self.states is not None:
            self.states = _map(np.zeros_like, self.states)

    reset_states = reset_state  # Keras's compatibility alias

    # --- the call ---------------------------------------------------------------------------------
    def __call__(self, inputs: Any, mask: Any = None, initial_state: Any = None, training: bool = False,
                 dropout_masks: DropoutMasks | Sequence[DropoutMasks | None] | None = None) -> Any:
        """Run the layer. Returns the output, or ``[output, *states]`` with return_state=True.

        ``dropout_masks`` (used only with ``training=True``): ``DropoutMasks`` for a single cell, or
        a list with one (or None) per cell of a StackedRNNCells; see ``refimpl.cell``.
        """
        run = self._begin(inputs, mask, initial_state, dropout_masks)
        try:
            output, states = self._loop(run.x, run.states, run.mask, training)
        finally:
            _reset_dropout(self.cell)
        return self._end(output, states)

    def _begin(self, inputs: Any, mask: Any, initial_state: Any, dropout_masks: Any) -> Run:
        """Check and prepare one call: inputs in the compute dtype and processing order, the
        mask, the initial states; the cells' dropout masks fixed (``_reset_dropout`` undoes it)."""
        x = np.asarray(inputs)
        self._check_rank(x.ndim, x.shape)
        if self.time_major:
            if mask is not None:
                raise NotImplementedError("time_major=True with a mask: not modelled by refimpl")
            x = np.swapaxes(x, 0, 1)
        if not self.built:
            self.build(x.shape)
        elif x.shape[2:] != self._step_shape[1:]:
            raise ValueError(f"{self.name}: inputs.shape={x.shape}, but the layer was built for "
                             f"features {self._step_shape[1:]}")
        x = x.astype(self.compute_dtype(x), copy=False)  # (B, T, ...)
        batch, steps = x.shape[:2]
        mask = self._check_mask(mask, batch, steps)
        if self.stateful and batch != self._batch_size:
            raise ValueError(f"{self.name} is stateful: batch size {batch}, expected {self._batch_size} "
                             "(the batch size it was built with)")
        states, given = self._initial_states(initial_state, batch, x.dtype)
        self._prepare_dropout(self.cell, dropout_masks, (batch, *x.shape[2:]))
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        return Run(x, mask, states, given)

    def _end(self, output: Array, states: list) -> Any:
        """What a call returns, from the loop's results; a stateful layer keeps its states."""
        if self.stateful:
            self.states = _map(lambda s: s.astype(self.variable_dtype), states)
        if self.time_major and self.return_sequences:
            output = np.swapaxes(output, 0, 1)
        return [output, *states] if self.return_state else output

    def _loop(self, x: Array, states: list, mask: Array | None, training: bool,
              tape: list | None = None) -> tuple[Array, list]:
        """The time loop over x (B, T, ...) in processing order. With a ``tape`` (the backward
        pass, refimpl/vjp.py) every step appends what its backward needs."""
        cell, dtype = self.cell, x.dtype
        own_cell = isinstance(cell, RNNCell)
        if own_cell:  # x @ kernel hoisted out of the recurrence
            x_steps, step = _projected_steps(cell, x, training), cell.step
        else:
            x_steps, step = np.swapaxes(x, 0, 1), _cell_call(cell, tape is not None)  # (T, B, ...)
        extra = () if tape is None else (tape,)
        outputs = None  # (B, T, out), written step by step with return_sequences
        prev_output = None
        for t, x_t in enumerate(x_steps):
            output, new_states = step(x_t, states, training, *extra)
            if not own_cell:
                # Keep the structure the states came in, as TensorFlow's loop does; it matters for
                # a one-cell StackedRNNCells, which returns its cell's states unnested.
                new_states = _pack(states, _flatten(new_states))
            # Each step's results in the compute dtype (a no-op, but for bfloat16: refimpl.base.Layer.compute_dtype).
            output, new_states = _in_dtype(output, dtype), _in_dtype(new_states, dtype)
            if mask is not None:
                m = mask[:, t]  # (B,)
                if prev_output is None:
                    prev_output = np.zeros_like(output)
                output = self.masked_output(m, output, prev_output)
                new_states = self.masked_states(m, new_states, states)
            states, prev_output = list(new_states), output
            if self.return_sequences:
                if outputs is None:
                    outputs = np.empty((output.shape[0], x.shape[1], *output.shape[1:]), dtype)  # (B, T, out)
                outputs[:, t] = output
        if outputs is None and self.return_sequences:
            raise ValueError(f"{self.name}: inputs.shape={x.shape}, expected at least one timestep")
        final = outputs if self.return_sequences else prev_output  # (B, T, out) | (B, out)
        return _in_dtype(final, dtype), _in_dtype(states, dtype)

    def masked_output(self, m: Array, output: Array, prev_output: Array) -> Array:
        """At a masked step (m[b] False) row b's output is the previous step's (zeros before the
        first step), or zeros with zero_output_for_mask."""
        fill = np.zeros_like(output) if self.zero_output_for_mask else prev_output
        return np.where(_expand(m, output), output, fill)

    @staticmethod
    def masked_states(m: Array, new_states: list, states: list) -> list:
        """At a masked step (m[b] False) row b keeps its previous states."""
        return _map2(lambda new, old: np.where(_expand(m, new), new, old), new_states, states)

    def _check_mask(self, mask: Any, batch: int, steps: int) -> Array | None:
        if mask is None:
            return None
        mask = np.asarray(mask)
        if mask.ndim == 3 and mask.shape[-1] == 1:  # Keras accepts a trailing axis of one
            mask = mask[..., 0]
        if mask.shape != (batch, steps):
            raise ValueError(f"{self.name}: mask.shape={mask.shape}, expected (batch, timesteps)="
                             f"{(batch, steps)}")
        return mask.astype(bool)

    def _initial_states(self, initial_state: Any, batch: int, dtype: np.dtype) -> tuple[list, bool]:
        """The states a call starts from, and whether they are the ``initial_state`` given."""
        if self.stateful and initial_state is not None and self.keras_version == 2 and \
                any(np.any(s) for s in _flatten(self.states)):
            initial_state = None  # Keras 2: non-zero stored states win over a passed initial_state
        if initial_state is None:
            if self.stateful:
                return _map(lambda s: s.astype(dtype), self.states), False
            return _map(lambda s: s.astype(dtype), self._zero_states(batch, dtype)), False
        if not isinstance(initial_state, (list, tuple)):
            initial_state = [initial_state]
        expected = self._zero_states(batch, dtype)
        if len(initial_state) != len(expected):
            raise ValueError(f"{self.name}: len(initial_state)={len(initial_state)}, expected "
                             f"{len(expected)} (one per state, state_size={self.cell.state_size})")
        given, wanted = [np.asarray(g) for g in _flatten(initial_state)], _flatten(expected)
        if len(given) != len(wanted):
            raise ValueError(f"{self.name}: initial_state holds {len(given)} arrays, expected {len(wanted)} "
                             f"(state_size={self.cell.state_size})")
        for i, (g, e) in enumerate(zip(given, wanted)):
            if g.shape != e.shape:
                raise ValueError(f"{self.name}: initial_state[{i}].shape={g.shape}, expected {e.shape}")
        return _pack(list(initial_state), [g.astype(dtype) for g in given]), True  # the caller's nesting

    def _prepare_dropout(self, cell: Any, masks: Any, step_shape: tuple) -> None:
        prepare = getattr(cell, "prepare_dropout", None)
        if prepare is not None:
            prepare(step_shape, masks)
        elif masks is not None:
            raise ValueError(f"dropout_masks were given, but cell {cell!r} takes none (no prepare_dropout)")

    # --- config -----------------------------------------------------------------------------------
    def get_config(self) -> Config:
        config = {**self.base_config(), **{k: getattr(self, k) for k in RNN_ARGS}}
        if self.time_major:
            config["time_major"] = True
        return {**config, "cell": serialize(self.cell)}

    def get_weights(self) -> list[Array]:
        self._require_built("get_weights")
        return self.cell.get_weights() if hasattr(self.cell, "get_weights") else []

    def set_weights(self, weights: list[Array]) -> None:
        self._require_built("set_weights")
        self.cell.set_weights(weights)

    def count_params(self) -> int:
        return int(sum(np.size(w) for w in self.get_weights()))


class CellLayer(RNN, abstract=True):
    """SimpleRNN, LSTM, GRU: an RNN that builds its own cell from the layer's arguments."""

    cell_class: type[RNNCell]
    config_omits: tuple[str, ...] = ()  # cell keys the Keras layer's get_config leaves out

    def __init__(self, args: dict):
        """``args``: the subclass constructor's ``locals()``. Keras's arguments are routed by name:
        the cell's own (and ``implementation``) build the cell, the rest configure the loop."""
        args = {k: v for k, v in args.items() if k not in ("self", "__class__")}
        args.update(args.pop("kwargs"))
        if "use_cudnn" in args:  # picks a kernel, not a result: refimpl is the generic loop
            self.use_cudnn = check_choice("use_cudnn", args.pop("use_cudnn"), ("auto", True, False))
        cell_params = set(inspect.signature(self.cell_class).parameters) | {"implementation"}
        cell_args = {k: args.pop(k) for k in list(args) if k in cell_params}
        shared = {k: args[k] for k in ("dtype", "trainable", "keras_version") if k in args}
        super().__init__(self.cell_class(**cell_args, **shared), **args)

    def __getattr__(self, name: str) -> Any:  # layer.units, layer.activation, ... as in Keras
        if name != "cell" and "cell" in self.__dict__ and hasattr(self.cell, name):
            return getattr(self.cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> Config:
        config = super().get_config()
        cell_config = config.pop("cell")["config"]
        for key in ("name", "trainable", "dtype", *self.config_omits):
            cell_config.pop(key, None)
        return {**config, **cell_config}  # no use_cudnn: Keras does not save it (docs/gpu.md)


def _projected_steps(cell: RNNCell, x: Array, training: bool):
    """Yield x[:, t] @ kernel (+ bias) for t = 0, 1, ...: one matmul per block of steps, each block
    ~2**20 elements of projection, so memory stays bounded and long sequences stream through
    cache instead of making one (T, B, G*units) array."""
    rows = x[:, 0].size // x.shape[-1]  # B (ConvLSTM: B times the input's spatial positions)
    block = max(1, 2**20 // (rows * len(cell.GATES) * cell.units))
    for start in range(0, x.shape[1], block):
        yield from cell.project_inputs(x[:, start:start + block], training)  # (block, B, G*units)


# --- small helpers for nested states (a list per cell in StackedRNNCells) ---------------------------
def _cell_call(cell: Any, taped: bool = False):
    """A step function for any object with Keras's cell protocol (``taped``: it records for the
    backward pass, which only refimpl's cells and stacks can)."""
    if taped:
        if not callable(getattr(cell, "call_vjp", None)):
            raise NotImplementedError(f"cell={cell!r}: the backward pass needs a refimpl cell (call_vjp)")
        return lambda x_t, states, training, tape: cell.call(x_t, states, training=training, tape=tape)
    takes_training = "training" in inspect.signature(cell.call).parameters
    if takes_training:
        return lambda x_t, states, training: cell.call(x_t, states, training=training)
    return lambda x_t, states, training: cell.call(x_t, states)


def _in_dtype(tree: Any, dtype: np.dtype) -> Any:
    """The arrays in ``tree`` in ``dtype``, each unchanged (not copied) when it already is."""
    if isinstance(tree, (list, tuple)):
        return [_in_dtype(t, dtype) for t in tree]
    return tree if tree.dtype == dtype else tree.astype(dtype)


def _expand(m: Array, like: Array) -> Array:
    return m.reshape(m.shape + (1,) * (like.ndim - 1))  # (B,) -> (B, 1, ...)


def _map(fn, tree: Any) -> Any:
    return [_map(fn, t) for t in tree] if isinstance(tree, (list, tuple)) else fn(tree)


def _map2(fn, a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)):
        return [_map2(fn, x, y) for x, y in zip(a, b)]
    return fn(a, b)


def _flatten(tree: Any) -> list:
    return [x for t in tree for x in _flatten(t)] if isinstance(tree, (list, tuple)) else [tree]


def _pack(structure: Any, flat: list) -> Any:
    """Arrange ``flat`` in the nesting of ``structure`` (the inverse of ``_flatten``)."""
    flat = iter(flat)

    def build(s: Any) -> Any:
        return [build(x) for x in s] if isinstance(s, (list, tuple)) else next(flat)
    return build(structure)


def _reset_dropout(cell: Any) -> None:
    reset = getattr(cell, "reset_dropout_mask", None)
    if reset is not None:
        reset()
