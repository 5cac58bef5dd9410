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

from conformance.configs import numpy_dtype
from conformance.recorded import RESET, flatten, pack

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
    return flatten(tree, lambda t: t)  # tensors stay tensors


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
            init = pack(call["initial_state"], [source(s.astype(dtype)) for s in _flat(layout.state_to_oracle(call["initial_state"]))])
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
        initial_state=[None if init is None else pack(init, [next(init_values) for _ in _flat(init)]) for init in inits],
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
    """Each call's loss is differentiated as soon as the call returns: a stateful layer assigns its
    state variables in place afterwards, which would invalidate a graph spanning calls (and the
    gradients do not flow through them anyway)."""
    import torch

    def source(a: Array, grad: bool = True) -> Any:  # torch cannot read ml_dtypes' bfloat16: via float32, exactly
        if a.dtype.name == "bfloat16":
            return torch.tensor(a.astype(np.float32)).to(torch.bfloat16).requires_grad_(grad)
        return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)

    def to_numpy(t: Any) -> Array:
        t = t.detach().cpu()
        return t.float().numpy().astype(numpy_dtype("bfloat16")) if t.dtype == torch.bfloat16 else t.numpy()

    weights = [w.value for w in layer.trainable_weights]
    outputs, cotangents, xs, inits, g_xs, g_inits, g_weights = [], [], [], [], [], [], None
    for k, call in enumerate(calls):
        chunk = calls[k:k + 1]
        out, cots, loss, x, init = _imperative(
            oracle, layer, chunk, lambda i, o: cotangent(len(cotangents) + i, o), training=training, dtype=dtype,
            layout=layout, source=source, to_float64=lambda t: t.to(torch.float64), to_numpy=to_numpy, total=torch.sum)
        outputs, cotangents, xs, inits = outputs + out, cotangents + cots, xs + x, inits + init
        if call == RESET:
            continue
        flat_init = [t for i in init if i is not None for t in _flat(i)]
        grads = torch.autograd.grad(loss, x + flat_init + weights, allow_unused=True)
        g_xs.append(grads[0])
        g_inits += list(grads[1:1 + len(flat_init)])
        call_weights = list(grads[1 + len(flat_init):])
        g_weights = call_weights if g_weights is None else [
            b if a is None else a if b is None else a + b for a, b in zip(g_weights, call_weights)]
    return outputs, cotangents, _assemble(layer, layout, g_xs, inits, g_inits, g_weights or [None] * len(weights),
                                          xs, weights, to_numpy)


def _jax(oracle: Any, layer: Any, calls: list, cotangent: Callable, *, training: bool, dtype: str,
         layout: Any) -> tuple:
    """Each call is differentiated on its own with jax.vjp of the layer's ``__call__`` inside a
    ``keras.StatelessScope`` that maps its variables to the traced values. (Not
    ``layer.stateless_call``: it runs ``call`` directly, skipping the dtype policy's input cast and
    variable autocast that ``__call__`` does, so a mixed_float16 GRU on JAX feeds float32 kernels
    into a float16 scan carry and raises; inside a model, layers are reached through ``__call__``.)
    A stateful layer's stored states enter as constants (its initial_state, unless the call gives
    one), and the call is then made once more, concretely, so that the layer stores its new states."""
    import jax
    import jax.numpy as jnp
    import keras

    trainable = [v.value for v in layer.trainable_variables]
    outputs, cotangents, xs, inits, g_xs, g_inits, g_weights = [], [], [], [], [], [], None
    for call in calls:
        if call == RESET:
            _reset(layer)
            continue
        x = jnp.asarray(layout.to_oracle(call["inputs"], 2).astype(dtype))
        given = call["initial_state"]
        init = None if given is None else pack(given, [jnp.asarray(s.astype(dtype)) for s in _flat(layout.state_to_oracle(given))])
        stored = _stored_states(layer) if given is None else None
        non_trainable = [v.value for v in layer.non_trainable_variables]

        def run(x: Any, init: Any, trainable: list) -> list:
            mapping = [*zip(layer.trainable_variables, trainable), *zip(layer.non_trainable_variables, non_trainable)]
            with keras.StatelessScope(state_mapping=mapping):
                out = layer(x, **_call_kwargs(oracle, call, training, init if stored is None else stored))
            return _flat(out)

        outs, vjp = jax.vjp(run, x, init, trainable)
        cots = []
        for o in outs:
            value = layout.from_oracle(np.asarray(o))
            cot = cotangent(len(cotangents), value)
            outputs.append(value)
            cotangents.append(cot)
            cots.append(jnp.asarray(layout.output_to_oracle(cot)).astype(o.dtype))
        g_x, g_init, g_w = vjp(cots)
        xs.append(x)
        inits.append(init)
        g_xs.append(g_x)
        g_inits += [] if init is None else _flat(g_init)
        g_weights = list(g_w) if g_weights is None else [a + b for a, b in zip(g_weights, g_w)]
        if getattr(layer, "stateful", False):  # store the new states, as the call would
            layer(x, **_call_kwargs(oracle, call, training, init))
    return outputs, cotangents, _assemble(layer, layout, g_xs, inits, g_inits, g_weights or [None] * len(trainable),
                                          xs, trainable, np.asarray)


def _stored_states(layer: Any) -> list | None:
    """A stateful layer's stored states as constants (a Bidirectional's: forward's, then backward's)."""
    if not getattr(layer, "stateful", False):
        return None
    subs = [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
    if any(getattr(sub, "states", None) is None for sub in subs):
        return None
    return [s.value for sub in subs for s in _flat(sub.states)]
