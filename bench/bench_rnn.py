"""Time refimpl against Keras 3 (TensorFlow backend, CPU), torch.nn and the machine's matmul floor, in one run.

For each layer and rung (batch B, timesteps T, features D, units H; return_sequences=True) it
times, forward:
    refimpl       layer(x) in NumPy
    tf.function   tf.function(layer)(x), traced once beforehand
    XLA           tf.function(layer, jit_compile=True)(x), compiled once beforehand
    torch.nn      torch.nn.RNN/LSTM/GRU (CPU, no_grad) with the same sizes, when torch can be run
    floor         the same matmuls alone in NumPy: x @ kernel over all steps at once, then T
                  products h @ recurrent_kernel (ConvLSTM2D: the same as im2col matmuls). No
                  implementation of the recurrence in NumPy can beat it by much.
and backward (the forward pass included, as training pays it): the gradients of <layer(x), c>
with respect to x and every weight (floor: the forward floor plus d_z @ recurrent_kernel.T per
step and the three whole-sequence products for d_x, d_kernel, d_recurrent_kernel). It prints the
best of ``--repeats`` rounds, or of more until each has run 0.5 s in all (at most 50, so that a
burst of noise over a few rounds does not decide a short rung); refimpl, tf.function, XLA and the
floor run round-robin within a round, so machine noise hits them alike; torch runs in its own
rounds just before. Ratios: keras/refimpl (above 1: refimpl faster), refimpl/torch and
refimpl/floor (below: refimpl faster).
Before timing, each rung checks that refimpl and Keras agree. Per rung it also reports
    peak MB       the most memory refimpl's call holds beyond its inputs and outputs (tracemalloc,
                  which sees NumPy's allocations), next to the size of a full (T, B, G*H) projection
    1=N thr       whether refimpl's output is bit-identical with 1 BLAS thread and with all of them
and, after the tables, how the forward pass's time per step grows with T and with B*H^2 against
the floor (refimpl only: no Keras there). The header names the BLAS library, its kernel and its
thread count (threadpoolctl, when installed); OPENBLAS_* settings are read, never set.

    python bench/bench_rnn.py                       # the full ladder, float32, both passes
    python bench/bench_rnn.py --pass forward        # the forward table (and the scaling tables)
    python bench/bench_rnn.py --quick               # three rungs, for a smoke test
    python bench/bench_rnn.py --torch-python /path/to/venv/bin/python   # torch.nn from another venv

torch.nn is imported in-process when it is installed; otherwise ``--torch-python`` (or the
environment variable RNN_BENCH_TORCH_PYTHON) names a Python that has it, and the torch timings run
in a subprocess of that Python (this file again, with ``--torch-worker``), before the Keras rungs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np

# (B, T, D, H); "large" rungs (B*T*D*H >= 64*200*128*256) carry the XLA and torch targets.
LADDER = [(1, 10, 8, 8), (1, 500, 8, 32), (8, 50, 16, 32), (32, 50, 16, 64), (16, 100, 64, 64),
          (32, 200, 64, 128), (64, 10, 128, 256), (64, 200, 128, 256), (64, 500, 128, 256)]
QUICK = [(1, 10, 8, 8), (8, 50, 16, 32), (32, 200, 64, 128)]
LARGE = 64 * 200 * 128 * 256
# ConvLSTM2D: (B, T, image side, channels, filters), kernel 3x3, padding "same".
CONV_LADDER = [(4, 10, 32, 8, 16)]
CONV_QUICK = [(2, 5, 16, 4, 8)]
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3, "ConvLSTM2D": 4}
TORCH = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}  # torch.nn has no ConvLSTM


MIN_SECONDS = 0.5  # rounds go on past --repeats until every function has run this long in all
MAX_ROUNDS = 50  # (so that one burst of host noise cannot cover every round of a short rung)


def _best_seconds(fns: dict, repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    spent = dict.fromkeys(fns, 0.0)
    rounds = 0
    while rounds < repeats or (rounds < MAX_ROUNDS and min(spent.values()) < MIN_SECONDS):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            best[name], spent[name] = min(best[name], seconds), spent[name] + seconds
        rounds += 1
    return best


# --- the rungs ---------------------------------------------------------------------------------------
def _shapes(name: str, rung: tuple) -> tuple[tuple, int]:
    """(the input shape, the layer's units/filters) of a rung."""
    if name == "ConvLSTM2D":
        batch, steps, side, channels, filters = rung
        return (batch, steps, side, side, channels), filters
    batch, steps, features, units = rung
    return (batch, steps, features), units


def _pair(name: str, rung: tuple, dtype: str) -> tuple:
    """(x, a built Keras layer, its refimpl twin with the same weights)."""
    import keras

    import refimpl

    shape, units = _shapes(name, rung)
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(dtype)
    if name == "ConvLSTM2D":
        layer = keras.layers.ConvLSTM2D(units, 3, padding="same", return_sequences=True, dtype=dtype)
    else:
        layer = getattr(keras.layers, name)(units, return_sequences=True, dtype=dtype)
    layer.build(x.shape)
    twin = refimpl.deserialize(keras.layers.serialize(layer))
    twin.set_weights(layer.get_weights())
    return x, layer, twin


def _floor(name: str, rung: tuple, dtype: str, backward: bool) -> Callable[[], None]:
    """The matmuls of one call alone (see the module docstring), on random data of the rung's sizes."""
    rng = np.random.default_rng(2)
    g = GATES[name]
    if name == "ConvLSTM2D":  # im2col: every 3x3 window is a row, one matmul per convolution
        batch, steps, side, channels, filters = rung
        rows, d, h = batch * side * side, 9 * channels, filters
        windows_h = rng.uniform(-1, 1, (rows, 9 * h)).astype(dtype)  # (B*HW, 9F)
        rec_in = 9 * h
    else:
        batch, steps, d, h = rung
        rows, rec_in = batch, h
        windows_h = rng.uniform(-1, 1, (rows, h)).astype(dtype)  # (B, H)
    x = rng.uniform(-1, 1, (steps * rows, d)).astype(dtype)  # (T*B, D), or im2col windows (T*B*HW, 9C)
    kernel = rng.uniform(-1, 1, (x.shape[1], g * h)).astype(dtype)
    recurrent = rng.uniform(-1, 1, (rec_in, g * h)).astype(dtype)
    d_z = rng.uniform(-1, 1, (rows, g * h)).astype(dtype)
    d_zs = rng.uniform(-1, 1, (steps * rows, g * h)).astype(dtype)
    hs = rng.uniform(-1, 1, (steps * rows, rec_in)).astype(dtype)

    def forward() -> None:
        x @ kernel  # (T*B, G*H)
        for _ in range(steps):
            windows_h @ recurrent  # (B, G*H)

    def forward_backward() -> None:
        forward()
        for _ in range(steps):
            d_z @ recurrent.T  # (B, H)
        hs.T @ d_zs  # d recurrent_kernel
        d_zs @ kernel.T  # d x
        x.T @ d_zs  # d kernel
    return forward_backward if backward else forward


def _peak_mb(fn: Callable[[], Any], x: np.ndarray) -> float:
    """The most memory one call of ``fn`` held beyond its inputs (allocated before) and outputs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = sum(np.asarray(o).nbytes for o in (out if isinstance(out, (list, tuple)) else [out]))
    return (peak - kept) / 2**20


def _same_across_threads(fn: Callable[[], Any]) -> str:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "-"
    with threadpool_limits(limits=1):
        one = fn()
    return "yes" if np.array_equal(one, fn()) else "NO"


def bench_rung(name: str, rung: tuple, dtype: str, repeats: int) -> dict[str, Any]:
    import tensorflow as tf

    x, layer, twin = _pair(name, rung, dtype)
    xt = tf.constant(x)
    graph = tf.function(lambda v: layer(v))
    xla = tf.function(lambda v: layer(v), jit_compile=True)
    floor = _floor(name, rung, dtype, backward=False)
    fns = {"refimpl": lambda: twin(x), "tf.function": lambda: graph(xt), "xla": lambda: xla(xt), "floor": floor}
    for fn in fns.values():
        fn()  # warm-up: tracing, compilation, allocator
    out_ref, out_keras = twin(x), np.asarray(graph(xt))
    assert np.allclose(out_ref, out_keras, atol=1e-4), "refimpl and Keras disagree; run the tests"
    t: dict[str, Any] = _best_seconds(fns, repeats)
    t["peak"] = _peak_mb(lambda: twin(x), x)
    t["threads"] = _same_across_threads(lambda: twin(x))
    return t


def bench_rung_backward(name: str, rung: tuple, dtype: str, repeats: int) -> dict[str, Any]:
    import tensorflow as tf

    import refimpl

    x, layer, twin = _pair(name, rung, dtype)
    cot = np.random.default_rng(1).uniform(-1, 1, twin.compute_output_shape(x.shape)).astype(dtype)
    xt, ct = tf.constant(x), tf.constant(cot)

    def tape(v: tf.Tensor) -> list:
        with tf.GradientTape() as t:
            t.watch(v)
            loss = tf.reduce_sum(layer(v) * ct)
        return t.gradient(loss, [v, *layer.trainable_weights])

    graph, xla = tf.function(tape), tf.function(tape, jit_compile=True)
    fns = {"refimpl": lambda: refimpl.vjp(twin, x, cot), "tf.function": lambda: graph(xt),
           "xla": lambda: xla(xt), "floor": _floor(name, rung, dtype, backward=True)}
    for fn in fns.values():
        fn()  # warm-up: tracing, compilation, allocator
    g_ref, g_keras = fns["refimpl"](), [np.asarray(g) for g in graph(xt)]
    # A sanity check that both compute the same thing, not a verdict (the suite gives those, at
    # tolerances.py's tolerances): the ladder's long float32 sequences accumulate more rounding.
    for a, b in zip([g_ref.inputs, *g_ref.weights], g_keras):
        assert np.allclose(a, b, atol=1e-3, rtol=1e-3), "refimpl and Keras gradients disagree; run the tests"
    t: dict[str, Any] = _best_seconds(fns, repeats)
    t["peak"] = _peak_mb(lambda: refimpl.vjp(twin, x, cot).inputs, x)
    t["threads"] = _same_across_threads(lambda: refimpl.vjp(twin, x, cot).inputs)
    return t


# --- torch.nn, in this process or in a worker ----------------------------------------------------------
def torch_times(jobs: list, repeats: int) -> dict:
    """{(layer, rung, pass): best seconds} for torch.nn on CPU, plus "threads": torch's thread count."""
    import torch

    times: dict = {"threads": torch.get_num_threads(), "version": torch.__version__}
    for name, rung, which, dtype in jobs:
        run = _torch_call(torch, name, rung, which, dtype)
        run()  # warm-up
        times[json.dumps([name, list(rung), which])] = _best_seconds({"t": run}, repeats)["t"]
    return times


def _torch_call(torch: Any, name: str, rung: tuple, which: str, dtype: str) -> Callable[[], None]:
    batch, steps, features, units = rung
    module = getattr(torch.nn, TORCH[name])(features, units, batch_first=True).to(getattr(torch, dtype))
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, steps, features)).astype(dtype))
    if which == "forward":
        def run() -> None:
            with torch.no_grad():
                module(x)
        return run
    xg = x.clone().requires_grad_(True)
    cot = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (batch, steps, units)).astype(dtype))

    def run_backward() -> None:
        module.zero_grad(set_to_none=True)
        (module(xg)[0] * cot).sum().backward()
    return run_backward


def _torch_worker() -> int:
    request = json.load(sys.stdin)
    json.dump(torch_times([tuple(j) for j in request["jobs"]], request["repeats"]), sys.stdout)
    return 0


def _torch_all(jobs: list, repeats: int, python: str | None) -> tuple[dict, str]:
    """torch.nn's times for ``jobs`` and a line saying where they came from."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        t = torch_times(jobs, repeats)
        return t, f"torch {t['version']} in-process, {t['threads']} threads"
    if not python:
        return {}, "torch.nn: not installed here (pass --torch-python PYTHON to time it from another venv)"
    request = json.dumps({"jobs": jobs, "repeats": repeats})
    done = subprocess.run([python, os.path.abspath(__file__), "--torch-worker"], input=request, check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        return {}, f"torch.nn: the worker {python} failed: {done.stderr.strip().splitlines()[-1:]}"
    t = json.loads(done.stdout)
    return t, f"torch {t['version']} in a subprocess ({python}), {t['threads']} threads"


# --- the tables ------------------------------------------------------------------------------------------
def _table(title: str, which: str, bench: Any, rungs: list, dtype: str, repeats: int, torch: dict) -> None:
    print(f"\n{title}")
    header = (f"{'layer':<10} {'rung':<22} | {'refimpl ms':>10} {'tf.fn/ref':>9} {'XLA/ref':>8} "
              f"{'torch ms':>9} {'ref/torch':>9} | {'floor ms':>9} {'ref/floor':>9} | {'peak MB':>8} "
              f"{'TBGH MB':>8} {'1=N thr':>7}")
    print(header)
    print("-" * len(header))
    worst = {"fn": float("inf"), "xla": float("inf"), "torch": 0.0, "floor": 0.0}
    for name, rung in rungs:
        t = bench(name, rung, dtype, repeats)
        shape, units = _shapes(name, rung)
        large = name != "ConvLSTM2D" and np.prod(rung) >= LARGE
        r_fn, r_xla, r_floor = t["tf.function"] / t["refimpl"], t["xla"] / t["refimpl"], t["refimpl"] / t["floor"]
        torch_t = torch.get(json.dumps([name, list(rung), which]))
        r_torch = None if torch_t is None else t["refimpl"] / torch_t
        worst["fn"] = min(worst["fn"], r_fn)
        if large:
            worst["xla"] = min(worst["xla"], r_xla)
            worst["floor"] = max(worst["floor"], r_floor)
            worst["torch"] = max(worst["torch"], r_torch or 0.0)
        label = "B{0} T{1} {2}x{2}x{3} F{4}" if name == "ConvLSTM2D" else "B{0} T{1} D{2} H{3}"
        label = label.format(*rung)
        full = shape[1] * shape[0] * int(np.prod(shape[2:-1])) * GATES[name] * units * np.dtype(dtype).itemsize
        print(f"{name:<10} {label + (' *' if large else ''):<22} | {t['refimpl'] * 1e3:>10.2f} {r_fn:>9.2f} "
              f"{r_xla:>8.2f} {'-' if torch_t is None else f'{torch_t * 1e3:.2f}':>9} "
              f"{'-' if r_torch is None else f'{r_torch:.2f}':>9} | {t['floor'] * 1e3:>9.2f} {r_floor:>9.2f} | "
              f"{t['peak']:>8.1f} {full / 2**20:>8.1f} {t['threads']:>7}", flush=True)
    print("-" * len(header))
    line = f"worst rung vs tf.function: {worst['fn']:.2f}x (target >= 1)"
    if worst["floor"]:
        torch_part = f", refimpl/torch {worst['torch']:.2f} (target <= 1.5)" if worst["torch"] else ""
        line += (f"   large rungs (*): vs XLA {worst['xla']:.2f}x (target >= 1), refimpl/floor "
                 f"{worst['floor']:.2f} (target <= 1.3){torch_part}")
    print(line)


def _scaling(dtype: str, repeats: int) -> None:
    """Forward LSTM time per step against T (should be flat) and against B*H^2 (should track the floor)."""
    import refimpl

    def per_step(batch: int, steps: int, features: int, units: int) -> tuple[float, float]:
        layer = refimpl.LSTM(units, return_sequences=True, dtype=dtype)
        x = np.random.default_rng(0).uniform(-1, 1, (batch, steps, features)).astype(dtype)
        layer(x)
        t = _best_seconds({"refimpl": lambda: layer(x),
                           "floor": _floor("LSTM", (batch, steps, features, units), dtype, False)}, repeats)
        return t["refimpl"] / steps * 1e6, t["floor"] / steps * 1e6

    print("\nscaling, LSTM forward, time per step (µs): linear in T means flat down the first table")
    print(f"{'B':>3} {'T':>4} {'D':>4} {'H':>4} | {'refimpl':>9} {'floor':>9} {'ref/floor':>9}")
    for steps in (25, 50, 100, 200, 400):
        ref, flo = per_step(32, steps, 64, 128)
        print(f"{32:>3} {steps:>4} {64:>4} {128:>4} | {ref:>9.1f} {flo:>9.1f} {ref / flo:>9.2f}", flush=True)
    print(f"\n{'B':>3} {'H':>4} {'B*H^2':>9} | {'refimpl':>9} {'floor':>9} {'ref/floor':>9}   (T 100, D 64)")
    for batch, units in ((1, 32), (4, 64), (16, 64), (16, 128), (64, 128), (32, 256), (64, 256)):
        ref, flo = per_step(batch, 100, 64, units)
        print(f"{batch:>3} {units:>4} {batch * units * units:>9} | {ref:>9.1f} {flo:>9.1f} {ref / flo:>9.2f}",
              flush=True)


def _blas_line() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed (pip install threadpoolctl to name the kernel and threads)"
    pools = [f"{p.get('internal_api')} {p.get('version')} kernel {p.get('architecture', '?')}, "
             f"{p.get('num_threads')} threads" for p in threadpool_info() if p.get("user_api") == "blas"]
    env = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_"))
    return "BLAS: " + ("; ".join(pools) or "none found") + (f" ({env})" if env else "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="three rungs per layer, one ConvLSTM2D rung, no scaling")
    p.add_argument("--layers", nargs="+", default=["SimpleRNN", "LSTM", "GRU", "ConvLSTM2D"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--pass", dest="which", default="both", choices=["forward", "backward", "both"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--torch-python", default=os.environ.get("RNN_BENCH_TORCH_PYTHON"),
                   help="a Python with torch, when torch is not installed here")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling tables")
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.torch_worker:
        return _torch_worker()
    unknown = sorted(set(args.layers) - set(GATES))
    if unknown:
        p.error(f"--layers {unknown}: expected some of {sorted(GATES)}")

    rungs = [(name, rung) for name in args.layers
             for rung in ((CONV_QUICK if args.quick else CONV_LADDER) if name == "ConvLSTM2D"
                          else (QUICK if args.quick else LADDER))]
    passes = ["forward", "backward"] if args.which == "both" else [args.which]
    jobs = [(name, rung, which, args.dtype) for which in passes for name, rung in rungs if name in TORCH]
    torch, torch_line = _torch_all(jobs, args.repeats, args.torch_python) if jobs else ({}, "torch.nn: no rungs")

    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each rung traces its own tf.function: retracing is intended
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, {args.dtype}, return_sequences=True, best of {args.repeats}+ rounds "
          f"(until each has run {MIN_SECONDS} s, at most {MAX_ROUNDS})")
    print(_blas_line())
    print(torch_line)
    print("ratios: tf.fn/ref and XLA/ref above 1, ref/torch and ref/floor below 1: refimpl is faster; "
          "* marks the large rungs")
    if "forward" in passes:
        _table("forward: one call", "forward", bench_rung, rungs, args.dtype, args.repeats, torch)
    if "backward" in passes:
        _table("backward: one call and the gradients of <output, c> for x and every weight", "backward",
               bench_rung_backward, rungs, args.dtype, args.repeats, torch)
    if "forward" in passes and not args.quick and not args.no_scaling:
        _scaling(args.dtype, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
