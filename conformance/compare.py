"""Compare an implementation's outputs with the oracle's: count, shape, dtype, then values.

The dtype each output must have is the dtype the oracle returned it in (usually the case's; a
float64 Bidirectional around a float32 LSTM returns a float64 output and float32 states).

A failure names the first thing that differs; for values it gives the worst element (output
index and array index), its absolute and relative error, and the tolerance that was applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from conformance.tolerances import Tolerance

Array = np.ndarray


@dataclass
class Comparison:
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: tuple | None = None  # (output number, index within it)
    message: str = ""
    expected_value: float | None = None
    actual_value: float | None = None


def compare(expected: list[Array], actual: list[Array], tol: Tolerance, labels: list[str] | None = None) -> Comparison:
    """``labels``: a name for each array in messages (default ``outputs[k]``)."""
    if len(actual) != len(expected):
        what = "outputs" if labels is None else "arrays"
        return Comparison(False, message=f"len({what})={len(actual)}, but should be {len(expected)}")
    name = (lambda k: f"outputs[{k}]") if labels is None else labels.__getitem__
    for k, (e, a) in enumerate(zip(expected, actual)):
        if a.shape != e.shape:
            return Comparison(False, message=f"{name(k)}.shape={a.shape}, but should be {e.shape}")
        if a.dtype != e.dtype:
            return Comparison(False, message=f"{name(k)}.dtype={a.dtype}, but should be {e.dtype}")
    result = Comparison(True)
    worst_excess = -np.inf
    for k, (e, a) in enumerate(zip(expected, actual)):
        e64, a64 = e.astype(np.float64), a.astype(np.float64)
        err = np.abs(a64 - e64)
        err = np.where(np.isnan(a64) & np.isnan(e64), 0.0, err)  # NaN where both are NaN agrees
        err = np.where(np.isnan(err), np.inf, err)
        if not err.size:
            continue
        # rtol scales with the largest value in this output: rounding in a recurrence grows with
        # the magnitudes that flow through it, not with the (possibly small) element itself.
        scale = float(np.nanmax(np.abs(e64))) if np.isfinite(e64).any() else 0.0
        excess = err - (tol.atol + tol.rtol * scale)
        idx = np.unravel_index(int(np.argmax(excess)), err.shape)
        if excess[idx] > worst_excess:
            worst_excess = float(excess[idx])
            result.worst = (k, tuple(int(i) for i in idx))
            result.expected_value, result.actual_value = float(e64[idx]), float(a64[idx])
        if err.max() > result.max_abs:
            result.max_abs = float(err.max())
            rel = err / np.maximum(np.abs(e64), np.finfo(np.float64).tiny)
            result.max_rel = float(rel.max())
    if worst_excess > 0:
        k, idx = result.worst
        err = abs(result.actual_value - result.expected_value)
        result.ok = False
        result.message = (f"{name(k)}[{', '.join(map(str, idx))}]={result.actual_value!r}, but should "
                          f"be {result.expected_value!r} (abs err {err:.3g} > atol {tol.atol:g} + rtol "
                          f"{tol.rtol:g}*max|expected|)")
    return result
