"""Pointing a failure at its likely cause.

When an implementation's outputs differ from Keras's, the usual causes are mistakes a porter
makes: gate blocks in another framework's order, GRU's reset gate on the wrong side of the
recurrent matmul, its update written the other way round, an activation or a mask handled the way
another framework does. ``diagnose`` replays the case through refimpl (which matches Keras on the
matrix) with each such mistake made on purpose; a mistake whose outputs equal the implementation's,
within the case's tolerance, is reported as the likely cause. The verdict itself always comes from
Keras; a mistake that cannot be made on a case (no GRU, no mask, ...) is not tried there.

A mistake is made by changing what refimpl is given (the config, the weights, the calls), by
changing the built refimpl layer (``patch``), or by changing its outputs (``post``); never by
writing the cell equations again. Where a mistake is an identity of another (σ(−a) = 1 − σ(a) for
the symmetric gates), the docstring of its maker says so.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from conformance import configs
from conformance.adapters import refimpl_adapter
from conformance.compare import compare
from conformance.conventions import KERAS3
from conformance.recorded import RESET, RecordedCase, cast
from conformance.tolerances import Tolerance, tolerance_for

Array = np.ndarray
KERAS_GATES = {name: KERAS3.layers[name].gates for name in ("SimpleRNN", "LSTM", "GRU")}  # weight-block order
DEFAULT_ACTIVATIONS = {"activation": "tanh", "recurrent_activation": "sigmoid"}
# Gates g with g(-x) = 1 - g(x): for them a swapped update (1 - z) is the same gate on negated inputs.
SYMMETRIC_GATES = ("sigmoid", "hard_sigmoid", "sparse_sigmoid")
CONTAINERS = ("RNN", "Bidirectional", "StackedRNNCells")


def _keep(*args: Any) -> Any:
    return args if len(args) > 1 else args[0]


class Mistake(NamedTuple):
    description: str
    change: Callable[[dict, list, list], tuple[dict, list, list]] = _keep  # config, weights, calls
    patch: Callable[[Any], Any] = _keep  # the built refimpl layer -> the layer to play
    post: Callable[[list], list] = _keep  # refimpl's outputs -> the outputs compared
    other_keras: bool = False  # run with the other Keras major version's semantics
    precision: str | None = None  # compare at this dtype's tolerance (the mistake changes the precision)


class Part(NamedTuple):
    """One weight-holding layer or cell of a config, in ``get_weights()`` order."""
    kind: str  # SimpleRNN, LSTM or GRU (ConvLSTM is an LSTM)
    config: dict  # its config dict
    start: int  # its weights are weights[start:start + count]
    count: int


def parts(serialized: dict) -> list[Part]:
    out, start = [], 0
    for name, inner in configs.walk(serialized):
        if name in CONTAINERS:
            continue
        count = 3 if inner.get("use_bias", True) else 2
        out.append(Part(_kind(name), inner, start, count))
        start += count
    return out


def _kind(name: str) -> str:
    """SimpleRNN, LSTM or GRU for a layer or cell class (ConvLSTM is an LSTM); containers keep their name."""
    return "LSTM" if name.startswith("ConvLSTM") else name.removesuffix("Cell")


def _rewrite(config: dict, kinds: tuple[str, ...], change: Callable[[dict], dict]) -> dict:
    """``config`` with ``change`` applied to the config dict of every layer or cell of these kinds."""
    def one(serialized: dict) -> dict:
        if _kind(serialized.get("class_name", "")) not in kinds:
            return serialized
        return {**serialized, "config": change(dict(serialized["config"]))}
    return configs.rewrite(config, one)


def _each_part(weights: list, chosen: list[Part], change: Callable[[Part, list], list]) -> list:
    """``weights`` with ``change(part, its weights)`` replacing the weights of each chosen part."""
    out = list(weights)
    for p in chosen:
        out[p.start:p.start + p.count] = change(p, out[p.start:p.start + p.count])
    return out


def _calls(calls: list, change: Callable[[dict], dict]) -> list:
    return [c if c == RESET else change(dict(c)) for c in calls]


# --- the mistakes ------------------------------------------------------------------------------------
def _permute(w: Array, perm: tuple[int, ...]) -> Array:
    """Gate blocks on the last axis, reordered: block k of the result is block perm[k]."""
    blocks = np.split(w, len(perm), axis=-1)
    return np.concatenate([blocks[p] for p in perm], axis=-1)


def _gate_orders(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    for kind in ("LSTM", "GRU"):
        chosen = [p for p in ps if p.kind == kind]
        if not chosen:
            continue
        gates = KERAS_GATES[kind]
        bias = all(p.count == 3 for p in chosen)
        which_parts = [((0, 1, 2), "kernel, recurrent_kernel and bias"), ((0,), "kernel"), ((1,), "recurrent_kernel")]
        which_parts += [((2,), "bias")] if bias else []
        for perm in itertools.permutations(range(len(gates))):
            if perm == tuple(range(len(gates))):
                continue
            order = ", ".join(gates[p] for p in perm)
            for which, names in which_parts:
                def weights(c, w, calls, perm=perm, which=which, chosen=chosen):
                    permuted = _each_part(w, chosen, lambda p, ws: [_permute(a, perm) if i in which else a
                                                                     for i, a in enumerate(ws)])
                    return c, permuted, calls
                yield Mistake(f"the {names} gate blocks are in the order ({order}), not Keras's ({', '.join(gates)}): "
                              "check the gate order of the weight conversion (docs/conventions.md)", weights)


def _gru_biases(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    after = [p for p in ps if p.kind == "GRU" and p.count == 3 and p.config.get("reset_after", True)]
    if not after:
        return

    def swap_rows(c, w, calls):
        return c, _each_part(w, after, lambda p, ws: [*ws[:2], ws[2][::-1]]), calls
    yield Mistake("GRU's two bias rows are swapped: Keras's bias[0] is the input bias (torch bias_ih), "
                  "bias[1] the recurrent one (bias_hh)", swap_rows)

    def twice(c, w, calls):
        return c, _each_part(w, after, lambda p, ws: [*ws[:2], np.stack([ws[2][0], ws[2][0] + ws[2][1]])]), calls
    yield Mistake("GRU's input bias is added again on the recurrent side (bias[1] used as bias[0] + bias[1]): "
                  "Keras adds bias[0] to x @ kernel and bias[1] to h @ recurrent_kernel, each once", twice)


def _gru_reset(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    """Reset before the matmul under reset_after=True is the reset_after=False GRU with both bias
    rows summed; reset after it under reset_after=False is the reset_after=True GRU with a zero
    recurrent bias: the same equations, so refimpl computes them exactly."""
    grus = [p for p in ps if p.kind == "GRU"]
    after = [p for p in grus if p.config.get("reset_after", True)]
    before = [p for p in grus if not p.config.get("reset_after", True)]
    if after and not before:
        def reset_first(c, w, calls):
            c = _rewrite(c, ("GRU",), lambda inner: {**inner, "reset_after": False})
            summed = _each_part(w, after, lambda p, ws: [*ws[:2], ws[2].sum(axis=0)] if p.count == 3 else ws)
            return c, summed, calls
        yield Mistake("GRU(reset_after=True) computed with the reset gate applied to h before the recurrent "
                      "matmul (the reset_after=False form); Keras multiplies r into (h @ U_h + b_h) after it "
                      "(ONNX linear_before_reset=1, torch's GRU)", reset_first)
    if before and not after:
        def reset_last(c, w, calls):
            c = _rewrite(c, ("GRU",), lambda inner: {**inner, "reset_after": True})
            stacked = _each_part(w, before, lambda p, ws: [*ws[:2], np.stack([ws[2], np.zeros_like(ws[2])])]
                                 if p.count == 3 else ws)
            return c, stacked, calls
        yield Mistake("GRU(reset_after=False) computed with the reset gate applied after the recurrent matmul "
                      "(the reset_after=True form); Keras multiplies r into h before it (ONNX "
                      "linear_before_reset=0)", reset_last)


def _gru_update(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    """h = (1 - z) h_prev + z candidate instead of z h_prev + (1 - z) candidate. For a symmetric
    gate, 1 - g(a) = g(-a): negating the update gate's kernel, recurrent kernel and bias columns
    computes exactly the swapped update."""
    grus = [p for p in ps if p.kind == "GRU"]
    if not grus or any(p.config.get("recurrent_activation", "sigmoid") not in SYMMETRIC_GATES for p in grus):
        return

    def negate_z(c, w, calls):
        return c, _each_part(w, grus, lambda p, ws: [np.concatenate([-a[..., :a.shape[-1] // 3], a[..., a.shape[-1] // 3:]],
                                                                    axis=-1) for a in ws]), calls
    yield Mistake("GRU's update is written h = (1 - z) * h_prev + z * candidate; Keras's is "
                  "h = z * h_prev + (1 - z) * candidate (z and 1 - z swapped)", negate_z)


def _activations(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    text = str(rec.config)

    def smooth(c, w, calls):
        return _rewrite(c, ("SimpleRNN", "LSTM", "GRU"), lambda inner: {
            k: ("sigmoid" if k.endswith("activation") and v == "hard_sigmoid" else v) for k, v in inner.items()}), w, calls

    def defaults(c, w, calls):
        return _rewrite(c, ("SimpleRNN", "LSTM", "GRU"), lambda inner: {
            **inner, **{k: d for k, d in DEFAULT_ACTIVATIONS.items() if k in inner}}), w, calls

    if "hard_sigmoid" in text:
        yield Mistake("hard_sigmoid is Keras 2's (0.2x + 0.5) where Keras 3 uses relu6(x + 3) / 6", other_keras=True)
        yield Mistake("hard_sigmoid is computed as sigmoid: Keras's hard_sigmoid is piecewise linear, "
                      "relu6(x + 3) / 6 in Keras 3", smooth)
    others = sorted({f"{k}={v!r}" for p in ps for k, v in p.config.items()
                     if k in DEFAULT_ACTIVATIONS and v != DEFAULT_ACTIVATIONS[k]})
    if others and defaults(rec.config, [], [])[0] != smooth(rec.config, [], [])[0]:  # else the same mistake
        yield Mistake(f"the configured activations ({', '.join(others)}) are replaced by the defaults (tanh, and "
                      "sigmoid for the gates): the port ignores the activation arguments", defaults)


def _states_and_order(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    inner = rec.config.get("config", {})
    per_call = len(rec.outputs) // max(1, sum(c != RESET for c in rec.calls))  # outputs of one call
    if inner.get("return_state") and ps and ps[0].kind == "LSTM" and len(ps) == 1 and per_call == 3:
        yield Mistake("the LSTM states are returned as [c, h]; Keras returns [output, h, c]",
                      post=lambda outs: _each_call(outs, per_call, lambda o: [o[0], o[2], o[1]]))
    if inner.get("go_backwards") and inner.get("return_sequences"):
        yield Mistake("with go_backwards=True the returned sequence is flipped in time: Keras returns it in the "
                      "order it was processed (last input step first)",
                      post=lambda outs: _each_call(outs, per_call, lambda o: [o[0][:, ::-1], *o[1:]]))
    if rec.has_initial_state:
        yield Mistake("initial_state is ignored", lambda c, w, calls: (c, w, _calls(calls, lambda k: {**k, "initial_state": None})))
        roles = [role for p in ps for role in (("h", "c") if p.kind == "LSTM" else ("h",))]
        if "c" in roles:
            def no_c(c, w, calls):
                return c, w, _calls(calls, lambda k: {**k, "initial_state": _zero_c(k["initial_state"], roles)})
            yield Mistake("the LSTM's initial cell state c is ignored (started at zeros): Keras takes "
                          "initial_state=[h, c] and uses both", no_c)
    if rec.dtype == "float64" and configs.precision(rec.config, rec.dtype) == "float64":
        def single(c, w, calls):
            c = configs.rewrite(c, lambda s: {**s, "config": {**s["config"], "dtype": "float32"}})
            return c, [a.astype("float32") for a in w], _calls(calls, lambda k: {
                **k, "inputs": k["inputs"].astype("float32"), "initial_state": cast(k["initial_state"], "float32")})
        yield Mistake("float32 arithmetic inside a float64 run: the port computes in float32 and casts "
                      "the results back", single, post=lambda outs: [o.astype("float64") for o in outs],
                      precision="float32")


def _masks(rec: RecordedCase, ps: list[Part]) -> Iterator[Mistake]:
    if not rec.masked:
        return
    inner = rec.config.get("config", {})
    yield Mistake("the mask is ignored", lambda c, w, calls: (c, w, _calls(calls, lambda k: {**k, "mask": None})))
    if "zero_output_for_mask" in inner:
        zero = inner["zero_output_for_mask"]
        flip = lambda c, w, calls: (_rewrite(c, ("SimpleRNN", "LSTM", "GRU", "RNN"), lambda i: {  # noqa: E731
            **i, "zero_output_for_mask": not zero} if "zero_output_for_mask" in i else i), w, calls)
        yield Mistake(f"masked steps are output as {'the previous output' if zero else 'zeros'}; Keras with "
                      f"zero_output_for_mask={zero} outputs {'zeros' if zero else 'the previous output'}", flip)
    if any(c.get("go_backwards") for _, c in configs.walk(rec.config)):
        yield Mistake("with go_backwards=True the mask is not reversed with the inputs: Keras flips both, "
                      "so mask[:, t] still belongs to input step t",
                      patch=lambda layer: _on_rnns(layer, lambda sub: _MaskedCall(sub, _unflip) if sub.go_backwards else sub))
    yield Mistake("the mask is applied one step late: step t is masked by mask[:, t - 1] (in processing order)",
                  patch=lambda layer: _on_rnns(layer, lambda sub: _MaskedCall(sub, _late)))
    yield Mistake("masked steps update the states: only the outputs are masked, while Keras keeps the "
                  "previous states at a masked step", patch=lambda layer: _on_rnns(layer, _keep_new_states))


# --- helpers for the mistakes above -------------------------------------------------------------------
def _each_call(outs: list, per_call: int, change: Callable[[list], list]) -> list:
    """``change`` applied to each call's outputs (``per_call`` of them) of a flattened call sequence."""
    return [o for k in range(0, len(outs), per_call) for o in change(outs[k:k + per_call])]


def _zero_c(initial_state: Any, roles: list[str]) -> Any:
    """The LSTM cell states (role "c", in the order the states come) of a nested initial state zeroed."""
    if initial_state is None:
        return None
    role = iter(roles)

    def walk(tree: Any) -> Any:
        if isinstance(tree, (list, tuple)):
            return [walk(t) for t in tree]
        return np.zeros_like(tree) if next(role) == "c" else tree
    return walk(initial_state)


class _MaskedCall:
    """A refimpl recurrent layer whose call changes the mask first: ``change(mask, go_backwards)``."""

    def __init__(self, layer: Any, change: Callable[[Array, bool], Array]):
        self.layer, self.change = layer, change

    def __call__(self, inputs: Any, mask: Any = None, **kwargs: Any) -> Any:
        if mask is not None:
            mask = self.change(np.asarray(mask, bool), self.layer.go_backwards)
        return self.layer(inputs, mask=mask, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)


def _unflip(mask: Array, go_backwards: bool) -> Array:
    return mask[:, ::-1]  # the layer flips it again: the steps see it unreversed


def _late(mask: Array, go_backwards: bool) -> Array:
    """Shift by one step in processing order; the first step processed is never masked."""
    m = mask[:, ::-1] if go_backwards else mask
    late = np.concatenate([np.ones_like(m[:, :1]), m[:, :-1]], axis=1)
    return late[:, ::-1] if go_backwards else late


def _keep_new_states(layer: Any) -> Any:
    layer.masked_states = lambda m, new, old: new  # refimpl's loop asks this method which states to keep
    return layer


def _on_rnns(layer: Any, change: Callable[[Any], Any]) -> Any:
    """``change`` applied to each recurrent layer that sees the mask: a Bidirectional's two, else the layer."""
    if hasattr(layer, "forward_layer"):
        layer.forward_layer, layer.backward_layer = change(layer.forward_layer), change(layer.backward_layer)
        return layer
    return change(layer)


MAKERS = (_gate_orders, _gru_biases, _gru_reset, _gru_update, _activations, _states_and_order, _masks)


def with_backward_layer(config: dict) -> dict:
    """``config`` with each Bidirectional's backward layer spelled out: Keras 2 leaves the copy it
    makes (the wrapped layer, with go_backwards flipped) out of the config."""
    def spell_out(serialized: dict) -> dict:
        inner = serialized["config"]
        if serialized.get("class_name") != "Bidirectional" or isinstance(inner.get("backward_layer"), dict):
            return serialized
        layer = inner["layer"]
        backward = {**layer, "config": {**layer["config"], "name": "backward_" + str(layer["config"].get("name", "")),
                                        "go_backwards": not layer["config"].get("go_backwards", False)}}
        return {**serialized, "config": {**inner, "backward_layer": backward}}
    return configs.rewrite(config, spell_out)


def mistakes(rec: RecordedCase) -> Iterator[Mistake]:
    """Every mistake that can be made on this case."""
    ps = parts(rec.config)
    for make in MAKERS:
        yield from make(rec, ps)


# --- the diagnosis -------------------------------------------------------------------------------------
def diagnose(rec: RecordedCase, actual: list[Array], tol: Tolerance, keras_version: int = 3) -> list[str]:
    """The mistakes whose outputs equal ``actual`` within ``tol`` (usually none or one). The
    mistakes are written for Keras 2/3 configs: a Keras 0.2 / 1.2.2 case gets none."""
    if keras_version < 2:
        return []
    found: list[tuple[float, str]] = []
    rec = dataclasses.replace(rec, config=with_backward_layer(rec.config))
    with np.errstate(all="ignore"):  # a wrong guess may overflow (exponential activations)
        for mistake in mistakes(rec):
            try:
                config, weights, calls = mistake.change(rec.config, rec.weights, rec.calls)
                version = 5 - keras_version if mistake.other_keras else keras_version
                layer = mistake.patch(refimpl_adapter.build(config, weights, version))
                outs = mistake.post(refimpl_adapter.play(layer, calls, training=rec.training,
                                                         dropout_masks=rec.dropout_masks))
            except Exception:  # the mistake isn't expressible for this case
                continue
            mistake_tol = tolerance_for(mistake.precision) if mistake.precision else tol
            c = compare(outs, actual, mistake_tol)
            if c.ok:
                found.append((c.max_abs / max(mistake_tol.atol, 1e-300), mistake.description))
    # Where the outputs are huge (an exponential activation), rtol lets several mistakes through;
    # the likely ones reproduce the outputs about as closely as the closest one does.
    best = min((err for err, _ in found), default=0.0)
    return [text for err, text in found if err <= max(10 * best, 1.0)]


def error_over_time(rec: RecordedCase, actual: list[Array]) -> list[dict] | None:
    """Per output: the worst absolute error at each time step (sequence outputs) or overall."""
    if len(actual) != len(rec.outputs):
        return None
    inner = rec.config.get("config", {})
    calls = [c for c in rec.calls if c != RESET]
    per_call = max(1, len(rec.outputs) // max(1, len(calls)))
    sequences = (2 if inner.get("merge_mode", "concat") is None else 1) if inner.get("return_sequences") else 0
    out = []
    for k, (e, a) in enumerate(zip(rec.outputs, actual)):
        if e.shape != a.shape or not e.size:
            continue
        err = np.abs(a.astype(np.float64) - e.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        is_seq = k % per_call < sequences and e.ndim >= 3
        label = f"outputs[{k}] {tuple(e.shape)}" + (" sequence" if is_seq else "")
        steps = [float(x) for x in err.reshape(e.shape[0], e.shape[1], -1).max(axis=(0, 2))] if is_seq else None
        out.append({"output": k, "label": label, "steps": steps, "max_abs": float(err.max())})
    return out
