"""Time refimpl against Keras 3 (TensorFlow backend, CPU) on a ladder of sizes, in one run.

For each layer and rung (batch B, timesteps T, units U; features = U) it times, forward:
    refimpl       layer(x) in NumPy
    keras eager   layer(x)
    tf.function   tf.function(layer)(x), traced once beforehand
    XLA           tf.function(layer, jit_compile=True)(x), compiled once beforehand
and backward (the forward pass included, as training pays it): the gradients of <layer(x), c>
with respect to x and every weight, for a fixed cotangent c,
    refimpl       refimpl.vjp(layer, x, c)
    keras eager   tf.GradientTape around layer(x), then tape.gradient
    tf.function   the same, traced once beforehand
    XLA           the same with jit_compile=True, compiled once beforehand
and prints the best of ``--repeats`` rounds (the four variants run round-robin within a round, so
machine noise hits them alike; the minimum is the least noisy estimate of what each costs) and the
ratios keras/refimpl (above 1: refimpl faster). Before timing, each rung checks that refimpl and
Keras agree (outputs, and gradients for the backward pass).

    python bench/bench_rnn.py                       # the full ladder, float32, both passes
    python bench/bench_rnn.py --pass backward       # the backward table only
    python bench/bench_rnn.py --quick               # three rungs, for a smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

LADDER = [(1, 10, 8), (1, 500, 8), (8, 50, 32), (16, 100, 64), (32, 200, 128), (64, 10, 256),
          (64, 100, 256), (64, 500, 256)]
QUICK = [(1, 10, 8), (8, 50, 32), (32, 200, 128)]


def _best_seconds(fns: dict, repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _pair(name: str, batch: int, steps: int, units: int, dtype: str) -> tuple:
    """(x, a built Keras layer, its refimpl twin with the same weights)."""
    import keras

    import refimpl

    x = np.random.default_rng(0).uniform(-1, 1, (batch, steps, units)).astype(dtype)
    layer = getattr(keras.layers, name)(units, dtype=dtype)
    layer.build(x.shape)
    twin = refimpl.deserialize(keras.layers.serialize(layer))
    twin.set_weights(layer.get_weights())
    return x, layer, twin


def bench_rung(name: str, batch: int, steps: int, units: int, dtype: str, repeats: int) -> dict[str, float]:
    import tensorflow as tf

    x, layer, twin = _pair(name, batch, steps, units, dtype)
    xt = tf.constant(x)
    graph = tf.function(lambda v: layer(v))
    xla = tf.function(lambda v: layer(v), jit_compile=True)
    for fn in (lambda: twin(x), lambda: layer(xt), lambda: graph(xt), lambda: xla(xt)):
        fn()  # warm-up: tracing, compilation, allocator
    out_ref, out_keras = twin(x), np.asarray(graph(xt))
    assert np.allclose(out_ref, out_keras, atol=1e-4), "refimpl and Keras disagree; run the tests"
    return _best_seconds({"refimpl": lambda: twin(x), "eager": lambda: layer(xt),
                          "tf.function": lambda: graph(xt), "xla": lambda: xla(xt)}, repeats)


def bench_rung_backward(name: str, batch: int, steps: int, units: int, dtype: str, repeats: int) -> dict[str, float]:
    import tensorflow as tf

    import refimpl

    x, layer, twin = _pair(name, batch, steps, units, dtype)
    cot = np.random.default_rng(1).uniform(-1, 1, (batch, units)).astype(dtype)
    xt, ct = tf.constant(x), tf.constant(cot)

    def tape(v: tf.Tensor) -> list:
        with tf.GradientTape() as t:
            t.watch(v)
            loss = tf.reduce_sum(layer(v) * ct)
        return t.gradient(loss, [v, *layer.trainable_weights])

    graph, xla = tf.function(tape), tf.function(tape, jit_compile=True)
    fns = {"refimpl": lambda: refimpl.vjp(twin, x, cot), "eager": lambda: tape(xt),
           "tf.function": lambda: graph(xt), "xla": lambda: xla(xt)}
    for fn in fns.values():
        fn()  # warm-up: tracing, compilation, allocator
    g_ref, g_keras = fns["refimpl"](), [np.asarray(g) for g in graph(xt)]
    # A sanity check that both compute the same thing, not a verdict (the suite gives those, at
    # tolerances.py's tolerances): the ladder's long float32 sequences accumulate more rounding.
    for a, b in zip([g_ref.inputs, *g_ref.weights], g_keras):
        assert np.allclose(a, b, atol=1e-3, rtol=1e-3), "refimpl and Keras gradients disagree; run the tests"
    return _best_seconds(fns, repeats)


def _table(title: str, bench: Any, layers: list[str], ladder: list, dtype: str, repeats: int) -> None:
    print(f"\n{title}")
    header = (f"{'layer':<10} {'B':>3} {'T':>4} {'U':>4} | {'refimpl ms':>10} {'eager ms':>9} "
              f"{'tf.fn ms':>9} {'XLA ms':>8} | {'eager/ref':>9} {'tf.fn/ref':>9} {'XLA/ref':>8}")
    print(header)
    print("-" * len(header))
    worst_fn = worst_xla = float("inf")
    for name in layers:
        for batch, steps, units in ladder:
            t = bench(name, batch, steps, units, dtype, repeats)
            r_eager, r_fn, r_xla = (t[k] / t["refimpl"] for k in ("eager", "tf.function", "xla"))
            worst_fn, worst_xla = min(worst_fn, r_fn), min(worst_xla, r_xla)
            print(f"{name:<10} {batch:>3} {steps:>4} {units:>4} | {t['refimpl'] * 1e3:>10.2f} "
                  f"{t['eager'] * 1e3:>9.2f} {t['tf.function'] * 1e3:>9.2f} {t['xla'] * 1e3:>8.2f} | "
                  f"{r_eager:>9.2f} {r_fn:>9.2f} {r_xla:>8.2f}", flush=True)
    print("-" * len(header))
    print(f"slowest rung vs tf.function: {worst_fn:.2f}x   vs XLA: {worst_xla:.2f}x   "
          "(ratios above 1: refimpl is faster)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="three rungs only")
    p.add_argument("--layers", nargs="+", default=["SimpleRNN", "LSTM", "GRU"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--pass", dest="which", default="both", choices=["forward", "backward", "both"])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each rung traces its own tf.function: retracing is intended
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs, {args.dtype}, best of {args.repeats} rounds")
    ladder = QUICK if args.quick else LADDER
    if args.which in ("forward", "both"):
        _table("forward: one call", bench_rung, args.layers, ladder, args.dtype, args.repeats)
    if args.which in ("backward", "both"):
        _table("backward: one call and the gradients of <output, c> for x and every weight",
               bench_rung_backward, args.layers, ladder, args.dtype, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
