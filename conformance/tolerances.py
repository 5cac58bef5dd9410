"""Named tolerances, per dtype. The only place a comparison threshold is written.

A case passes when every element satisfies |actual - expected| <= atol + rtol * |expected|.
The cases run at most 12 steps with weights of magnitude <= 0.6 and inputs in [-1, 1], so hidden
values stay O(1) and absolute error is the meaningful measure.
"""

from __future__ import annotations

from typing import NamedTuple


class Tolerance(NamedTuple):
    atol: float
    rtol: float


TOLERANCES: dict[str, Tolerance] = {
    # float64: Keras (Eigen) and NumPy (OpenBLAS) sum the matmul products in different orders and
    # use different tanh/exp kernels; each step adds a few ulps (2.2e-16) and the recurrence carries
    # them forward. Measured worst case over the matrix is ~1e-15; 1e-12 is the project's target.
    "float64": Tolerance(atol=1e-12, rtol=0.0),
    # float32: the same reordering at eps=1.2e-7. Per step ~10 ulps (matmul over <=16 terms plus
    # activations); over 12 steps with gain < 1 that stays under ~2e-6. 1e-5 leaves room for
    # exponential/softplus paths whose outputs reach ~3.
    "float32": Tolerance(atol=1e-5, rtol=1e-5),
    # float16: eps=9.8e-4. TensorFlow accumulates float16 matmuls and activations in float32 and
    # rounds once; NumPy rounds every intermediate to float16. Each step can differ by a few
    # half-ulps of O(1) values (~2e-3) and the recurrence carries it; 1e-2 absolute, 1e-2 relative.
    "float16": Tolerance(atol=1e-2, rtol=1e-2),
}


def tolerance_for(dtype: str) -> Tolerance:
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype={dtype!r}, expected one of {sorted(TOLERANCES)}")
    return TOLERANCES[dtype]
