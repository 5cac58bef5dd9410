"""N-D convolution (cross-correlation, as every deep-learning library means it) in NumPy alone.

Matches ``keras.ops.conv`` with the TensorFlow backend, channels_last:

    x (N, *spatial, C) and kernel (*kernel_size, C, F)  ->  (N, *out_spatial, F)
    out[n, p, f] = sum over k, c of  x[n, p * strides + k * dilation_rate, c] * kernel[k, c, f]

"valid" uses no padding: out = floor((size - (k - 1) * d - 1) / s) + 1.
"same" pads so that out = ceil(size / s), with the extra padding after (TensorFlow's rule):
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0),  before = total // 2.

The windows are strided views of the padded input; one ``tensordot`` contracts them with the kernel.
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


def conv(x: Array, kernel: Array, *, strides: Sequence[int], padding: str, dilation_rate: Sequence[int]) -> Array:
    """channels_last N-D convolution of x (N, *spatial, C) with kernel (*kernel_size, C, F)."""
    rank = kernel.ndim - 2
    sizes, ksize = x.shape[1:-1], kernel.shape[:rank]
    extents = [(k - 1) * d + 1 for k, d in zip(ksize, dilation_rate)]
    if padding == "same":
        pads = []
        for size, extent, s in zip(sizes, extents, strides):
            total = max((math.ceil(size / s) - 1) * s + extent - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    spatial = tuple(range(1, rank + 1))
    windows = sliding_window_view(x, extents, axis=spatial)  # (N, *positions, C, *extents)
    take = (slice(None), *(slice(None, None, s) for s in strides), slice(None),
            *(slice(None, None, d) for d in dilation_rate))
    windows = windows[take]  # (N, *out_spatial, C, *kernel_size)
    window_axes = [rank + 1, *range(rank + 2, 2 * rank + 2)]  # C, then the kernel offsets
    kernel_axes = [rank, *range(rank)]
    return np.tensordot(windows, kernel, axes=(window_axes, kernel_axes))  # (N, *out_spatial, F)


def conv_vjp(x: Array, kernel: Array, d_out: Array, *, strides: Sequence[int], padding: str,
             dilation_rate: Sequence[int]) -> tuple[Array, Array]:
    """The backward of ``conv``: (d x (N, *spatial, C), d kernel (*kernel_size, C, F)) from d_out
    (N, *out_spatial, F). Each kernel offset k read the strided slice x[p * s + k * d]; its
    gradient d_out @ kernel[k].T is added back onto that slice (the transposed convolution), and
    d kernel[k] = that slice.T @ d_out."""
    rank = kernel.ndim - 2
    sizes, ksize, out = x.shape[1:-1], kernel.shape[:rank], d_out.shape[1:-1]
    pads = [(0, 0)] * rank
    if padding == "same":
        pads = []
        for size, k, s, d in zip(sizes, ksize, strides, dilation_rate):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])  # (N, *padded, C)
    d_xp = np.zeros_like(xp)
    d_kernel = np.zeros_like(kernel)
    for offset in np.ndindex(*ksize):
        where = (slice(None), *(slice(k * d, k * d + (n - 1) * s + 1, s)
                                for k, d, n, s in zip(offset, dilation_rate, out, strides)), slice(None))
        d_xp[where] += np.tensordot(d_out, kernel[offset], axes=([-1], [-1]))  # (N, *out, C)
        d_kernel[offset] = np.tensordot(xp[where], d_out, axes=(list(range(rank + 1)), list(range(rank + 1))))
    crop = (slice(None), *(slice(lo, lo + n) for (lo, _), n in zip(pads, sizes)), slice(None))
    return d_xp[crop], d_kernel
