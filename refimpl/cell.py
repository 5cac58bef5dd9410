"""The shared part of SimpleRNNCell, LSTMCell and GRUCell: arguments, weights, gates, dropout masks.

A cell here splits Keras's ``cell.call(x_t, states)`` in two, so the time loop can hoist the part
that does not depend on the state out of the loop (Keras computes the same numbers step by step):

    project_inputs(x)        x @ kernel (+ input bias), all steps in one matmul   -> (T, B, G*units)
    step(x_proj[t], states)  everything that involves the previous state          -> (h, new_states)

(The projection is time-major so that each step reads one contiguous block.)

``call(inputs, states, training)`` composes the two for one step, which is Keras's cell protocol.

Gates: ``GATES`` names a cell's gate blocks in Keras's column order (LSTM i, f, c, o; GRU z, r, h);
``split_gates`` cuts a projection into them, and ``project`` applies a kernel to the columns of
some gates.

Dropout (Keras's ``DropoutRNNCell``): with ``training=True`` and a rate in (0, 1), the input and/or
the previous output are multiplied by a mask that is drawn once per sequence and reused at every
step; kept entries equal 1 / (1 - rate). With ``implementation=1`` (forced by Keras when
``recurrent_dropout > 0``) LSTM and GRU use one mask per gate. refimpl takes the masks from the
caller (``DropoutMasks``) so a run is deterministic; masks not supplied are drawn from
``numpy.random.default_rng(seed)`` — same distribution as Keras, not the same numbers.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from refimpl import activations, initializers
from refimpl._typing import Array, Config, States
from refimpl.base import Layer, check_bool, check_choice, check_positive_int, check_rate


class DropoutMasks(NamedTuple):
    """Caller-supplied dropout multipliers for one call, each (batch, features) or a tuple per gate.

    ``input`` multiplies the step input (batch, input_dim); ``recurrent`` the previous output
    (batch, units). Entries are 0 or 1 / (1 - rate), exactly what Keras multiplies by.
    """

    input: Array | Sequence[Array] | None = None
    recurrent: Array | Sequence[Array] | None = None


class Dropped(NamedTuple):
    """An array as a kernel sees it after dropout: ``value`` is x (no mask, or one mask shared by
    every gate), or (G, *x.shape) with one mask per gate, when ``per_gate``."""

    value: Array
    per_gate: bool


class RNNCell(Layer, abstract=True):
    """Base of the built-in cells. Subclasses set GATES and write ``step``; see module docstring."""

    GATES: tuple[str, ...] = ()
    weight_names = ("kernel", "recurrent_kernel", "bias")
    step_ndim = 2  # one step's input: (batch, features)
    # Keras arguments a cell may lack (SimpleRNN has no recurrent_activation), filled by subclasses.
    config_keys: tuple[str, ...] = ()

    def __init__(self, units: int, *, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation, keras_version=self.keras_version)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._initializer_configs = {"kernel_initializer": kernel_initializer,
                                     "recurrent_initializer": recurrent_initializer,
                                     "bias_initializer": bias_initializer}
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.kernel = self.recurrent_kernel = self.bias = None
        self.reset_dropout_mask()

    # --- Keras's cell protocol --------------------------------------------------------------------
    @property
    def state_size(self) -> int | list[int]:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def get_initial_state(self, batch_size: int, dtype: Any = "float32") -> list[Array]:
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [np.zeros((batch_size, s), dtype=dtype) for s in sizes]  # (B, units) each

    def output_shape(self, step_shape: tuple) -> tuple:
        """The shape of h for one step's input shape (B, features) -> (B, units)."""
        return (step_shape[0], self.units)

    def call(self, inputs: Array, states: States | Array, training: bool = False,
             tape: list | None = None) -> tuple[Array, Any]:
        """One time step: inputs (B, input_dim), states as ``state_size`` -> (output, new_states).

        Like Keras, a bare array state (not in a list) comes back bare. ``tape``: a list that gets
        what ``call_vjp`` needs for this step (the backward pass; see refimpl/vjp.py)."""
        inputs = np.asarray(inputs)
        if inputs.ndim != self.step_ndim:
            raise ValueError(f"{self.name}: inputs.shape={inputs.shape}, expected rank {self.step_ndim} "
                             "(batch, features...) for one step")
        if not self.built:
            self.build(inputs.shape)
        dtype = self.compute_dtype(inputs)
        bare = not isinstance(states, (list, tuple))
        states = [np.asarray(s, dtype) for s in ([states] if bare else states)]
        expected = [s.shape for s in self.get_initial_state(inputs.shape[0])]
        if len(states) != len(expected):
            raise ValueError(f"{self.name}: len(states)={len(states)}, expected {len(expected)} (one per state)")
        for i, (s, e) in enumerate(zip(states, expected)):
            if s.shape != e:
                raise ValueError(f"{self.name}: states[{i}].shape={s.shape}, expected {e}")
        x = inputs.astype(dtype)[:, None]  # (B, 1, features...)
        x_proj = self.project_inputs(x, training)[0]  # (B, G*units)
        saved: list | None = None if tape is None else []
        h, new_states = self.step(x_proj, states, training, saved)
        if tape is not None:
            tape.append((x, saved[0]))
        return h, (new_states[0] if bare else new_states)

    def call_vjp(self, saved: tuple, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """The backward of one ``call``: (d inputs (B, features...), d states) from d output and d
        new states; the weights' gradients are added to ``grads[self]``."""
        x, step_saved = saved
        d_x_proj, d_states_prev = self.step_vjp(step_saved, d_h, d_states, grads, training)
        return self.project_inputs_vjp(x, d_x_proj[None], grads, training)[:, 0], d_states_prev

    __call__ = call

    # --- weights ----------------------------------------------------------------------------------
    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (len(self.GATES) * self.units,)

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"{self.name}: input_shape={tuple(input_shape)}, the last axis must be known")
        g = len(self.GATES) * self.units
        dt = self.variable_dtype
        self.kernel = self.kernel_initializer((input_dim, g), dt)  # (input_dim, G*units)
        self.recurrent_kernel = self.recurrent_initializer((self.units, g), dt)  # (units, G*units)
        self.bias = self.initial_bias(dt) if self.use_bias else None
        self.built = True
        self.build_input_shape = tuple(input_shape)

    def initial_bias(self, dtype: np.dtype) -> Array:
        return self.bias_initializer(self.bias_shape, dtype)

    def _weights(self, dtype: np.dtype) -> tuple[Array, Array, Array | None]:
        """kernel, recurrent_kernel, bias in the compute dtype (cast once, not at every step)."""
        key = (np.dtype(dtype), id(self.kernel), id(self.recurrent_kernel), id(self.bias))
        if getattr(self, "_cast_key", None) != key:
            self._cast = tuple(None if w is None else w.astype(dtype, copy=False)
                               for w in (self.kernel, self.recurrent_kernel, self.bias))
            self._cast_key = key
        return self._cast

    # --- gates ------------------------------------------------------------------------------------
    def split_gates(self, z: Array, gates: Sequence[str] | None = None) -> tuple[Array, ...]:
        """(..., len(gates)*units) -> one (..., units) block per gate, in the order of ``gates``
        (default: all of ``GATES``)."""
        u = self.units
        return tuple(z[..., k * u:(k + 1) * u] for k in range(len(gates or self.GATES)))

    def project(self, op: Callable[[Array, Array], Array], x: Dropped, weight: Array,
                gates: Sequence[str]) -> Array:
        """op(x, the columns of ``weight`` for ``gates``) -> (..., len(gates)*units); ``gates`` are
        adjacent in ``GATES``. With one dropout mask per gate, gate g sees its own copy x.value[g]."""
        if not x.per_gate and len(gates) == len(self.GATES):  # every gate: the whole weight
            return op(x.value, weight)
        u, index = self.units, [self.GATES.index(g) for g in gates]
        if not x.per_gate:
            return op(x.value, weight[..., index[0] * u:(index[-1] + 1) * u])
        return np.concatenate([op(x.value[g], weight[..., g * u:(g + 1) * u]) for g in index], axis=-1)

    def input_op(self, x: Array, kernel: Array) -> Array:
        """How the kernel meets the inputs: x (..., d) @ kernel (d, n). ConvLSTM convolves."""
        return _matmul(x, kernel)

    def recurrent_op(self, h: Array, recurrent_kernel: Array) -> Array:
        """How the recurrent kernel meets the state: h (..., u) @ recurrent_kernel (u, n)."""
        return _matmul(h, recurrent_kernel)

    def project_inputs(self, x: Array, training: bool) -> Array:
        """x (B, T, ...) -> the kernel applied to every step (+ input bias), time-major: (T, B, ..., G*units)."""
        kernel, _, bias = self._weights(x.dtype)
        dropped = self.input_dropout(x, training)  # (B, T, ...), or (G, B, T, ...) per gate
        lead = int(dropped.per_gate)
        time_major = np.ascontiguousarray(np.swapaxes(dropped.value, lead, lead + 1))  # (T, B, ...)
        xw = self.project(self.input_op, Dropped(time_major, dropped.per_gate), kernel, self.GATES)
        bias = self.input_bias(bias)
        if bias is not None:
            xw += bias
        return xw

    def input_bias(self, bias: Array | None) -> Array | None:
        return bias

    def step(self, x_proj: Array, states: States, training: bool,
             tape: list | None = None) -> tuple[Array, States]:
        """Everything of one step that involves the states; appends what ``step_vjp`` needs to
        ``tape`` when one is given."""
        raise NotImplementedError

    def step_vjp(self, saved: Any, d_h: Array, d_states: States, grads: dict, training: bool
                 ) -> tuple[Array, States]:
        """The backward of ``step``: (d x_proj, d states before the step) from d h (the output) and
        d new states; adds the recurrent weights' gradients to ``grads[self]``."""
        raise NotImplementedError

    # --- backward (the vjp of each piece above, in the same order) --------------------------------
    def input_op_vjp(self, x: Array, kernel: Array, d_out: Array) -> tuple[Array, Array]:
        """(d x, d kernel) of ``input_op``: d_out @ kernel.T, and x.T @ d_out over every leading axis."""
        return _matmul(d_out, kernel.T), _outer(x, d_out)

    def recurrent_op_vjp(self, h: Array, recurrent_kernel: Array, d_out: Array) -> tuple[Array, Array]:
        return _matmul(d_out, recurrent_kernel.T), _outer(h, d_out)

    def project_vjp(self, op_vjp: Callable, x: Dropped, weight: Array, gates: Sequence[str], d_out: Array,
                    grads: WeightGrads, name: str) -> Array:
        """The backward of ``project``: d x.value (per gate when x is), and the gradient of the
        weight's ``gates`` columns added to ``grads``'s ``name``."""
        u, index = self.units, [self.GATES.index(g) for g in gates]
        if not x.per_gate:
            d_x, d_w = op_vjp(x.value, weight[..., index[0] * u:(index[-1] + 1) * u], d_out)
            grads.add(name, d_w, slice(index[0] * u, (index[-1] + 1) * u))
            return d_x
        d_x = np.zeros_like(x.value)  # (G, ...): gate g's copy of x gets gate g's gradient
        for k, g in enumerate(index):
            d_x[g], d_w = op_vjp(x.value[g], weight[..., g * u:(g + 1) * u], d_out[..., k * u:(k + 1) * u])
            grads.add(name, d_w, slice(g * u, (g + 1) * u))
        return d_x

    def project_inputs_vjp(self, x: Array, d_xw: Array, grads: dict, training: bool) -> Array:
        """The backward of ``project_inputs``: d x (B, T, ...) from d of the projection (T, B, ..., G*units);
        the kernel's and the input bias's gradients go to ``grads[self]``."""
        kernel, _, bias = self._weights(x.dtype)
        g = grads[self]
        dropped = self.input_dropout(x, training)  # as in the forward pass: the same masks
        lead = int(dropped.per_gate)
        time_major = Dropped(np.swapaxes(dropped.value, lead, lead + 1), dropped.per_gate)  # (T, B, ...)
        if bias is not None:
            g.add_input_bias(d_xw.reshape(-1, d_xw.shape[-1]).sum(axis=0))
        d_dropped = self.project_vjp(self.input_op_vjp, time_major, kernel, self.GATES, d_xw, g, "kernel")
        d_dropped = np.swapaxes(d_dropped, lead, lead + 1)  # back to (B, T, ...), per gate if dropped was
        mask = self._dropout_mask if training else None
        if mask is None:
            return d_dropped
        mask = np.expand_dims(mask.astype(x.dtype, copy=False), -(x.ndim - 1))  # insert T
        return (mask * d_dropped).sum(axis=0) if dropped.per_gate else mask * d_dropped

    def recurrent_dropout_vjp(self, d_h_rec: Array, h_rec: Dropped, training: bool) -> Array:
        """d h_tm1 from d of what the recurrent kernel saw (``recurrent_dropout_of``'s backward)."""
        mask = self._recurrent_dropout_mask if training else None
        if mask is None:
            return d_h_rec
        mask = mask.astype(d_h_rec.dtype, copy=False)
        return (mask * d_h_rec).sum(axis=0) if h_rec.per_gate else mask * d_h_rec

    # --- dropout ----------------------------------------------------------------------------------
    @property
    def dropout_mask_count(self) -> int | None:
        """None: one mask shared by all gates; an int: one mask per gate (Keras implementation=1)."""
        return None

    def reset_dropout_mask(self) -> None:
        self._dropout_mask = self._recurrent_dropout_mask = None

    reset_recurrent_dropout_mask = reset_dropout_mask

    def prepare_dropout(self, step_shape: tuple, masks: DropoutMasks | None) -> None:
        """Fix this sequence's masks for step inputs of ``step_shape``: the caller's where given,
        else drawn from the cell's generator."""
        masks = masks or DropoutMasks()
        self._dropout_mask = self._mask_or_draw("dropout", masks.input, self.dropout, tuple(step_shape))
        self._recurrent_dropout_mask = self._mask_or_draw(
            "recurrent_dropout", masks.recurrent, self.recurrent_dropout, self.output_shape(step_shape))

    def _mask_or_draw(self, what: str, given: Any, rate: float, shape: tuple) -> Array | None:
        if rate == 0.0:
            if given is not None:
                raise ValueError(f"{self.name}: a {what} mask was given but {what}=0.0")
            return None
        count = self.dropout_mask_count
        if given is None:
            draw = lambda: (self._rng.random(shape) >= rate) / (1.0 - rate)  # (B, features...)
            return draw() if count is None else np.stack([draw() for _ in range(count)])
        given = np.asarray(given, dtype=np.float64)
        want = shape if count is None else (count, *shape)
        if given.shape != want:
            per = "" if count is None else f" (one per gate: {count})"
            raise ValueError(f"{self.name}: {what} mask shape={given.shape}, expected {want}{per}")
        return given

    def _mask(self, which: str, shape: tuple) -> Array | None:
        """This sequence's mask for ``which`` ("dropout"/"recurrent_dropout"), drawn on first use."""
        attr = f"_{which}_mask"
        if getattr(self, attr) is None and getattr(self, which):
            setattr(self, attr, self._mask_or_draw(which, None, getattr(self, which), shape))
        return getattr(self, attr)

    def input_dropout(self, x: Array, training: bool) -> Dropped:
        """x (B, T, ...) as the kernel sees it: unchanged, x * mask (the same mask at every step), or
        (G, B, T, ...) with one mask per gate."""
        mask = self._mask("dropout", (x.shape[0], *x.shape[2:])) if training else None
        if mask is None:
            return Dropped(x, False)
        mask = np.expand_dims(mask.astype(x.dtype, copy=False), -(x.ndim - 1))  # insert T
        return Dropped(mask * x, self.dropout_mask_count is not None)

    def recurrent_dropout_of(self, h_tm1: Array, training: bool) -> Dropped:
        """h_tm1 (B, ...) as the recurrent kernel sees it: unchanged, h * mask, or (G, B, ...)."""
        mask = self._mask("recurrent_dropout", h_tm1.shape) if training else None
        if mask is None:
            return Dropped(h_tm1, False)
        return Dropped(mask.astype(h_tm1.dtype, copy=False) * h_tm1, self.dropout_mask_count is not None)

    # --- config -----------------------------------------------------------------------------------
    def get_config(self) -> Config:
        config = {**self.base_config(), "units": self.units,
                  "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                  **self._initializer_configs, "dropout": self.dropout,
                  "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}
        for key in self.config_keys:
            value = getattr(self, key)
            config[key] = activations.serialize(value) if key.endswith("activation") else value
        return config


def _matmul(a: Array, b: Array) -> Array:
    """a (..., k) @ b (k, n) as one 2-D BLAS call (NumPy runs 3-D @ 2-D as a slower batched loop)."""
    if a.ndim == 2:  # a step's (B, k): already one call
        return a @ b
    return (a.reshape(-1, a.shape[-1]) @ b).reshape(*a.shape[:-1], b.shape[-1])


def _outer(a: Array, d: Array) -> Array:
    """a (..., k) and d (..., n) -> (k, n): the sum over every leading axis of a.T @ d."""
    return a.reshape(-1, a.shape[-1]).T @ d.reshape(-1, d.shape[-1])


class WeightGrads:
    """One cell's weight gradients, accumulated over the steps: kernel, recurrent_kernel, bias
    (None without a bias), each the shape of its weight."""

    def __init__(self, cell: RNNCell, dtype: np.dtype):
        for name in cell.weight_names:
            w = getattr(cell, name)
            setattr(self, name, None if w is None else np.zeros(w.shape, dtype))
        self.reset_after_bias = getattr(cell, "reset_after", False)  # GRU: bias rows (input, recurrent)

    def add(self, name: str, value: Array, columns: slice = slice(None)) -> None:
        getattr(self, name)[..., columns] += value

    def add_input_bias(self, value: Array) -> None:
        """The bias added to x @ kernel: all of it, or row 0 of a reset_after GRU's (2, 3 units)."""
        if self.reset_after_bias:
            self.bias[0] += value
        else:
            self.bias += value

    def as_list(self) -> list[Array]:
        return [g for g in (self.kernel, self.recurrent_kernel, self.bias) if g is not None]


def forwarded(local_vars: dict, *own: str) -> dict:
    """A cell constructor's arguments (its ``locals()``) minus the ones it handles itself, with its
    ``**kwargs`` merged in: what it passes on to ``RNNCell.__init__``."""
    skip = {"self", "__class__", "kwargs", *own}
    return {**{k: v for k, v in local_vars.items() if k not in skip}, **local_vars.get("kwargs", {})}


def check_implementation(implementation: Any) -> int:
    return check_choice("implementation", implementation, (1, 2))
