"""N-D convolution (cross-correlation, as every deep-learning library means it) in NumPy alone.

Matches ``keras.ops.conv`` with the TensorFlow backend, channels_last:

    x (N, *spatial, C) and kernel (*kernel_size, C, F)  ->  (N, *out_spatial, F)
    out[n, p, f] = sum over k, c of  x[n, p * strides + k * dilation_rate, c] * kernel[k, c, f]

"valid" uses no padding: out = floor((size - (k - 1) * d - 1) / s) + 1.
"same" pads so that out = ceil(size / s), with the extra padding after (TensorFlow's rule):
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0),  before = total // 2.

The windows are strided views of the padded input; one ``tensordot`` contracts them with the kernel
(im2col: one row of kernel_size * C values per output position, one matmul).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from refimpl._typing import Array


def conv_output_size(size: int, kernel: int, stride: int, padding: str, dilation: int) -> int:
    extent = (kernel - 1) * dilation + 1
    if padding == "same":
        return math.ceil(size / stride)
    return (size - extent) // stride + 1


def _windows(x: Array, ksize: Sequence[int], *, strides: Sequence[int], padding: str,
             dilation_rate: Sequence[int]) -> tuple[Array, Array, list]:
    """(padded x (N, *padded, C), its windows (N, *out_spatial, *kernel_size, C) as a strided view,
    the (before, after) padding per spatial axis)."""
    rank = len(ksize)
    extents = [(k - 1) * d + 1 for k, d in zip(ksize, dilation_rate)]
    pads = [(0, 0)] * rank
    if padding == "same":
        pads = []
        for size, extent, s in zip(x.shape[1:-1], extents, strides):
            total = max((math.ceil(size / s) - 1) * s + extent - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    windows = sliding_window_view(x, extents, axis=tuple(range(1, rank + 1)))  # (N, *positions, C, *extents)
    take = (slice(None), *(slice(None, None, s) for s in strides), slice(None),
            *(slice(None, None, d) for d in dilation_rate))
    # C last, so that a window's row (kernel offsets, then C) copies in runs of k * C contiguous
    # elements and lines up with kernel's own memory order; contracting C first is 2x slower.
    return x, np.moveaxis(windows[take], rank + 1, -1), pads


def conv(x: Array, kernel: Array, *, strides: Sequence[int], padding: str, dilation_rate: Sequence[int]) -> Array:
    """channels_last N-D convolution of x (N, *spatial, C) with kernel (*kernel_size, C, F)."""
    rank = kernel.ndim - 2
    _, windows, _ = _windows(x, kernel.shape[:rank], strides=strides, padding=padding, dilation_rate=dilation_rate)
    window_axes = list(range(rank + 1, 2 * rank + 2))  # (N, *out_spatial, *kernel_size, C)
    return np.tensordot(windows, kernel, axes=(window_axes, list(range(rank + 1))))  # (N, *out_spatial, F)


def conv_vjp(x: Array, kernel: Array, d_out: Array, *, strides: Sequence[int], padding: str,
             dilation_rate: Sequence[int]) -> tuple[Array, Array]:
    """The backward of ``conv``: (d x (N, *spatial, C), d kernel (*kernel_size, C, F)) from d_out
    (N, *out_spatial, F). d kernel = windows.T @ d_out (the im2col rows again); kernel offset k
    read the strided slice x[p * s + k * d], so d_out @ kernel[k].T is added back onto that slice
    (the transposed convolution)."""
    rank = kernel.ndim - 2
    ksize, out, channels, filters = kernel.shape[:rank], d_out.shape[1:-1], kernel.shape[-2], kernel.shape[-1]
    xp, windows, pads = _windows(x, ksize, strides=strides, padding=padding, dilation_rate=dilation_rate)
    d_flat = d_out.reshape(-1, filters)  # (N * out, F)
    d_kernel = (windows.reshape(d_flat.shape[0], -1).T @ d_flat).reshape(kernel.shape)  # (*k, C, F)
    per_offset = kernel.reshape(-1, channels, filters).transpose(0, 2, 1)  # (K, F, C)
    d_windows = np.matmul(d_flat, per_offset)  # (K, N * out, C): one slice per offset, contiguous
    d_xp = np.zeros_like(xp)
    for d_slice, offset in zip(d_windows, np.ndindex(*ksize)):
        where = (slice(None), *(slice(k * d, k * d + (n - 1) * s + 1, s)
                                for k, d, n, s in zip(offset, dilation_rate, out, strides)), slice(None))
        d_xp[where] += d_slice.reshape(*d_out.shape[:-1], channels)
    crop = (slice(None), *(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[1:-1])), slice(None))
    return d_xp[crop], d_kernel
