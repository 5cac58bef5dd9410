"""Gradients of a Keras layer's calls, on each backend's own autodiff.

For a recorded call sequence (calls, RESET between calls of a stateful layer) and one cotangent per
output, the loss is  sum over every output o of every call of <o, cotangent(o)>  and ``gradients``
returns its gradient with respect to each call's inputs, each call's initial states (when given)
and every trainable weight (in ``get_weights()`` order):

    tensorflow   tf.GradientTape around the calls (Keras 3, and tf-keras)
    torch        torch.autograd.grad: inputs and states as tensors that require grad
    jax          jax.vjp of the calls written as a function of inputs, states and weights
                 (``layer.stateless_call``, the stateful layer's state variables carried by hand)

A stateful layer's stored states are variables that each call assigns: gradients do not flow
through them from one call into the next, on any backend. Arrays come and go in the case's layout
(``layout``: channels_first cases run channels_last in the oracle).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from conformance.recorded import RESET

Array = np.ndarray


class Gradients(dict):
    """{"inputs": [per call], "initial_state": [per call: the states' gradients, or None],
    "weights": [...]}, NumPy arrays, nested as given."""


def gradients(oracle: Any, layer: Any, calls: list, cotangent: Callable[[int, Array], Array], *,
              training: bool, dtype: str, layout: Any) -> tuple[list[Array], list[Array], Gradients]:
    """(every output, the cotangents used, the gradients). ``cotangent(k, output)`` gives the k-th
    output's cotangent (drawn, or as recorded), in the case's layout."""
    backend = oracle.keras.backend.backend() if hasattr(oracle.keras.backend, "backend") else "tensorflow"
    run = {"tensorflow": _tensorflow, "torch": _torch, "jax": _jax}[backend]
    return run(oracle, layer, calls, cotangent, training=training, dtype=dtype, layout=layout)


def _call_kwargs(oracle: Any, call: dict, training: bool, initial_state: Any) -> dict:
    kwargs: dict[str, Any] = {"training": training}
    if call["mask"] is not None:
        kwargs["mask"] = oracle.tensor(call["mask"])
    if initial_state is not None:
        kwargs["initial_state"] = initial_state
    return kwargs


def _flat(tree: Any) -> list:
    return [x for t in tree for x in _flat(t)] if isinstance(tree, (list, tuple)) else [tree]


def _pack(structure: Any, flat: list) -> Any:
    items = iter(flat)

    def build(s: Any) -> Any:
        return [build(x) for x in s] if isinstance(s, (list, tuple)) else next(items)
    return build(structure)


def _reset(layer: Any) -> None:
    (layer.reset_state if hasattr(layer, "reset_state") else layer.reset_states)()  # Keras 3 / 2


def _imperative(oracle: Any, layer: Any, calls: list, cotangent: Callable, *, training: bool, dtype: str,
                layout: Any, source: Callable[[Array], Any], to_float64: Callable[[Any], Any],
                to_numpy: Callable[[Any], Array], total: Callable[[Any], Any]) -> tuple[list, list, Any, list, list]:
    """The calls, with inputs and states made differentiable by ``source``; returns (outputs,
    cotangents, the loss, the input tensors, the state tensors per call)."""
    outputs, cotangents, xs, inits, loss = [], [], [], [], 0.0
    for call in calls:
        if call == RESET:
            _reset(layer)
            continue
        x = source(layout.to_oracle(call["inputs"], 2).astype(dtype))
        init = None
        if call["initial_state"] is not None:
            init = _pack(call["initial_state"], [source(s.astype(dtype)) for s in _flat(layout.state_to_oracle(call["initial_state"]))])
        xs.append(x)
        inits.append(init)
        for o in _flat(layer(x, **_call_kwargs(oracle, call, training, init))):
            value = layout.from_oracle(to_numpy(o))
            cot = cotangent(len(cotangents), value)
            loss = loss + total(to_float64(o) * to_float64(source(layout.output_to_oracle(cot), grad=False)))
            outputs.append(value)
            cotangents.append(cot)
    return outputs, cotangents, loss, xs, inits


def _assemble(layer: Any, layout: Any, xs_grads: list, inits: list, init_grads: list, weight_grads: list,
              xs: list, weights: list, to_numpy: Callable[[Any], Array]) -> Gradients:
    def value(g: Any, like: Any) -> Array:
        return np.zeros(tuple(like.shape), str(np.asarray(to_numpy(like)).dtype)) if g is None else to_numpy(g)
    flat_inits = [t for init in inits if init is not None for t in _flat(init)]
    init_values = iter([layout.from_oracle(value(g, t)) for g, t in zip(init_grads, flat_inits)])
    return Gradients(
        inputs=[layout.from_oracle(value(g, x)) for g, x in zip(xs_grads, xs)],
        initial_state=[None if init is None else _pack(init, [next(init_values) for _ in _flat(init)]) for init in inits],
        weights=[value(g, w) for g, w in zip(weight_grads, weights)])


def _tensorflow(oracle: Any, layer: Any, calls: list, cotangent: Callable, *, training: bool, dtype: str,
                layout: Any) -> tuple:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        def source(a: Array, grad: bool = True) -> Any:
            t = tf.constant(a)
            if grad:
                tape.watch(t)
            return t

        outputs, cotangents, loss, xs, inits = _imperative(
            oracle, layer, calls, cotangent, training=training, dtype=dtype, layout=layout, source=source,
            to_float64=lambda t: tf.cast(t, tf.float64), to_numpy=lambda t: np.asarray(t), total=tf.reduce_sum)
    flat_inits = [t for init in inits if init is not None for t in _flat(init)]
    weights = list(layer.trainable_weights)
    g_xs, g_inits, g_weights = tape.gradient(loss, [xs, flat_inits, weights])
    return outputs, cotangents, _assemble(layer, layout, g_xs, inits, g_inits, g_weights, xs, weights, np.asarray)


def _torch(oracle: Any, layer: Any, calls: list, cotangent: Callable, *, training: bool, dtype: str,
           layout: Any) -> tuple:
    import torch

    def source(a: Array, grad: bool = True) -> Any:
        return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)

    def to_numpy(t: Any) -> Array:
        return t.detach().cpu().numpy()

    outputs, cotangents, loss, xs, inits = _imperative(
        oracle, layer, calls, cotangent, training=training, dtype=dtype, layout=layout, source=source,
        to_float64=lambda t: t.to(torch.float64), to_numpy=to_numpy, total=torch.sum)
    flat_inits = [t for init in inits if init is not None for t in _flat(init)]
    weights = [w.value for w in layer.trainable_weights]
    grads = torch.autograd.grad(loss, xs + flat_inits + weights, allow_unused=True)
    n, m = len(xs), len(flat_inits)
    return outputs, cotangents, _assemble(layer, layout, list(grads[:n]), inits, list(grads[n:n + m]),
                                          list(grads[n + m:]), xs, weights, to_numpy)


def _jax(oracle: Any, layer: Any, calls: list, cotangent: Callable, *, training: bool, dtype: str,
         layout: Any) -> tuple:
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    state_index = {id(v): i for i, v in enumerate(layer.non_trainable_variables)}
    states = [state_index[id(v)] for v in _flat(getattr(layer, "states", None) or []) if id(v) in state_index]
    xs = [jnp.asarray(layout.to_oracle(c["inputs"], 2).astype(dtype)) for c in calls if c != RESET]
    inits = [None if c["initial_state"] is None else
             _pack(c["initial_state"], [jnp.asarray(s.astype(dtype)) for s in _flat(layout.state_to_oracle(c["initial_state"]))])
             for c in calls if c != RESET]
    recorded: dict[str, list] = {"outputs": [], "cotangents": []}

    def run(xs: list, inits: list, trainable: list) -> Any:
        variables, k, outs = list(non_trainable), 0, []
        for call in calls:
            if call == RESET:
                for i in states:
                    variables[i] = jnp.zeros_like(variables[i])
                continue
            out, variables = layer.stateless_call(trainable, variables, xs[k],
                                                   **_call_kwargs(oracle, call, training, inits[k]))
            outs += _flat(out)
            k += 1
        return outs

    outs, vjp = jax.vjp(run, xs, inits, trainable)
    cots = []
    for o in outs:
        value = layout.from_oracle(np.asarray(o))
        cot = cotangent(len(recorded["cotangents"]), value)
        recorded["outputs"].append(value)
        recorded["cotangents"].append(cot)
        cots.append(jnp.asarray(layout.output_to_oracle(cot)).astype(o.dtype))
    g_xs, g_inits, g_weights = vjp(cots)
    flat_g_inits = [t for init in g_inits if init is not None for t in _flat(init)]
    return recorded["outputs"], recorded["cotangents"], _assemble(
        layer, layout, list(g_xs), inits, flat_g_inits, list(g_weights), xs, trainable, np.asarray)
