"""ConvLSTMCell and ConvLSTM1D/2D/3D, checked against Keras 3.15.1 ``keras/src/layers/rnn/conv_lstm.py``.

An LSTM whose matmuls are convolutions: ``LSTMCell.step`` runs unchanged, with gates i, f, c, o
along the channel axis (``filters`` channels each), on states h and c of shape
(B, *out_spatial, filters):

    z = conv(x_t, kernel; strides, padding, dilation_rate) + bias
        + conv(h_{t-1}, recurrent_kernel; strides 1, padding "same", no dilation)
    i, f, c~, o = z split in four along channels;  c_t = f * c_{t-1} + i * activation(c~)
    h_t = o * activation(c_t)

The recurrent convolution is always stride 1, "same" padding, no dilation (so h keeps its shape);
only the input convolution uses the layer's strides, padding and dilation_rate.
kernel (*kernel_size, channels, 4 filters), recurrent_kernel (*kernel_size, filters, 4 filters),
bias (4 filters,). Dropout always uses one mask per gate (Keras's dropout_mask_count = 4).

Arrays run channels_last inside; with data_format="channels_first" the layer (and the cell's
public build/call) move the channel axis at the boundary, so everything a caller passes or gets
back is in the layer's data_format. (Stateful layers store their states channels_last.)
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from refimpl._typing import Array, Config, Shape
from refimpl.base import check_choice, check_positive_int
from refimpl.cell import DropoutMasks, forwarded
from refimpl.conv import conv, conv_output_size, conv_vjp
from refimpl.lstm import LSTMCell
from refimpl.rnn import CellLayer, _map


def _tuple(name: str, value: Any, rank: int) -> tuple[int, ...]:
    """Keras's standardize_tuple: an int or a sequence of ``rank`` positive ints."""
    values = (value,) * rank if isinstance(value, numbers.Integral) else tuple(value)
    if len(values) != rank or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                       and v > 0 for v in values):
        raise ValueError(f"{name}={value!r}, expected a positive int or {rank} positive ints")
    return tuple(int(v) for v in values)


class ConvLSTMCell(LSTMCell):
    def __init__(self, rank: int, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", unit_forget_bias: bool = True,
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None, **kwargs: Any):
        if "implementation" in kwargs:  # Keras's ConvLSTMCell has none: one mask per gate, always
            raise TypeError("ConvLSTMCell got unexpected keyword arguments ['implementation']")
        shared = forwarded(locals(), "rank", "filters", "kernel_size", "strides", "padding", "data_format",
                           "dilation_rate")  # the rest goes to LSTMCell
        self.rank = check_choice("rank", rank, (1, 2, 3))
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = _tuple("kernel_size", kernel_size, rank)
        self.strides = _tuple("strides", strides, rank)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, rank)
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding == "causal":
            raise NotImplementedError("padding='causal': Keras's ConvLSTM has no causal convolution")
        self.padding = check_choice("padding", padding, ("valid", "same"))
        self.data_format = check_choice("data_format", data_format or "channels_last",
                                        ("channels_last", "channels_first"))
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"strides={self.strides} with dilation_rate={self.dilation_rate}: Keras "
                             "accepts strides > 1 or dilation_rate > 1, not both")
        super().__init__(filters, **shared)
        self.step_ndim = rank + 2
        self.spatial_dims: tuple[int, ...] | None = None

    @property
    def dropout_mask_count(self) -> int:
        return len(self.GATES)

    # --- data_format at the boundary --------------------------------------------------------------
    def to_last(self, a: Any, channel_axis: int = 1) -> Any:
        """Move the channel axis of a channels_first array or shape to the end."""
        if self.data_format == "channels_last" or a is None:
            return a
        if isinstance(a, tuple):
            return a[:channel_axis] + a[channel_axis + 1:] + (a[channel_axis],)
        return np.moveaxis(a, channel_axis, -1)

    def to_format(self, a: Array, channel_axis: int = 1) -> Array:
        """The inverse of ``to_last``: channels back to ``channel_axis`` for channels_first."""
        return a if self.data_format == "channels_last" else np.moveaxis(a, -1, channel_axis)

    # --- weights and shapes (channels_last inside) ------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """``input_shape``: one step, (B, *spatial, C) or (B, C, *spatial) per data_format."""
        shape = self.to_last(tuple(input_shape))
        if len(shape) != self.rank + 2 or None in shape[1:]:
            raise ValueError(f"{self.name}: input_shape={tuple(input_shape)}, expected (batch, "
                             f"{self.rank} known spatial dims and channels) in {self.data_format}")
        self.spatial_dims = shape[1:-1]
        out = self.output_shape((None, *shape[1:]))
        if min(out[1:-1]) <= 0:
            raise ValueError(f"{self.name}: input_shape={tuple(input_shape)} is smaller than the "
                             f"kernel (kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate})")
        g, dt = 4 * self.filters, self.variable_dtype
        self.kernel = self.kernel_initializer((*self.kernel_size, shape[-1], g), dt)  # (*k, C, 4F)
        self.recurrent_kernel = self.recurrent_initializer((*self.kernel_size, self.filters, g), dt)  # (*k, F, 4F)
        self.bias = self.initial_bias(dt) if self.use_bias else None
        self.built = True
        self.build_input_shape = tuple(input_shape)

    def output_shape(self, step_shape: tuple) -> tuple:
        """h's shape, channels_last: (B, *out_spatial, filters) for a step input (B, *spatial, C)."""
        spatial = [conv_output_size(n, k, s, self.padding, d) for n, k, s, d in
                   zip(step_shape[1:-1], self.kernel_size, self.strides, self.dilation_rate)]
        return (step_shape[0], *spatial, self.filters)

    @property
    def state_size(self) -> list:
        return [self.filters, self.filters]  # channels only; the spatial shape comes from the input

    def get_initial_state(self, batch_size: int, dtype: Any = "float32") -> list[Array]:
        shape = self.output_shape((batch_size, *self.spatial_dims, None))
        return [np.zeros(shape, dtype), np.zeros(shape, dtype)]  # (B, *out_spatial, F): h, c

    def input_op(self, x: Array, kernel: Array) -> Array:
        """conv(x, kernel) for x (..., *spatial, C) with any leading axes (steps, batch)."""
        lead = x.shape[:x.ndim - self.rank - 1]
        flat = x.reshape(-1, *x.shape[len(lead):])  # (N, *spatial, C)
        out = conv(flat, kernel, strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)
        return out.reshape(*lead, *out.shape[1:])

    def recurrent_op(self, h: Array, recurrent_kernel: Array) -> Array:
        return conv(h, recurrent_kernel, strides=(1,) * self.rank, padding="same", dilation_rate=(1,) * self.rank)

    def input_op_vjp(self, x: Array, kernel: Array, d_out: Array) -> tuple[Array, Array]:
        lead = x.shape[:x.ndim - self.rank - 1]
        d_x, d_kernel = conv_vjp(x.reshape(-1, *x.shape[len(lead):]), kernel,
                                 d_out.reshape(-1, *d_out.shape[len(lead):]), strides=self.strides,
                                 padding=self.padding, dilation_rate=self.dilation_rate)
        return d_x.reshape(x.shape), d_kernel

    def recurrent_op_vjp(self, h: Array, recurrent_kernel: Array, d_out: Array) -> tuple[Array, Array]:
        return conv_vjp(h, recurrent_kernel, d_out, strides=(1,) * self.rank, padding="same",
                        dilation_rate=(1,) * self.rank)

    # --- one step, in the cell's data_format --------------------------------------------------------
    def call(self, inputs: Array, states: Any, training: bool = False) -> tuple[Array, Any]:
        inputs = np.asarray(inputs)
        _check_ranks(self.name, "inputs", [inputs], self.step_ndim, "(batch, spatial dims..., channels)")
        _check_ranks(self.name, "states", list(states), self.step_ndim, "(batch, spatial dims..., filters)")
        if not self.built:
            self.build(inputs.shape)
        h, new_states = super().call(self.to_last(inputs), _map(self.to_last, list(states)), training)
        return self.to_format(h), _map(self.to_format, new_states)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["units"]
        return {**config, "rank": self.rank, "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate}


class ConvLSTM(CellLayer, abstract=True):
    """The layer for any rank; use ConvLSTM1D, ConvLSTM2D or ConvLSTM3D."""

    cell_class = ConvLSTMCell
    config_omits = ("rank",)
    rank: int

    def __init__(self, args: dict):
        super().__init__({**args, "rank": self.rank})

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)  # the cell is built from the step shape in data_format
        self._step_shape = self.cell.to_last(self._step_shape)  # the loop runs channels_last

    def compute_output_shape(self, input_shape: Shape) -> Any:
        input_shape = tuple(input_shape)
        step = self.cell.output_shape(self.cell.to_last((input_shape[0], *input_shape[2:])))
        state = step if self.cell.data_format == "channels_last" else (step[0], step[-1], *step[1:-1])
        out = (input_shape[0], input_shape[1], *state[1:]) if self.return_sequences else state
        return (out, state, state) if self.return_state else out

    def get_initial_state(self, batch_size: int, dtype: Any = "float64") -> list:
        return [self.cell.to_format(s) for s in self._zero_states(batch_size, dtype)]  # data_format

    def __call__(self, inputs: Any, mask: Any = None, initial_state: Any = None, training: bool = False,
                 dropout_masks: DropoutMasks | None = None) -> Any:
        x, initial_state, dropout_masks = self.to_loop_layout(inputs, initial_state, dropout_masks)
        out = super().__call__(x, mask=mask, initial_state=initial_state, training=training,
                               dropout_masks=dropout_masks)
        return self.outputs_layout(out, self.cell.to_format)

    def to_loop_layout(self, inputs: Any, initial_state: Any, dropout_masks: DropoutMasks | None) -> tuple:
        """A call's inputs, initial states and dropout masks, checked, moved to channels_last."""
        cell = self.cell
        x = np.asarray(inputs)
        self._check_rank(x.ndim, x.shape)
        if not self.built:
            self.build(x.shape)
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            _check_ranks(self.name, "initial_state", states, self.rank + 2, "(batch, spatial dims..., filters)")
            initial_state = [cell.to_last(np.asarray(s)) for s in states]
        if dropout_masks is not None:  # (4, B, C, *spatial) -> (4, B, *spatial, C)
            dropout_masks = DropoutMasks(*(None if m is None else cell.to_last(np.asarray(m), 2)
                                           for m in dropout_masks))
        return cell.to_last(x, 2), initial_state, dropout_masks

    def outputs_layout(self, out: Any, move: Any) -> Any:
        """``move`` (``cell.to_format`` or ``cell.to_last``) applied to what a call returns (or to
        cotangents of the same structure): the sequence's channel axis is 2, a step's 1."""
        seq_axis = 2 if self.return_sequences else 1
        if not self.return_state:
            return None if out is None else move(out, seq_axis)
        return [None if out[0] is None else move(out[0], seq_axis), *(None if s is None else move(s) for s in out[1:])]


def _check_ranks(name: str, what: str, arrays: list, rank: int, layout: str) -> None:
    """Every array in ``arrays`` must have rank ``rank`` (checked before channels move)."""
    for i, a in enumerate(arrays):
        shape = np.shape(a)
        if len(shape) != rank:
            label = what if len(arrays) == 1 and what == "inputs" else f"{what}[{i}]"
            raise ValueError(f"{name}: {label}.shape={shape}, expected rank {rank} {layout}")


class ConvLSTM1D(ConvLSTM):
    rank = 1

    def __init__(self, filters: int, kernel_size: Any, strides: Any = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: Any = 1, activation: Any = "tanh",
                 recurrent_activation: Any = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", unit_forget_bias: bool = True,
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, **kwargs: Any):
        ConvLSTM.__init__(self, locals())  # explicit: ConvLSTM2D and 3D share this __init__


class ConvLSTM2D(ConvLSTM):
    rank = 2
    __init__ = ConvLSTM1D.__init__


class ConvLSTM3D(ConvLSTM):
    rank = 3
    __init__ = ConvLSTM1D.__init__
