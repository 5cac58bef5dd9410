"""Deliberately broken adapters: refimpl behind the mistakes a porter makes, one mistake each. The
suite must fail them, and its diagnosis must name exactly that mistake (tests/test_adapters.py).

Conversion mistakes are made the way a converter makes them, on the config and weights it hands
on; loop mistakes in a porter's own time loop around refimpl's cells (``PortersLoop``): no cell
equations are written here."""

from __future__ import annotations

import numpy as np

import refimpl
from conformance.adapters.refimpl_adapter import RefImpl as _RefImpl
from conformance.configs import policy_name, precision


class RefImpl:
    """refimpl through the plain contract only (run, no run_calls)."""

    version = "0"
    layers: tuple[str, ...] = ()  # the Keras classes this port implements

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, keras_version=3):
        return _RefImpl().run(config, weights, inputs, mask=mask, initial_state=initial_state,
                              keras_version=keras_version)

    def supports(self, config):
        return True if config["class_name"] in self.layers else f"{self.name} implements {'/'.join(self.layers)} only"


def _swap_blocks(w: np.ndarray, i: int, j: int, n: int) -> np.ndarray:
    blocks = np.split(w, n, axis=-1)
    blocks[i], blocks[j] = blocks[j], blocks[i]
    return np.concatenate(blocks, axis=-1)


class SwappedGRU(RefImpl):
    """A GRU port that reads Keras's gate blocks in torch's order: (r, z, h) for (z, r, h); also
    inside Bidirectional, in both directions."""

    name, layers = "swapped-gru", ("GRU",)

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        weights = [_swap_blocks(w, 0, 1, 3) for w in weights]
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)

    def supports(self, config):
        if config["class_name"] == "Bidirectional":
            inner = [config["config"][k] for k in ("layer", "backward_layer") if config["config"].get(k)]
            if all(c["class_name"] == "GRU" for c in inner):
                return True
        return super().supports(config)


class StatesSwappedLSTM(RefImpl):
    """An LSTM port that returns its states as [c, h]."""

    name, layers = "states-swapped-lstm", ("LSTM",)

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        out = super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)
        return [out[0], out[2], out[1]] if len(out) == 3 else out


class MaskIgnoringRNN(RefImpl):
    """A port that accepts masks but ignores them."""

    name, layers = "mask-ignoring", ("SimpleRNN",)

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        return super().run(config, weights, inputs, mask=None, initial_state=initial_state, **kw)


# --- GRU conversions ----------------------------------------------------------------------------------
def _gru(config, reset_after: bool | None = None) -> bool | str:
    c = config["config"]
    if config["class_name"] != "GRU":
        return "this port implements GRU only"
    if not c.get("use_bias", True):
        return "this port's mistake is in the biases"
    if reset_after is not None and c.get("reset_after", True) != reset_after:
        return f"this port implements GRU(reset_after={reset_after}) only"
    return True


class ResetBeforeGRU(RefImpl):
    """Exports GRU(reset_after=True) as the reset-before form (ONNX linear_before_reset=0), the
    two biases summed into one."""

    name = "reset-before-gru"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        config = {**config, "config": {**config["config"], "reset_after": False}}
        kernel, recurrent_kernel, bias = weights
        return super().run(config, [kernel, recurrent_kernel, bias[0] + bias[1]], inputs, mask=mask,
                           initial_state=initial_state, **kw)

    def supports(self, config):
        return _gru(config, reset_after=True)


class ResetAfterGRU(RefImpl):
    """Exports GRU(reset_after=False) as the reset-after form (linear_before_reset=1), with a zero
    recurrent bias."""

    name = "reset-after-gru"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        config = {**config, "config": {**config["config"], "reset_after": True}}
        kernel, recurrent_kernel, bias = weights
        return super().run(config, [kernel, recurrent_kernel, np.stack([bias, np.zeros_like(bias)])], inputs,
                           mask=mask, initial_state=initial_state, **kw)

    def supports(self, config):
        return _gru(config, reset_after=False)


class RecurrentBiasTwiceGRU(RefImpl):
    """Converts Keras's [input bias; recurrent bias] to torch as bias_ih = b_in, bias_hh = b_in + b_rec."""

    name = "bias-twice-gru"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        kernel, recurrent_kernel, bias = weights
        return super().run(config, [kernel, recurrent_kernel, np.stack([bias[0], bias[0] + bias[1]])], inputs,
                           mask=mask, initial_state=initial_state, **kw)

    def supports(self, config):
        return _gru(config, reset_after=True)


class SwappedUpdateGRU(RefImpl):
    """Computes h = (1 - z) h_prev + z candidate. With a sigmoid update gate, 1 - sigmoid(a) =
    sigmoid(-a), so this port's numbers are refimpl's with the update gate's columns negated."""

    name = "swapped-update-gru"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        third = weights[0].shape[-1] // 3
        negated = [np.concatenate([-w[..., :third], w[..., third:]], axis=-1) for w in weights]
        return super().run(config, negated, inputs, mask=mask, initial_state=initial_state, **kw)

    def supports(self, config):
        ok = _gru(config)
        if ok is True and config["config"].get("recurrent_activation", "sigmoid") != "sigmoid":
            return "this port's update gate is a sigmoid"
        return ok


# --- activations ----------------------------------------------------------------------------------------
def _activations(config, change):
    c = dict(config["config"])
    for key in ("activation", "recurrent_activation"):
        if key in c:
            c[key] = change(key, c[key])
    return {**config, "config": c}


class DefaultActivations(RefImpl):
    """Ignores the activation arguments: always tanh, with sigmoid gates."""

    name, layers = "default-activations", ("SimpleRNN", "LSTM", "GRU")

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        config = _activations(config, lambda key, value: "tanh" if key == "activation" else "sigmoid")
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)


class SigmoidForHardSigmoid(RefImpl):
    """Maps Keras's hard_sigmoid to the framework's sigmoid."""

    name, layers = "sigmoid-for-hard-sigmoid", ("SimpleRNN", "LSTM", "GRU")

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        config = _activations(config, lambda key, value: "sigmoid" if value == "hard_sigmoid" else value)
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)


# --- states, masks and precision ----------------------------------------------------------------------
class InitialCellStateIgnored(RefImpl):
    """An LSTM port that takes initial_state=[h, c] but starts c at zeros."""

    name, layers = "initial-c-ignored", ("LSTM",)

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        if initial_state is not None:
            initial_state = [initial_state[0], np.zeros_like(initial_state[1])]
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)


class Float32Inside(RefImpl):
    """Computes in float32 whatever it is given, and hands back arrays of the input's dtype."""

    name, layers = "float32-inside", ("SimpleRNN", "LSTM", "GRU")

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        config = {**config, "config": {**config["config"], "dtype": "float32"}}
        state = None if initial_state is None else [np.asarray(s, "float32") for s in initial_state]
        out = super().run(config, [w.astype("float32") for w in weights], inputs.astype("float32"), mask=mask,
                          initial_state=state, **kw)
        return [o.astype(inputs.dtype) for o in out]

    def supports(self, config):
        if precision(config, policy_name(config["config"].get("dtype")) or "float32") != "float64":
            return "float32-inside only differs from refimpl on float64 layers"
        return super().supports(config)


class MaskNotReversed(RefImpl):
    """Reverses the inputs for go_backwards, but not the mask."""

    name, layers = "mask-not-reversed", ("SimpleRNN",)

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        if mask is not None and config["config"].get("go_backwards"):
            mask = mask[:, ::-1]  # refimpl reverses it again: the steps see it unreversed
        return super().run(config, weights, inputs, mask=mask, initial_state=initial_state, **kw)


class PortersLoop(RefImpl):
    """A SimpleRNN port with its own time loop around refimpl's cell (its ``call`` is one step).
    Subclasses get one part of the masking wrong."""

    layers = ("SimpleRNN",)
    late = False  # step t masked by mask[t - 1]
    update_masked_states = False  # a masked step still updates the state

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, **kw):
        c = config["config"]
        cell = refimpl.SimpleRNNCell(c["units"], activation=c.get("activation", "tanh"), use_bias=c.get("use_bias", True),
                                     keras_version=kw.get("keras_version", 3))
        cell.build((inputs.shape[0], inputs.shape[2]))
        cell.set_weights(weights)
        steps = range(inputs.shape[1])[::-1] if c.get("go_backwards") else range(inputs.shape[1])
        h = np.zeros((inputs.shape[0], c["units"]), inputs.dtype) if initial_state is None else initial_state[0]
        output, outputs, previous = np.zeros_like(h), [], None
        for k, t in enumerate(steps):
            new_h, _ = cell.call(inputs[:, t], [h])
            keep = np.ones(inputs.shape[0], bool) if mask is None else mask[:, t]
            if self.late and mask is not None:
                keep = np.ones_like(keep) if previous is None else mask[:, previous]
            previous = t
            fill = np.zeros_like(output) if c.get("zero_output_for_mask") else output
            output = np.where(keep[:, None], new_h, fill)
            h = new_h if self.update_masked_states else np.where(keep[:, None], new_h, h)
            outputs.append(output)
        first = np.stack(outputs, axis=1) if c.get("return_sequences") else output
        return [first, h] if c.get("return_state") else [first]

    def supports(self, config):
        c = config["config"]
        if config["class_name"] != "SimpleRNN" or c.get("stateful") or c.get("dropout") or c.get("recurrent_dropout"):
            return f"{self.name}: SimpleRNN only, without stateful or dropout"
        if policy_name(c.get("dtype")) in ("mixed_float16", "mixed_bfloat16", "bfloat16"):
            return f"{self.name}: computes in its inputs' dtype, without a mixed or bfloat16 policy"
        return True


class MaskLate(PortersLoop):
    name, late = "mask-late", True


class StatesUpdatedOnMask(PortersLoop):
    name, update_masked_states = "states-updated-on-mask", True


class NoRun:
    """Not an adapter: no run method."""


class GradientsIgnoreMask(RefImpl):
    """Right outputs, wrong gradients: a port whose backward pass ignores the mask (it
    differentiates the unmasked recurrence)."""

    name, layers = "gradients-ignore-mask", ("SimpleRNN", "LSTM", "GRU")

    def run_vjp(self, config, weights, calls, cotangents, *, training=False, dropout_masks=None, keras_version=3):
        unmasked = [c if c == "reset_state" else {**c, "mask": None} for c in calls]
        return _RefImpl().run_vjp(config, weights, unmasked, cotangents, keras_version=keras_version)

    def supports(self, config):
        return super().supports(config) if not config["config"].get("stateful") else "no stateful calls"


class DeclinesAtRunTime:
    """Not a mistake: the full protocol through refimpl, declining at run time (``Decline``) what
    only the calls show: masks other than right padding, and dropout in training (stateful
    sequences it runs). Its skips must carry these reasons and its other cases pass."""

    name, version = "declines-at-run-time", "0"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None, keras_version=3):
        raise AssertionError("run_calls serves every case")

    def run_calls(self, config, weights, calls, *, training=False, dropout_masks=None, keras_version=3):
        from conformance.adapters import Decline

        if training:
            raise Decline("no dropout masks in training")
        for call in calls:
            m = None if call == "reset_state" else call["mask"]
            if m is not None and not all(np.all(row[:row.sum()]) for row in m):
                raise Decline("only right-padded masks")
        return _RefImpl().run_calls(config, weights, calls, keras_version=keras_version)

    def run_vjp(self, config, weights, calls, cotangents, *, training=False, dropout_masks=None, keras_version=3):
        from conformance.adapters import Decline

        raise Decline("no gradients for this one")
