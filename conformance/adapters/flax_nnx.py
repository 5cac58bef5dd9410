"""``--impl flax``: Keras SimpleRNN, LSTM and GRU run by Flax NNX's ``SimpleCell``, ``LSTMCell``
(or ``OptimizedLSTMCell``) and ``GRUCell`` through ``nnx.RNN`` and ``nnx.Bidirectional``.

Checked against flax 0.12.8 (flax/nnx/nn/recurrent.py) and jax 0.10.2. Each cell is built with
``rngs=nnx.Rngs(0)`` and its parameters overwritten with the Keras weights, converted with the gate
orders of conformance/conventions.py (P: the Keras → Flax block permutation, identity for LSTM,
[1, 0, 2] for GRU)::

    SimpleCell         dense_i.kernel, dense_i.bias, dense_h.kernel = kernel, bias (or 0), recurrent_kernel
    LSTMCell           ii, if_, ig, io .kernel = kernel blocks i, f, c, o    (no bias: input side)
                       hi, hf, hg, ho .kernel, .bias = recurrent_kernel blocks, bias blocks (or 0)
    OptimizedLSTMCell  dense_i.kernel = kernel[:, P]; dense_h.kernel, .bias = recurrent_kernel[:, P], bias[P]
    GRUCell            dense_i.kernel = kernel[:, P]; dense_h.kernel = recurrent_kernel[:, P]
                       dense_i.bias = (bias[0] + bias[1] with its h block left out)[P]

nnx's GRUCell has no recurrent bias on the candidate (``dense_h`` is built with use_bias=False,
although its docstring writes ``b_hn``): the recurrent z and r biases fold into the input ones
(they are added to the same sum), the recurrent h bias sits inside ``r * (...)`` and cannot; a
case whose h block of ``bias[1]`` is not zero is declined at run time. Keras activations map to
the JAX functions of the same definition (``ACTIVATIONS``), passed as ``activation_fn`` /
``gate_fn``; a Keras dtype policy to the cell's ``dtype`` (compute) and ``param_dtype`` (variables).

Options, as a Flax user expresses them: ``go_backwards`` is ``nnx.RNN(reverse=True,
keep_order=False)`` (outputs in processing order, as Keras returns them); ``initial_state`` is
``initial_carry`` (Keras's ``[h, c]`` is the LSTM carry ``(c, h)``); the final states and
``return_state`` come from ``return_carry=True``; a stateful layer passes each call's final carry
to the next as ``initial_carry`` (``run_calls``); ``RNN(StackedRNNCells)`` is one ``nnx.RNN`` per
cell, each running the previous one's output sequence (the same arithmetic as Keras's per-step
stack). ``Bidirectional`` is ``nnx.Bidirectional(forward_rnn, backward_rnn, merge_fn=...)``, whose
backward RNN runs with ``reverse=True, keep_order=True``.

Masks: a right-padded mask (each row valid for its first n >= 1 steps) is ``seq_lengths``: the
carry returned is each row's carry at its last valid step, which is Keras's final state, and the
last output (return_sequences=False) is that carry's h. Flax computes the cell over the padding
and leaves those outputs as they come (linen's RNN documents "The output elements corresponding
to padding elements are NOT zeroed out"); where Keras zeroes them (zero_output_for_mask=True,
which Bidirectional forces with return_sequences) the adapter zeroes them with ``jnp.where``, as a
Flax user does: those zeros are the only numbers it writes itself. Declined at run time
(``Decline``), with the reason: other mask patterns, fully masked rows, padded output sequences
where Keras repeats the last output (zero_output_for_mask=False), and go_backwards with a padded
output sequence (nnx.RNN keeps the padding last in the reversed sequence, Keras returns it first).

Gradients (``run_vjp``): ``jax.vjp`` of the whole Flax forward pass, taken with respect to the
Keras weights themselves (the conversion above is written with jnp indexing), the inputs and the
initial states. float64 cases need ``jax_enable_x64``, which the constructor turns on. ``import
jax`` and ``flax`` happen in the constructor, so importing this module never needs them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from conformance import configs
from conformance.adapters import Decline, right_padded_lengths
from conformance.conventions import FRAMEWORKS, gate_permutation, permute_gates
from conformance.features import explicit_backward
from conformance.recorded import flatten, pack

FLAX_CELL = {"SimpleRNN": "SimpleCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}
KERAS_CELL = {"SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}
DTYPES = ("float16", "bfloat16", "float32", "float64")
MIXED = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}  # compute dtype; variables float32
HALF = ("float16", "bfloat16")
# Config keys that cannot change the outputs of one inference call (initializers, regularizers,
# constraints, dropout outside training, the kernel choice, unroll: nnx.RNN's scan computes the
# same steps) or that are checked below.
LAYER_KEYS = frozenset({
    "name", "trainable", "dtype", "seed", "units", "activation", "recurrent_activation", "use_bias",
    "reset_after", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
    "zero_output_for_mask", "implementation", "use_cudnn", "unit_forget_bias",
    "dropout", "recurrent_dropout", "kernel_initializer", "recurrent_initializer", "bias_initializer",
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
    "kernel_constraint", "recurrent_constraint", "bias_constraint"})
RNN_KEYS = frozenset({"name", "trainable", "dtype", "cell", "return_sequences", "return_state", "go_backwards",
                      "stateful", "unroll", "zero_output_for_mask"})
MERGES = ("concat", "sum", "ave", "mul", None)


def activations(jax: Any) -> dict[str, Any]:
    """Keras 3's activation names (keras/src/activations/activations.py, keras 3.15.1) as the JAX
    functions of the same definition, with Keras's defaults where JAX's differ (gelu exact,
    leaky_relu 0.2); the three shrinks, which jax.nn lacks, written with jnp as a user would."""
    jnn, jnp = jax.nn, jax.numpy
    return {
        "tanh": jnp.tanh, "sigmoid": jnn.sigmoid, "hard_sigmoid": jnn.hard_sigmoid, "linear": lambda x: x,
        "relu": jnn.relu, "relu6": jnn.relu6, "leaky_relu": lambda x: jnn.leaky_relu(x, negative_slope=0.2),
        "elu": jnn.elu, "selu": jnn.selu, "celu": jnn.celu, "softplus": jnn.softplus, "softsign": jnn.soft_sign,
        "silu": jnn.silu, "swish": jnn.silu, "hard_silu": jnn.hard_silu, "hard_swish": jnn.hard_silu,
        "gelu": lambda x: jnn.gelu(x, approximate=False), "exponential": jnp.exp, "mish": jnn.mish,
        "log_sigmoid": jnn.log_sigmoid, "tanh_shrink": lambda x: x - jnp.tanh(x), "hard_tanh": jnn.hard_tanh,
        "hard_shrink": lambda x: jnp.where(jnp.abs(x) > 0.5, x, jnp.zeros_like(x)),
        "soft_shrink": lambda x: jnp.where(x > 0.5, x - 0.5, jnp.where(x < -0.5, x + 0.5, jnp.zeros_like(x))),
        "sparse_plus": jnn.sparse_plus, "sparse_sigmoid": jnn.sparse_sigmoid, "squareplus": jnn.squareplus,
        "softmax": jnn.softmax, "log_softmax": jnn.log_softmax,
    }


ACTIVATION_NAMES = frozenset({
    "tanh", "sigmoid", "hard_sigmoid", "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "softplus",
    "softsign", "silu", "swish", "hard_silu", "hard_swish", "gelu", "exponential", "mish", "log_sigmoid",
    "tanh_shrink", "hard_tanh", "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid", "squareplus",
    "softmax", "log_softmax"})


class Stack(NamedTuple):
    """One Keras recurrent layer as Flax runs it: one nnx.RNN per cell, in order."""
    cells: list  # [(Keras layer name, its cell config)], e.g. [("LSTM", {...units...})]
    go_backwards: bool
    return_sequences: bool
    return_state: bool
    policy: str | None  # the layer's dtype policy; a cell's own overrides it
    zero_output: bool = False  # Keras's zero_output_for_mask (Bidirectional forces return_sequences)
    outer_policy: str | None = None  # a Bidirectional wrapper's policy


def stacks(config: dict) -> tuple[list[Stack], Any]:
    """([the layer], None), or for Bidirectional ([forward, backward], merge_mode)."""
    if config["class_name"] == "Bidirectional":
        outer = config["config"]
        layers = [outer["layer"], outer.get("backward_layer") or outer["layer"]]
        outer_policy = configs.policy_name(outer.get("dtype"))
        fw, bw = (stacks(layer)[0][0] for layer in layers)  # Keras forces zero_output_for_mask=return_sequences:
        fw, bw = (s._replace(outer_policy=outer_policy, zero_output=s.return_sequences) for s in (fw, bw))
        return [fw, bw], outer.get("merge_mode", "concat")
    cfg = config["config"]
    if config["class_name"] == "RNN":
        cell = cfg["cell"]
        members = cell["config"]["cells"] if cell["class_name"] == "StackedRNNCells" else [cell]
        cells = [(KERAS_CELL[c["class_name"]], c["config"]) for c in members]
    else:
        cells = [(config["class_name"], cfg)]
    return [Stack(cells, cfg.get("go_backwards", False), cfg.get("return_sequences", False),
                  cfg.get("return_state", False), configs.policy_name(cfg.get("dtype")),
                  cfg.get("zero_output_for_mask", False))], None


class FlaxNNX:
    """A Keras recurrent layer config run by Flax NNX cells through nnx.RNN (CPU, inference and
    jax.vjp). ``lstm_cell`` picks the LSTM cell: ``"LSTMCell"`` (eight Linear layers, one per gate
    and side) or ``"OptimizedLSTMCell"`` (two fused ones)."""

    name = "flax.nnx"
    lstm_cell = "LSTMCell"

    def __init__(self) -> None:
        try:
            import flax
            import jax
            from flax import nnx
        except ImportError as e:
            raise ImportError(f"the flax adapter needs JAX and Flax ({e}): pip install flax==0.12.8") from None
        jax.config.update("jax_enable_x64", True)  # float64 cases: JAX computes in float32 without it
        self.jax, self.jnp, self.nnx = jax, jax.numpy, nnx
        self.act = activations(jax)
        from flax.nnx.nn.recurrent import modified_orthogonal
        self.modified_orthogonal = modified_orthogonal
        self.version = f"flax {flax.__version__}, jax {jax.__version__}"

    def supports(self, config: dict) -> bool | str:
        return why_not(config) or True

    def supports_vjp(self, config: dict) -> bool | str:
        for stack in stacks(config)[0]:
            for name, cfg in stack.cells:
                if name == "GRU" and cfg.get("use_bias", True):
                    return ("GRU(use_bias=True): nnx.GRUCell has no recurrent candidate bias b_hn (dense_h is "
                            "use_bias=False), so the gradient of Keras's bias[1] h block is not Flax's to compute")
        return True

    # --- the contract ------------------------------------------------------------------------------
    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask: Any = None,
            initial_state: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls, keras_version=keras_version)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None, keras_version: int = 3) -> list[np.ndarray]:
        layers, merge_mode = self._prepare(config, weights, training, dropout_masks, keras_version)
        outputs: list[np.ndarray] = []
        carried = None  # a stateful layer's states between calls, in Keras's order
        for call in calls:
            if call == "reset_state":
                carried = None
                continue
            given = call["initial_state"] if call["initial_state"] is not None else carried
            lengths = _lengths(call["mask"], layers)
            out, states = self._forward(layers, merge_mode, weights, call["inputs"], lengths, given)
            outputs += [np.asarray(o) for o in out] + ([np.asarray(s) for s in states] if layers[0].return_state else [])
            carried = _carry_over(config, states, layers)
        return outputs

    def run_vjp(self, config: dict, weights: list, calls: list, cotangents: list, *, training: bool = False,
                dropout_masks: Any = None, keras_version: int = 3) -> dict:
        """jax.vjp of each call's outputs with respect to the Keras weights, the inputs and the
        given initial states; a stateful layer's carried states are constants."""
        reason = self.supports_vjp(config)
        if reason is not True:
            raise Decline(reason)
        layers, merge_mode = self._prepare(config, weights, training, dropout_masks, keras_version)
        jnp = self.jnp
        grads: dict = {"inputs": [], "initial_state": [], "weights": None}
        carried, k = None, 0
        for call in calls:
            if call == "reset_state":
                carried = None
                continue
            given = call["initial_state"]
            lengths = _lengths(call["mask"], layers)
            leaves = [] if given is None else flatten(given)

            def f(w: list, x: Any, s: list, given: Any = given, carried: Any = carried, lengths: Any = lengths) -> tuple:
                start = carried if given is None else pack(given, s)  # carried states: constants
                out, states = self._forward(layers, merge_mode, w, x, lengths, start)
                return [*out, *(states if layers[0].return_state else [])], states

            # With respect to the weights as Flax holds them (param_dtype): a float32 layer inside a
            # float64 Bidirectional has float32 variables, and float32 gradients, in Keras too.
            params = [jnp.asarray(a, dtype) for a, dtype in zip(weights, _variable_dtypes(layers))]
            out, pullback, states = self.jax.vjp(f, params, jnp.asarray(call["inputs"]),
                                                 [jnp.asarray(s) for s in leaves], has_aux=True)
            cts = [jnp.asarray(c) for c in cotangents[k:k + len(out)]]
            k += len(out)
            d_w, d_x, d_s = pullback(cts)
            grads["inputs"].append(np.asarray(d_x))
            grads["initial_state"].append(None if given is None else pack(given, [np.asarray(g) for g in d_s]))
            d_w = [np.asarray(g) for g in d_w]
            grads["weights"] = d_w if grads["weights"] is None else [a + b for a, b in zip(grads["weights"], d_w)]
            carried = _carry_over(config, [np.asarray(s) for s in states], layers)
        return grads

    # --- building and running ----------------------------------------------------------------------
    def _prepare(self, config: dict, weights: list, training: bool, dropout_masks: Any,
                 keras_version: int) -> tuple[list[Stack], Any]:
        reason = why_not(config)
        if reason:
            raise NotImplementedError(reason)
        if keras_version != 3:
            raise Decline(f"a Keras {keras_version} fixture set: this adapter maps Keras 3's activations and "
                          "defaults (Keras 2's hard_sigmoid, for one, is another function)")
        if training and dropout_masks is not None and any(m is not None for pair in dropout_masks for m in pair):
            raise Decline("training-mode dropout: Flax NNX's recurrent cells have no dropout "
                          "(no dropout or recurrent_dropout argument in flax/nnx/nn/recurrent.py)")
        layers, merge_mode = stacks(config)
        for stack, w in zip(layers, _split(layers, weights)):
            for (name, cfg), cw in zip(stack.cells, w):
                if name == "GRU" and cfg.get("use_bias", True):
                    units = cfg["units"]
                    if np.any(np.asarray(cw[2])[1, 2 * units:] != 0):
                        raise Decline("GRU with a non-zero recurrent candidate bias (bias[1], h block): "
                                      "nnx.GRUCell computes n = tanh(W_in x + b_in + r * (W_hn h)) with no b_hn "
                                      "(dense_h is use_bias=False, though its docstring writes b_hn)")
        return layers, merge_mode

    def _forward(self, layers: list[Stack], merge_mode: Any, weights: list, inputs: Any, lengths: Any,
                 initial_state: Any) -> tuple[list, list]:
        """(outputs, final states in Keras's order), as JAX arrays; differentiable in ``weights``
        (Keras's get_weights()), ``inputs`` and ``initial_state``."""
        jnp, nnx = self.jnp, self.nnx
        x = jnp.asarray(inputs)  # (batch, time, input_dim)
        seq_lengths = None if lengths is None else jnp.asarray(lengths)
        per_stack = _split(layers, [jnp.asarray(w) for w in weights])
        # Flax leaves the outputs past each row's length as the cell computed them over the padding;
        # a user who wants Keras's zero_output_for_mask=True zeroes them, as here (the only numbers
        # this adapter writes itself; _lengths declines the other padded-sequence cases).
        valid = None if lengths is None else (jnp.arange(x.shape[1])[None, :] < seq_lengths[:, None])[..., None]

        def zero_padding(y: Any) -> Any:  # (batch, time, units)
            return y if valid is None else jnp.where(valid, y, jnp.zeros_like(y))
        if len(layers) == 2:  # Bidirectional: the forward layer's states, then the backward's
            fw, bw = layers
            n_fw = sum(len(_keras_states(name)) for name, _ in fw.cells)
            init = None if initial_state is None else (_carry(fw.cells[0][0], initial_state[:n_fw]),
                                                       _carry(bw.cells[0][0], initial_state[n_fw:]))
            rnns = [nnx.RNN(self._cell(s.cells[0], s.policy, x.shape[-1], w[0])) for s, w in zip(layers, per_stack)]
            # Keras casts each direction's output to the wrapper's compute dtype before merging
            # (keras/src/layers/rnn/bidirectional.py): a float64 Bidirectional around float32 layers.
            merge = _merge_fn(merge_mode, jnp, _compute_dtype(fw.outer_policy, x.dtype))
            bi = nnx.Bidirectional(rnns[0], rnns[1], merge_fn=merge)
            (c_fw, c_bw), y = bi(x, initial_carry=init, seq_lengths=seq_lengths, return_carry=True)
            states = _states(fw.cells[0][0], c_fw) + _states(bw.cells[0][0], c_bw)
            if fw.return_sequences:
                out = [zero_padding(o) for o in (list(y) if merge_mode is None else [y])]
            else:  # each direction's last output: its final carry's h (the backward's is at t = 0)
                last = merge(_h(fw.cells[0][0], c_fw), _h(bw.cells[0][0], c_bw))
                out = list(last) if merge_mode is None else [last]
            return out, states
        (stack,), (w,) = layers, per_stack
        given = None if initial_state is None else (
            [list(s) for s in initial_state] if len(stack.cells) > 1 or _nested(initial_state) else [initial_state])
        y, states, carry = x, [], None
        for i, (cell_spec, cw) in enumerate(zip(stack.cells, w)):
            rnn = nnx.RNN(self._cell(cell_spec, stack.policy, y.shape[-1], cw),
                          reverse=stack.go_backwards and i == 0, keep_order=False)
            init = None if given is None else _carry(cell_spec[0], given[i])
            carry, y = rnn(y, initial_carry=init, seq_lengths=seq_lengths, return_carry=True)
            states += _states(cell_spec[0], carry)
        if stack.return_sequences:
            out = zero_padding(y)
        else:  # without a mask the last step's output; with seq_lengths, the last valid step's (the carry's h)
            out = y[:, -1] if seq_lengths is None else _h(stack.cells[-1][0], carry)
        return [out], states

    def _cell(self, cell_spec: tuple, policy: str | None, input_dim: int, w: list) -> Any:
        """A Flax NNX cell for one Keras cell config, its parameters set from Keras's weights ``w``."""
        jnp, nnx = self.jnp, self.nnx
        name, cfg = cell_spec
        compute, variables = _dtypes(cfg, policy)
        units = cfg["units"]
        kw = {"dtype": jnp.dtype(compute), "param_dtype": jnp.dtype(variables), "rngs": nnx.Rngs(0),
              "activation_fn": self.act[cfg.get("activation", "tanh")]}
        if variables in HALF and not (name == "LSTM" and self.lstm_cell == "LSTMCell"):
            # Flax finding: SimpleCell, GRUCell and OptimizedLSTMCell initialise recurrent_kernel with
            # initializers.orthogonal() in param_dtype, whose QR has no float16/bfloat16 kernel on CPU
            # (NotImplementedError at construction); LSTMCell uses Flax's own modified_orthogonal
            # (QR in float32, then a cast) "for compatibility with half precision". The initial
            # values are overwritten below; only construction needs this.
            kw["recurrent_kernel_init"] = self.modified_orthogonal
        kernel, recurrent_kernel = w[0], w[1]  # (input_dim, G·units), (units, G·units)
        use_bias = cfg.get("use_bias", True)
        bias = w[2] if use_bias else None
        if name == "SimpleRNN":
            cell = nnx.SimpleCell(input_dim, units, **kw)
            _set(cell.dense_i.kernel, kernel)
            _set(cell.dense_h.kernel, recurrent_kernel)
            _set(cell.dense_i.bias, bias if use_bias else jnp.zeros((units,), kernel.dtype))
            return cell
        kw["gate_fn"] = self.act[cfg.get("recurrent_activation", "sigmoid")]
        idx = _index(name, units)  # Keras's columns in Flax's gate order
        if name == "LSTM":
            b = bias[idx] if use_bias else jnp.zeros((4 * units,), kernel.dtype)  # (4·units,)
            if self.lstm_cell == "OptimizedLSTMCell":
                cell = nnx.OptimizedLSTMCell(input_dim, units, **kw)
                _set(cell.dense_i.kernel, kernel[:, idx])
                _set(cell.dense_h.kernel, recurrent_kernel[:, idx])
                _set(cell.dense_h.bias, b)
                return cell
            cell = nnx.LSTMCell(input_dim, units, **kw)
            for k, (i_side, h_side) in enumerate((("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho"))):
                block = idx[k * units:(k + 1) * units]
                _set(getattr(cell, i_side).kernel, kernel[:, block])
                _set(getattr(cell, h_side).kernel, recurrent_kernel[:, block])
                _set(getattr(cell, h_side).bias, b[k * units:(k + 1) * units])
            return cell
        cell = nnx.GRUCell(input_dim, units, **kw)  # GRU, reset_after=True
        _set(cell.dense_i.kernel, kernel[:, idx])
        _set(cell.dense_h.kernel, recurrent_kernel[:, idx])
        if use_bias:  # z and r: input and recurrent bias are summed anyway; h: input bias only (b_hn is 0)
            b = bias[0] + jnp.concatenate([bias[1][:2 * units], jnp.zeros((units,), bias.dtype)])  # (3·units,)
            _set(cell.dense_i.bias, b[idx])
        else:
            _set(cell.dense_i.bias, jnp.zeros((3 * units,), kernel.dtype))
        return cell


class FlaxNNXOptimized(FlaxNNX):
    """The same, with LSTM run by ``nnx.OptimizedLSTMCell`` (one fused Linear per side)."""

    name = "flax.nnx-OptimizedLSTMCell"
    lstm_cell = "OptimizedLSTMCell"


# --- helpers ---------------------------------------------------------------------------------------
def _set(variable: Any, value: Any) -> None:
    """A cell parameter overwritten, in the parameter's own dtype (param_dtype)."""
    variable.value = value.astype(variable.value.dtype)


def _index(name: str, units: int) -> np.ndarray:
    """Keras's gate columns in Flax's order: ``keras_array[..., idx]`` is Flax's layout."""
    perm = gate_permutation(name, "keras3", "flax")
    return permute_gates(np.arange(len(perm) * units), perm, units, axis=0)


def _dtypes(cfg: dict, policy: str | None) -> tuple[str, str]:
    """(compute, variable) dtype of a cell: its own policy, else its layer's; mixed_float16 is
    Flax's dtype=float16 with param_dtype=float32."""
    own = configs.policy_name(cfg.get("dtype"))
    policy = own if own is not None else policy
    compute = MIXED.get(policy, policy) or "float32"
    return compute, "float32" if policy in MIXED else compute


def _variable_dtypes(layers: list[Stack]) -> list[str]:
    """The dtype of each Keras weight, in get_weights() order, as Flax holds it (param_dtype)."""
    return [_dtypes(cfg, stack.policy)[1] for stack in layers for _, cfg in stack.cells
            for _ in range(2 + bool(cfg.get("use_bias", True)))]


def _keras_states(name: str) -> tuple[str, ...]:
    return ("h", "c") if name == "LSTM" else ("h",)


def _carry(name: str, states: list) -> Any:
    """Keras's states of one cell ([h] or [h, c]) as its Flax carry (h, or (c, h))."""
    return (states[1], states[0]) if name == "LSTM" else states[0]


def _states(name: str, carry: Any) -> list:
    """A Flax carry as Keras's states of that cell: [h], or [h, c] from (c, h)."""
    return [carry[1], carry[0]] if name == "LSTM" else [carry]


def _h(name: str, carry: Any) -> Any:
    return carry[1] if name == "LSTM" else carry


def _nested(state: Any) -> bool:
    return isinstance(state, (list, tuple)) and len(state) > 0 and isinstance(state[0], (list, tuple))


def _carry_over(config: dict, states: list, layers: list[Stack]) -> list:
    """A call's final states (flat, Keras's order) as the next call's initial_state: nested one
    list per cell for RNN(StackedRNNCells)."""
    if config["class_name"] != "RNN":
        return states
    (stack,) = layers
    if len(stack.cells) == 1:
        return states  # RNN(cell) of one cell: [h] / [h, c] (a one-cell StackedRNNCells nests, see _forward)
    out, k = [], 0
    for name, _ in stack.cells:
        n = len(_keras_states(name))
        out.append(states[k:k + n])
        k += n
    return out


def _split(layers: list[Stack], weights: list) -> list[list[list]]:
    """Keras's flat get_weights() as [per stack [per cell [kernel, recurrent_kernel, (bias)]]]."""
    out, k = [], 0
    for stack in layers:
        cells = []
        for _, cfg in stack.cells:
            n = 2 + bool(cfg.get("use_bias", True))
            cells.append(list(weights[k:k + n]))
            k += n
        out.append(cells)
    if k != len(weights):
        raise ValueError(f"{len(weights)} weight arrays, expected {k} (kernel, recurrent_kernel, bias per cell)")
    return out


def _merge_fn(mode: str | None, jnp: Any, dtype: Any) -> Any:
    """Keras's merge_mode as nnx.Bidirectional's merge_fn (None: both outputs, as a tuple), on
    the two outputs cast to the wrapper's compute ``dtype``."""
    merge = {"concat": lambda a, b: jnp.concatenate([a, b], axis=-1), "sum": lambda a, b: a + b,
             "ave": lambda a, b: (a + b) / 2, "mul": lambda a, b: a * b, None: lambda a, b: (a, b)}[mode]
    return lambda a, b: merge(a.astype(dtype), b.astype(dtype))


def _compute_dtype(policy: str | None, default: Any) -> Any:
    return default if policy is None else MIXED.get(policy, policy)


def _lengths(mask: Any, layers: list[Stack]) -> np.ndarray | None:
    """Each row's number of valid steps, as nnx.RNN's seq_lengths; None without a mask. Decline
    what seq_lengths cannot express."""
    if mask is None:
        return None
    lengths = right_padded_lengths(mask, "seq_lengths", empty_row=(
        "seq_lengths of 0 (a fully masked row): nnx.RNN's final carry is then taken at index -1, the last "
        "step's, not the initial state"))  # (batch,)
    stack = layers[0]
    if stack.return_sequences and (lengths < np.shape(mask)[1]).any():
        if not stack.zero_output:
            raise Decline("an output sequence over padded rows with zero_output_for_mask=False: Keras repeats "
                          "each row's last output there; nnx.RNN returns the cell run over the padding")
        if stack.go_backwards and len(layers) == 1:
            raise Decline("go_backwards with an output sequence over padded rows: nnx.RNN(reverse=True) keeps "
                          "the padding at the end of the reversed sequence, Keras returns it first")
    return lengths.astype(np.int32)


def why_not(config: dict) -> str | None:
    """Why Flax NNX's cells cannot compute this Keras layer config exactly, or None when they can."""
    name = config.get("class_name")
    if name == "Bidirectional":
        outer = config.get("config", {})
        layer = outer.get("layer") or {}
        inner = layer.get("config", {})
        if layer.get("class_name") not in FLAX_CELL:
            return f"Bidirectional({layer.get('class_name')}): this adapter wraps SimpleRNN, LSTM and GRU only"
        if outer.get("merge_mode", "concat") not in MERGES:
            return f"Bidirectional(merge_mode={outer.get('merge_mode')!r}): not a Keras merge mode this adapter knows"
        if inner.get("go_backwards", False):
            return "Bidirectional(layer=...(go_backwards=True)): the directions swap; not wired to nnx.Bidirectional's"
        backward = outer.get("backward_layer") if explicit_backward(outer) else None
        for part in filter(None, (layer, backward)):
            reason = why_not(part)
            if reason:
                return reason
        if backward and backward.get("class_name") not in FLAX_CELL:
            return f"Bidirectional(backward_layer={backward.get('class_name')}): not a SimpleRNN, LSTM or GRU"
        return None
    if name == "RNN":
        cfg = config.get("config", {})
        unknown = sorted(set(cfg) - RNN_KEYS)
        if unknown:
            return f"RNN({unknown[0]}=...): an option this adapter does not know, so it may change the numbers"
        cell = cfg.get("cell") or {}
        members = cell.get("config", {}).get("cells", []) if cell.get("class_name") == "StackedRNNCells" else [cell]
        for member in members:
            if member.get("class_name") not in KERAS_CELL:
                return f"RNN({member.get('class_name')}): Flax NNX runs its own cells only, not a Keras cell"
            reason = _why_not_cell(KERAS_CELL[member["class_name"]], member.get("config", {}))
            if reason:
                return reason
        return _why_not_policy("RNN", cfg)
    if name not in FLAX_CELL:
        if str(name).startswith("ConvLSTM"):
            return f"{name}: Flax NNX has no convolutional LSTM cell (flax.linen has ConvLSTMCell; nnx does not)"
        return f"{name}: Flax NNX has SimpleCell, LSTMCell and GRUCell only"
    cfg = config.get("config", {})
    unknown = sorted(set(cfg) - LAYER_KEYS)
    if unknown:
        return f"{name}({unknown[0]}=...): an option this adapter does not know, so it may change the numbers"
    return _why_not_cell(name, cfg) or _why_not_policy(name, cfg)


def _why_not_policy(name: str, cfg: dict) -> str | None:
    policy = configs.policy_name(cfg.get("dtype"))
    if policy is not None and policy not in DTYPES and policy not in MIXED:
        return f"{name}(dtype={policy!r}): not a dtype policy this adapter maps onto a cell's dtype/param_dtype"
    return None


def _why_not_cell(name: str, cfg: dict) -> str | None:
    table = FRAMEWORKS["flax"].layers[name]
    for key, default in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
        if key == "recurrent_activation" and name == "SimpleRNN":
            continue
        value = cfg.get(key, default)
        allowed = getattr(table, key)
        if not isinstance(value, str) or value not in ACTIVATION_NAMES or (allowed is not None and value not in allowed):
            return f"{name}({key}={value!r}): not an activation this adapter maps to a JAX function"
    if name == "GRU" and not cfg.get("reset_after", True) and "reset_before" not in FRAMEWORKS["flax"].gru_variants:
        return ("GRU(reset_after=False): nnx.GRUCell has only the reset-after form, "
                "n = tanh(W_in x + b_in + r * (W_hn h))")
    return _why_not_policy(name, cfg)
