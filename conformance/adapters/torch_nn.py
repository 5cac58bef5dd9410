"""``--impl torch``: Keras SimpleRNN, LSTM and GRU run by ``torch.nn.RNN``, ``LSTM`` and ``GRU``.

The weights are converted with the gate orders of conformance/conventions.py (P: the Keras → torch
block permutation, identity for LSTM, [1, 0, 2] for GRU)::

    weight_ih_l0 = kernel[:, P].T              # (G·units, input_dim)
    weight_hh_l0 = recurrent_kernel[:, P].T    # (G·units, units)
    bias_ih_l0, bias_hh_l0 = bias[P], 0        # SimpleRNN, LSTM: torch adds both, only the sum counts
    bias_ih_l0, bias_hh_l0 = bias[0][P], bias[1][P]   # GRU(reset_after=True): b_hn sits inside r·(…)

Masks: a right-padded mask (each row valid for its first n >= 1 steps) is what
``torch.nn.utils.rnn.pack_padded_sequence`` takes, as a torch user feeds padded batches: the final
states are each row's state at its last valid step, as Keras keeps them; the last output
(return_sequences=False) is torch's final h; a sequence comes back from ``pad_packed_sequence``
with zeros after each row's length, which is Keras's output where zero_output_for_mask=True.
Declined at run time (``Decline``), with the reason: other mask patterns, fully masked rows,
go_backwards with a mask, and sequences where Keras repeats the last output (zero_output_for_mask
False).

Bidirectional(layer) is one module with ``bidirectional=True``: its reverse direction is Keras's
backward layer (same config), its outputs already aligned to the input's time order as Keras
aligns them; the merge (concat, sum, ave, mul, or None: two outputs) is done on torch's tensors.
States: Keras's forward states then backward states are torch's (2, batch, units) h0/h_n.

Whatever torch.nn cannot express is declined with a reason (``supports``, ``Decline``), never
approximated. ``import torch`` happens in the constructor, so importing this module never needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance import configs
from conformance.adapters import Decline, right_padded_lengths
from conformance.conventions import FRAMEWORKS, gate_permutation, permute_gates
from conformance.features import explicit_backward

TORCH_CLASS = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}
DTYPES = ("float16", "float32", "float64")
# Config keys that cannot change the outputs of one inference call without a mask (initializers,
# regularizers, constraints, dropout at training=False, kernel choice) or that are checked below.
KNOWN_KEYS = frozenset({
    "name", "trainable", "dtype", "seed", "units", "activation", "recurrent_activation", "use_bias",
    "reset_after", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
    "time_major", "zero_output_for_mask", "implementation", "use_cudnn", "unit_forget_bias",
    "dropout", "recurrent_dropout", "kernel_initializer", "recurrent_initializer", "bias_initializer",
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
    "kernel_constraint", "recurrent_constraint", "bias_constraint"})
OTHER_LAYERS = {
    "RNN": "RNN(cell): torch.nn runs its own three cells only, not a Keras cell or a stack of cells",
}
MERGES = ("concat", "sum", "ave", "mul", None)


class TorchNN:
    """A Keras recurrent layer config run by the matching torch.nn module (CPU, inference)."""

    name = "torch.nn"

    def __init__(self) -> None:
        try:
            import torch
        except ImportError as e:
            raise ImportError(f"the torch.nn adapter needs PyTorch ({e}): pip install torch==2.13.0") from None
        self.torch = torch
        self.version = torch.__version__

    def supports(self, config: dict) -> bool | str:
        return why_not(config) or True

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask: Any = None,
            initial_state: Any = None) -> list[np.ndarray]:
        with self.torch.no_grad():
            outputs, *_ = self._forward(config, weights, inputs, mask, initial_state, grad=False)
        return [o.numpy().copy() for o in outputs]

    def run_vjp(self, config: dict, weights: list, calls: list, cotangents: list, *, training: bool = False,
                dropout_masks: Any = None) -> dict:
        """torch.autograd's gradients, converted back to Keras's weight layout (the inverse of
        ``torch_parameters``: the gate permutation undone, and a transpose)."""
        torch = self.torch
        (call,) = calls  # run() covers single calls only (no run_calls): stateful sequences are declined
        outputs, x, given, params = self._forward(config, weights, call["inputs"], call["mask"],
                                                  call["initial_state"], grad=True)
        loss = sum((o * torch.from_numpy(np.ascontiguousarray(c))).sum() for o, c in zip(outputs, cotangents))
        hx_list = given or []  # the initial states as Keras lists them
        named = list(params.items())
        grads = torch.autograd.grad(loss, [x, *hx_list, *[t for _, t in named]], allow_unused=True)
        d_x = grads[0].numpy()  # with respect to the inputs as given (the flip for go_backwards is in the graph)
        d_states = [g.numpy() if g is not None else np.zeros(tuple(s.shape), d_x.dtype)
                    for g, s in zip(grads[1:1 + len(hx_list)], hx_list)]
        d_params = {name: (g.numpy() if g is not None else np.zeros(tuple(t.shape), d_x.dtype))
                    for (name, t), g in zip(named, grads[1 + len(hx_list):])}
        if config["class_name"] == "Bidirectional":  # Keras: the forward layer's weights, then the backward's
            layer = config["config"]["layer"]
            weights_grads = [g for suffix in ("", "_reverse") for g in keras_gradients(
                layer["class_name"], layer["config"], {k[:len(k) - len(suffix)]: v for k, v in d_params.items()
                                                       if k.endswith(suffix) and (suffix or "_reverse" not in k)})]
        else:
            weights_grads = keras_gradients(config["class_name"], config["config"], d_params)
        return {"inputs": [np.ascontiguousarray(d_x)], "initial_state": [d_states if call["initial_state"] is not None else None],
                "weights": weights_grads}

    def _forward(self, config: dict, weights: list, inputs: np.ndarray, mask: Any, initial_state: Any, *,
                 grad: bool) -> tuple[list, Any, Any, dict]:
        """(outputs as torch tensors, the input tensor, the initial state tensors, the module's
        parameters by name); with ``grad`` the inputs and states require gradients."""
        reason = why_not(config)
        if reason:
            raise NotImplementedError(reason)
        torch = self.torch
        bidirectional = config["class_name"] == "Bidirectional"
        layer = config["config"]["layer"] if bidirectional else config
        name, cfg = layer["class_name"], layer["config"]
        return_sequences = cfg.get("return_sequences", False)
        # Keras forces zero_output_for_mask = return_sequences on both directions of a Bidirectional.
        zero_output = return_sequences if bidirectional else cfg.get("zero_output_for_mask", False)
        lengths = _right_padded_lengths(mask, cfg.get("go_backwards", False), return_sequences, zero_output)
        dtype = np.asarray(inputs).dtype
        x = torch.tensor(np.ascontiguousarray(inputs), requires_grad=grad)  # (batch, time, input_dim)
        x_run = x.flip(1) if cfg.get("go_backwards", False) else x  # Keras returns this processing order too
        directions = 2 if bidirectional else 1
        module = self._module(name, cfg, x.shape[-1], x.dtype, bidirectional)
        weights = [np.asarray(w, dtype) for w in weights]
        params = torch_parameters(name, cfg, weights[:len(weights) // directions])
        if bidirectional:
            params.update({f"{k}_reverse": v for k, v in
                           torch_parameters(name, cfg, weights[len(weights) // directions:]).items()})
        module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()})
        hx = given = None
        if initial_state is not None:  # Keras: [h, (c)] per direction, forward first; torch: (directions, B, u)
            given = [torch.tensor(np.asarray(s, dtype), requires_grad=grad) for s in initial_state]
            per = len(given) // directions
            h0 = [torch.stack([given[d * per + k] for d in range(directions)]) for k in range(per)]
            hx = tuple(h0) if name == "LSTM" else h0[0]
        if lengths is None:
            y, state = module(x_run, hx)  # y (batch, time, directions * units); each state (directions, batch, units)
        else:
            packed = torch.nn.utils.rnn.pack_padded_sequence(x_run, torch.tensor(lengths), batch_first=True,
                                                             enforce_sorted=False)
            y, state = module(packed, hx)
            y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        states = list(state) if name == "LSTM" else [state]
        units = cfg["units"]
        if return_sequences:
            out = [y[..., :units], y[..., units:]] if bidirectional else [y]
        else:  # the last output: each direction's final h (a row's last valid step; the reverse's first)
            out = [states[0][d] for d in range(directions)]
        if bidirectional:
            out = _merge(config["config"].get("merge_mode", "concat"), *out, torch)
        keras_states = [s[d] for d in range(directions) for s in states]  # forward's, then backward's
        outputs = out + (keras_states if cfg.get("return_state", False) else [])
        return outputs, x, given, dict(module.named_parameters())

    def _module(self, name: str, cfg: dict, input_dim: int, dtype: Any, bidirectional: bool = False) -> Any:
        nn = self.torch.nn
        kwargs = dict(input_size=input_dim, hidden_size=cfg["units"], bias=cfg.get("use_bias", True),
                      batch_first=True, dtype=dtype, bidirectional=bidirectional)
        if name == "SimpleRNN":
            return nn.RNN(nonlinearity=cfg.get("activation", "tanh"), **kwargs)
        return getattr(nn, TORCH_CLASS[name])(**kwargs)


def torch_parameters(name: str, cfg: dict, weights: list) -> dict[str, np.ndarray]:
    """Keras ``get_weights()`` of a SimpleRNN/LSTM/GRU as a torch.nn state dict (NumPy arrays)."""
    units, use_bias = cfg["units"], cfg.get("use_bias", True)
    if len(weights) != 2 + use_bias:
        raise ValueError(f"{len(weights)} weight arrays, expected {2 + use_bias} "
                         f"([kernel, recurrent_kernel{', bias' if use_bias else ''}])")
    perm = gate_permutation(name, "keras3", "torch")
    kernel, recurrent_kernel = weights[:2]  # (input_dim, G·units), (units, G·units)
    params = {"weight_ih_l0": permute_gates(kernel, perm, units, axis=1).T,  # (G·units, input_dim)
              "weight_hh_l0": permute_gates(recurrent_kernel, perm, units, axis=1).T}  # (G·units, units)
    if use_bias:
        bias = weights[2]
        b_ih, b_hh = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))  # (G·units,) each
        params["bias_ih_l0"] = permute_gates(b_ih, perm, units, axis=0)
        params["bias_hh_l0"] = permute_gates(b_hh, perm, units, axis=0)
    return params


def keras_gradients(name: str, cfg: dict, d_params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """torch.nn's parameter gradients as the gradients of Keras's ``get_weights()``: the inverse of
    ``torch_parameters`` (bias_hh is torch's own, zero and not a Keras weight, for SimpleRNN/LSTM)."""
    units = cfg["units"]
    back = gate_permutation(name, "torch", "keras3")
    grads = [permute_gates(d_params["weight_ih_l0"].T, back, units, axis=1),  # (input_dim, G·units)
             permute_gates(d_params["weight_hh_l0"].T, back, units, axis=1)]  # (units, G·units)
    if cfg.get("use_bias", True):
        d_ih = permute_gates(d_params["bias_ih_l0"], back, units, axis=0)
        if name == "GRU" and cfg.get("reset_after", True):
            grads.append(np.stack([d_ih, permute_gates(d_params["bias_hh_l0"], back, units, axis=0)]))
        else:
            grads.append(d_ih)
    return grads


def _right_padded_lengths(mask: Any, go_backwards: bool, return_sequences: bool, zero_output: bool) -> list | None:
    """Each row's number of valid steps, for pack_padded_sequence; None without a mask. Decline
    what packing cannot express."""
    if mask is None:
        return None
    lengths = right_padded_lengths(mask, "pack_padded_sequence")  # (batch,)
    if go_backwards:
        raise Decline("go_backwards with a mask: the reversed right padding is left padding, which "
                      "pack_padded_sequence does not take")
    if return_sequences and not zero_output and (lengths < np.shape(mask)[1]).any():
        raise Decline("pad_packed_sequence emits zeros after each row's length, where Keras repeats the row's "
                      "last output (zero_output_for_mask=False)")
    return [int(n) for n in lengths]


def _merge(mode: str | None, forward: Any, backward: Any, torch: Any) -> list:
    """Bidirectional's merge of the two directions' outputs, on torch's tensors (Keras's merge_mode)."""
    if mode is None:
        return [forward, backward]
    return [{"concat": lambda: torch.cat([forward, backward], dim=-1), "sum": lambda: forward + backward,
             "ave": lambda: (forward + backward) / 2, "mul": lambda: forward * backward}[mode]()]


def why_not(config: dict) -> str | None:
    """Why torch.nn cannot compute this Keras layer config exactly, or None when it can."""
    name = config.get("class_name")
    if name == "Bidirectional":
        outer = config.get("config", {})
        layer = outer.get("layer") or {}
        inner = layer.get("config", {})
        if layer.get("class_name") not in TORCH_CLASS:
            return f"Bidirectional({layer.get('class_name')}): torch.nn has bidirectional RNN, LSTM and GRU only"
        if explicit_backward(outer):
            return "Bidirectional(backward_layer=...): torch's bidirectional=True runs one config both ways"
        if outer.get("merge_mode", "concat") not in MERGES:
            return f"Bidirectional(merge_mode={outer.get('merge_mode')!r}): not a Keras merge mode this adapter knows"
        if inner.get("go_backwards", False):
            return "Bidirectional(layer=...(go_backwards=True)): the directions swap; not wired to torch's"
        if configs.policy_name(inner.get("dtype")) != configs.policy_name(outer.get("dtype")):
            return "Bidirectional: a wrapped layer with a dtype of its own; torch's module has one dtype"
        return why_not(layer)
    if name not in TORCH_CLASS:
        if str(name).startswith("ConvLSTM"):
            return f"{name}: torch.nn has no convolutional LSTM"
        return OTHER_LAYERS.get(name, f"{name}: torch.nn has RNN, LSTM and GRU only")
    cfg = config.get("config", {})
    unknown = sorted(set(cfg) - KNOWN_KEYS)
    if unknown:
        return f"{name}({unknown[0]}=...): an option this adapter does not know, so it may change the numbers"
    policy = configs.policy_name(cfg.get("dtype"))
    if policy is not None and policy not in DTYPES:
        return f"{name}(dtype={policy!r}): this adapter computes in one dtype, one of {DTYPES}"
    if cfg.get("time_major", False):
        return f"{name}(time_major=True): not modelled by this adapter"
    table = FRAMEWORKS["torch"].layers[name]
    activation = cfg.get("activation", "tanh")
    if activation not in table.activation:
        return (f"{name}(activation=...): torch.nn.{TORCH_CLASS[name]} computes "
                f"{' or '.join(table.activation)} only")
    recurrent = cfg.get("recurrent_activation", "sigmoid")
    if name != "SimpleRNN" and recurrent not in table.recurrent_activation:
        return (f"{name}(recurrent_activation=...): torch.nn.{TORCH_CLASS[name]} gates are "
                f"{' or '.join(table.recurrent_activation)} only")
    if name == "GRU" and not cfg.get("reset_after", True) and "reset_before" not in FRAMEWORKS["torch"].gru_variants:
        return ("GRU(reset_after=False): torch.nn.GRU has only the reset-after form, "
                "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))")
    return None
