"""Named tolerances, per dtype. The only place a comparison threshold is written.

A case passes when every element satisfies |actual - expected| <= atol + rtol * max|expected|,
the maximum taken over that output array: rounding in a recurrence scales with the magnitudes that
flow through it, so a small element of a large-valued sequence gets the sequence's allowance.
Cases run at most 12 steps, with weights uniform in [-0.6, 0.6] and inputs in [-1, 1], so hidden
values stay O(1) (the exponential activation reaches ~10) and absolute error is the natural measure.
Measured worst errors over the matrix are printed by ``rnn-conformance verify``.
"""

from __future__ import annotations

from typing import NamedTuple


class Tolerance(NamedTuple):
    atol: float
    rtol: float


TOLERANCES: dict[str, Tolerance] = {
    # float64 (eps 2.2e-16): Keras/TensorFlow (Eigen) and NumPy (OpenBLAS) sum matmul products in
    # different orders and use different exp/tanh kernels, a few ulps per step that the
    # recurrence carries forward. Measured worst over the matrix: 1.1e-13 (exponential
    # activation, values ~10); 1e-12 is the project's target and leaves 10x room. rtol: linear
    # or relu activations on a linear recurrence grow without bound (the fuzzer reached 7e7, off
    # by 7e-15 relative; a ConvLSTM3D sequence peaking at 18 was off by 1.2e-12 in a 0.09 element),
    # where only error relative to the sequence's scale means anything; for the matrix's O(1)
    # values it adds at most ~1e-11.
    "float64": Tolerance(atol=1e-12, rtol=1e-12),
    # float32 (eps 1.2e-7): the same reordering. Measured worst: 2.4e-7 (2 ulps at 1.0). 1e-6 is
    # ~8 ulps at 1.0; rtol covers the few outputs above 1.
    "float32": Tolerance(atol=1e-6, rtol=1e-6),
    # float16 (eps 9.8e-4): both sides compute in float16, but the rounding points differ (fused
    # vs separate adds, activation kernels), and a one-ulp difference in a state feeds every later
    # step. Measured worst: 2.0e-3 (2 ulps at 1.0). 5e-3 is ~5 ulps at 1.0.
    "float16": Tolerance(atol=5e-3, rtol=5e-3),
    # bfloat16 (eps 7.8e-3; mixed_bfloat16 and bfloat16 policies): TensorFlow rounds to bfloat16
    # after every operation, refimpl computes each step in float32 and rounds its output and states
    # (NumPy's bfloat16 arithmetic is float32's). Measured worst: 7.8e-3 (one ulp in [1, 2)).
    # 2e-2 is ~2.5 ulps at 1.0.
    "bfloat16": Tolerance(atol=2e-2, rtol=2e-2),
}

# Gradients (the backward pass, tf.GradientTape against refimpl.vjp), per dtype. A weight's gradient
# is a sum over every batch row, time step (and ConvLSTM position) of products that the backward
# recurrence carries, so its rounding grows with the number of terms (up to ~960 for the ConvLSTM3D
# cases) on top of the forward pass's. Measured worst over the canonical set (`rnn-conformance
# verify`): float64 4.2e-12 on gradients of magnitude 382 (an exponential activation; 1e-14
# relative), else <= 2.5e-14; float32 5.3e-6 on magnitude 6.6; float16 0.037 on magnitude 7.1.
GRADIENTS: dict[str, Tolerance] = {
    # float64: the target, 1e-10, leaves ~4000x room over the O(1)-magnitude worst (2.5e-14).
    "float64": Tolerance(atol=1e-10, rtol=1e-10),
    # float32 (eps 1.2e-7): ~40 ulps of an O(1) sum of hundreds of terms; measured 5.3e-6 at scale 6.6.
    "float32": Tolerance(atol=1e-5, rtol=1e-5),
    # float16 (eps 9.8e-4): float16 accumulators over ~1000 terms, eps * sqrt(1000) * scale ~ 0.03;
    # measured 0.037 at scale 7.1, which atol 0.02 + rtol 0.01 * 7.1 = 0.091 covers.
    "float16": Tolerance(atol=2e-2, rtol=1e-2),
    # bfloat16: as for the outputs, plus the sums above; measured 0.023 at magnitude 2.45 (~1.5 ulps).
    "bfloat16": Tolerance(atol=3e-2, rtol=2e-2),
}

# refimpl's gradients against central differences of refimpl's own float64 forward pass (eps 1e-6):
# the truncation error is O(eps^2) ~ 1e-12 and the rounding error ~ 1e-16 * |loss| / eps ~ 1e-10
# relative; 1e-6 relative (1e-7 absolute near zero) leaves room above both and still catches any
# real mistake, which is O(1).
FINITE_DIFFERENCES = Tolerance(atol=1e-7, rtol=1e-6)

# One activation evaluated once, compared after dividing by max(1, |expected|): only the two
# libraries' kernels differ (TensorFlow's vs NumPy's exp/tanh/log1p), within a few ulps.
ELEMENTWISE: dict[str, Tolerance] = {
    "float64": Tolerance(atol=1e-15, rtol=0.0),  # ~4.5 ulps at 1.0
    "float32": Tolerance(atol=2e-6, rtol=0.0),  # ~16 ulps at 1.0: TF's float32 tanh/exp are approximations
}

# One activation's derivative, compared as ELEMENTWISE (float64): it chains up to three kernels
# (the activation, an exp or tanh inside it, a product with the cotangent) and TensorFlow's gradient
# formulas differ from refimpl's in form (SeluGrad works from the output), so the few-ulp errors add.
DERIVATIVE = Tolerance(atol=1e-14, rtol=0.0)  # ~45 ulps at 1.0

# One N-D convolution (at most 3*3*3 kernel offsets x 3 channels = 81 products per output),
# refimpl's tensordot against TensorFlow's kernel: summation order only.
CONVOLUTION = Tolerance(atol=1e-14, rtol=0.0)

# refimpl against itself after a transformation that regroups the same sums (a batch row alone
# instead of in a batch, a sequence in chunks, channels moved, cells chained as layers): BLAS may
# block the matmuls differently, a few ulps of O(1) values carried through <= 8 steps.
REARRANGED = Tolerance(atol=1e-13, rtol=0.0)


def tolerance_for(dtype: str, *, gradients: bool = False) -> Tolerance:
    table = GRADIENTS if gradients else TOLERANCES
    if dtype not in table:
        raise ValueError(f"dtype={dtype!r}, expected one of {sorted(table)}")
    return table[dtype]
