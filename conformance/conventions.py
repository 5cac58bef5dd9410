"""How six frameworks lay out SimpleRNN, LSTM and GRU, as data: gate order, weight and bias layout,
states, GRU variants, usable activations and hard_sigmoid. Keras 3, Keras 2 (tf-keras), PyTorch
(torch.nn), ONNX (RNN/LSTM/GRU ops), cuDNN (the cudnnRNN weight space) and Flax (linen and nnx).

Converters use ``gate_permutation`` and ``permute_gates``; the rest documents what a converter must
do, rendered by ``render_markdown`` into docs/conventions.md::

    python -m conformance.conventions > docs/conventions.md

Gates carry Keras's letters everywhere (SimpleRNN h; LSTM i, f, c, o; GRU z, r, h), so orders can
be compared; ``Layer.symbols`` keeps each framework's own letters. Each table names, in a comment
and in ``Framework.sources``, the source and version every entry was checked against.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LAYERS = ("SimpleRNN", "LSTM", "GRU")
GATE_MEANING = {
    "SimpleRNN": {"h": "new state"},
    "LSTM": {"i": "input gate", "f": "forget gate", "c": "cell candidate", "o": "output gate"},
    "GRU": {"z": "update gate", "r": "reset gate", "h": "candidate state"},
}
# The same in all six (keras gru.py, torch GRU docstring, ONNX GRU doc, cuDNN's cudnnRNNMode_t
# comment, flax GRUCell): only the gate order and the reset placement differ.
GRU_UPDATE = "h = z * h_prev + (1 - z) * candidate"


class Layer(NamedTuple):
    """One framework's form of one Keras layer."""
    api: str
    gates: tuple[str, ...]  # gate blocks in storage order, in Keras's letters
    symbols: tuple[str, ...]  # the same blocks in the framework's own letters
    activation: tuple[str, ...] | None  # Keras names it can compute as `activation`; None: any
    recurrent_activation: tuple[str, ...] | None = ()  # LSTM/GRU gates; () where there are none


class HardSigmoid(NamedTuple):
    """clip(slope * x + offset, 0, 1); slope None where the framework has none for these layers."""
    slope: float | None
    offset: float | None
    definition: str


class Framework(NamedTuple):
    name: str
    checked: str  # the version (or commit) every entry was checked against
    layers: dict[str, Layer]
    weights: str
    bias: str
    states: str
    gru_variants: tuple[str, ...]  # "reset_after": r multiplies (h @ U_h + b); "reset_before": r * h first
    gru_switch: str  # how a variant is chosen
    hard_sigmoid: HardSigmoid
    sources: tuple[str, ...]


ANY = None
_KERAS_LAYERS = {
    "SimpleRNN": Layer("keras.layers.SimpleRNN", ("h",), ("h",), ANY),
    "LSTM": Layer("keras.layers.LSTM", ("i", "f", "c", "o"), ("i", "f", "c", "o"), ANY, ANY),
    "GRU": Layer("keras.layers.GRU", ("z", "r", "h"), ("z", "r", "h"), ANY, ANY),
}
_KERAS_WEIGHTS = ("`kernel` (input_dim, G·units), `recurrent_kernel` (units, G·units): gate blocks side "
                  "by side on the last axis; `x @ kernel`")
_KERAS_BIAS = ("SimpleRNN `(units,)`; LSTM one `(4·units,)`; GRU `reset_after=True`: `(2, 3·units)` = "
               "[input bias; recurrent bias], `reset_after=False`: one `(3·units,)`, input side; "
               "`use_bias=False`: none")

# keras 3.15.1: keras/src/layers/rnn/lstm.py (kernel (input_dim, 4u), split as k_i, k_f, k_c, k_o),
# gru.py (z, r, h blocks; bias_shape (2, 3u) if reset_after else (3u,); h = z*h_tm1 + (1-z)*hh),
# simple_rnn.py, rnn.py (`return output, *states`), backend/tensorflow/nn.py hard_sigmoid =
# relu6(x + 3) / 6.
KERAS3 = Framework(
    "Keras 3", "keras 3.15.1", _KERAS_LAYERS, _KERAS_WEIGHTS, _KERAS_BIAS,
    "`[h]`, LSTM `[h, c]`, each (batch, units); `return_state=True` returns `(output, *states)`",
    ("reset_after", "reset_before"), "`reset_after=True` (default) / `False`",
    HardSigmoid(1 / 6, 0.5, "`relu6(x + 3) / 6`"),
    ("keras/src/layers/rnn/{simple_rnn,lstm,gru,rnn}.py",
     "keras/src/backend/tensorflow/nn.py (hard_sigmoid)"))

# tf-keras at dd0a7237 (the 2.21 line): tf_keras/layers/rnn/lstm.py (same i, f, c, o split),
# gru.py (reset_after=True default, bias (2, 3u)), backend.py hard_sigmoid: x * 0.2 + 0.5 clipped.
KERAS2 = Framework(
    "Keras 2 (tf-keras)", "tf-keras 2.21 (commit dd0a7237)", _KERAS_LAYERS, _KERAS_WEIGHTS, _KERAS_BIAS,
    "as Keras 3, but `return_state=True` returns a list `[output, *states]`",
    ("reset_after", "reset_before"), "`reset_after=True` (default) / `False`",
    HardSigmoid(0.2, 0.5, "`clip(0.2·x + 0.5, 0, 1)`"),
    ("tf_keras/layers/rnn/{lstm,gru}.py", "tf_keras/backend.py (hard_sigmoid)"))

# torch 2.13.0: torch/nn/modules/rnn.py docstrings: weight_ih_l[k] (W_ii|W_if|W_ig|W_io), shape
# (4*hidden_size, input_size); GRU (W_ir|W_iz|W_in); n_t = tanh(W_in x + b_in + r*(W_hn h + b_hn)),
# "differs on purpose"; h_n (D*num_layers, N, H_out). torch/nn/modules/activation.py Hardsigmoid.
TORCH = Framework(
    "PyTorch", "torch 2.13.0",
    {"SimpleRNN": Layer("torch.nn.RNN", ("h",), ("h",), ("tanh", "relu")),
     "LSTM": Layer("torch.nn.LSTM", ("i", "f", "c", "o"), ("i", "f", "g", "o"), ("tanh",), ("sigmoid",)),
     "GRU": Layer("torch.nn.GRU", ("r", "z", "h"), ("r", "z", "n"), ("tanh",), ("sigmoid",))},
    "`weight_ih_l0` (G·hidden, input), `weight_hh_l0` (G·hidden, hidden): gate blocks stacked on the "
    "first axis; `x @ W.T`, so each Keras matrix transposed",
    "`bias_ih_l0` and `bias_hh_l0`, (G·hidden,) each, both always added (`bias=False` drops both): a "
    "single Keras bias goes to one of them, zeros to the other; GRU `bias[0]` → `bias_ih`, `bias[1]` → `bias_hh`",
    "`h_0` / `(h_0, c_0)`, each (num_layers·D, batch, hidden); returns `output, h_n` / `output, (h_n, c_n)`; "
    "`batch_first=True` reorders input and output only, not states",
    ("reset_after",), "only the reset-after form",
    HardSigmoid(1 / 6, 0.5, "`nn.Hardsigmoid`: `x/6 + 1/2` clipped; not selectable in nn.RNN/LSTM/GRU"),
    ("torch/nn/modules/rnn.py (RNN, LSTM, GRU docstrings)", "torch/nn/modules/activation.py (Hardsigmoid)"))

# onnx/onnx onnx/defs/rnn/defs.cc (opset 22) and the operator docs: LSTM W[iofc], R[iofc],
# B = [Wb[iofc], Rb[iofc]] (num_directions, 8*hidden); GRU W[zrh], linear_before_reset default 0
# ("ht = g(Xt*(Wh^T) + (rt (.) Ht-1)*(Rh^T) + Rbh + Wbh)"); RNN Wi; HardSigmoid alpha 0.2, beta 0.5.
_ONNX_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "leaky_relu", "elu", "softsign", "softplus",
                     "hard_sigmoid")  # Relu, Tanh, Sigmoid; optional Affine, LeakyRelu, Elu, ... with alpha/beta
ONNX = Framework(
    "ONNX", "onnx opset 22",
    {"SimpleRNN": Layer("RNN", ("h",), ("i",), _ONNX_ACTIVATIONS),
     "LSTM": Layer("LSTM", ("i", "o", "f", "c"), ("i", "o", "f", "c"), _ONNX_ACTIVATIONS, _ONNX_ACTIVATIONS),
     "GRU": Layer("GRU", ("z", "r", "h"), ("z", "r", "h"), _ONNX_ACTIVATIONS, _ONNX_ACTIVATIONS)},
    "`W` [num_directions, G·hidden, input], `R` [num_directions, G·hidden, hidden]: blocks stacked on "
    "axis 1; `Xt·W^T`",
    "`B` [num_directions, 2·G·hidden] = `[Wb, Rb]` (all input biases, then all recurrent biases), default 0; "
    "LSTM peepholes `P` [num_directions, 3·hidden] in i, o, f order (Keras has none: omit)",
    "inputs `initial_h`, `initial_c`; outputs `Y` [seq, num_directions, batch, hidden], `Y_h`, `Y_c` "
    "[num_directions, batch, hidden] (`layout=0`; `layout=1` puts batch first)",
    ("reset_before", "reset_after"), "`linear_before_reset=0` (default, reset before) / `1` (reset after)",
    HardSigmoid(0.2, 0.5, "`HardSigmoid`: `max(0, min(1, alpha·x + beta))`, default alpha 0.2, beta 0.5; "
                          "set per gate via `activation_alpha`/`activation_beta` (Keras 3's: alpha 1/6)"),
    ("onnx/defs/rnn/defs.cc (opset 22 schemas)", "operator docs RNN, LSTM, GRU (v14/22), HardSigmoid (v6)"))

# NVIDIA cuDNN: cudnnGetRNNWeightParams / cudnnGetRNNLinLayerMatrixParams, linLayerID: LSTM "0 and 4
# input gate, 1 and 5 forget gate, 2 and 6 new memory gate, 3 and 7 output gate"; GRU "0 and 3 reset
# gate, 1 and 4 update gate, 2 and 5 new memory gate" (API reference DA-09702-001 v7.6.5, as quoted
# verbatim in chainer and gorgonia/cu). cudnn.h / cudnn_adv.h comments: CUDNN_GRU "h' = tanh(r *
# Uh(t-1) + Wx) and h = (1 - z) * h' + z * h(t-1)"; cudnnRNNBiasMode_t CUDNN_RNN_DOUBLE_BIAS "default,
# rnn cell formulas use two bias vectors". Cross-checked with keras
# backend/tensorflow/rnn.py: _cudnn_gru swaps z and r ("canonical [z, r, h], cuDNN [r, z, h]"),
# _cudnn_lstm passes i, f, c, o unchanged, transposes each block, and uses zeros as input biases.
CUDNN = Framework(
    "cuDNN", "cuDNN RNN API (v7.6.5 reference, v8 headers)",
    {"SimpleRNN": Layer("CUDNN_RNN_TANH / CUDNN_RNN_RELU", ("h",), ("h",), ("tanh", "relu")),
     "LSTM": Layer("CUDNN_LSTM", ("i", "f", "c", "o"), ("i", "f", "c'", "o"), ("tanh",), ("sigmoid",)),
     "GRU": Layer("CUDNN_GRU", ("r", "z", "h"), ("r", "i", "h'"), ("tanh",), ("sigmoid",))},
    "one flat weight space; per layer and direction, matrices by `linLayerID`: 0…G−1 input, G…2G−1 "
    "recurrent, each (hidden, input) or (hidden, hidden) row-major: each Keras gate block transposed",
    "`CUDNN_RNN_DOUBLE_BIAS` (default): an input and a recurrent bias per gate, in `linLayerID` order; "
    "also `NO_BIAS`, `SINGLE_INP_BIAS`, `SINGLE_REC_BIAS`",
    "`hx`, `cx` in, `hy`, `cy` out, each (num_layers·D, batch, hidden)",
    ("reset_after",), "only the reset-after form",
    HardSigmoid(None, None, "none: gates are always sigmoid"),
    ("cuDNN API reference: cudnnRNNMode_t, cudnnRNNBiasMode_t, cudnnGetRNNWeightParams (linLayerID)",
     "keras/src/backend/tensorflow/rnn.py (_cudnn_lstm, _cudnn_gru, _standardize_cudnn_weights)"))

# google/flax at 18f8f311 (flax 0.12.8): linen/recurrent.py LSTMCell (`c, h = carry`; Dense ii..io
# use_bias=False, hi..ho use_bias=True), GRUCell (ir, iz, in with bias; hr, hz without; hn
# use_bias=True; new_h = (1 - z) * n + z * h), SimpleCell; nnx/nn/recurrent.py LSTMCell (Linear
# ii, if_, ig, io without bias, hi, hf, hg, ho with), OptimizedLSTMCell (dense_i (in, 4h) split
# i, f, g, o), GRUCell (dense_i (in, 3h) "r, z, n" with bias, dense_h use_bias=False: no b_hn
# although the docstring writes one, google/flax#5594), SimpleCell (dense_i with bias, dense_h
# without); every initialize_carry builds the carry in param_dtype. jax.nn.hard_sigmoid =
# relu6(x + 3) / 6. Checked by running them: conformance/adapters/flax_nnx.py.
FLAX = Framework(
    "Flax", "flax 0.12.8 (commit 18f8f311)",
    {"SimpleRNN": Layer("SimpleCell", ("h",), ("h",), ANY),
     "LSTM": Layer("LSTMCell / OptimizedLSTMCell", ("i", "f", "c", "o"), ("i", "f", "g", "o"), ANY, ANY),
     "GRU": Layer("GRUCell", ("r", "z", "h"), ("r", "z", "n"), ANY, ANY)},
    "Dense kernels (in, hidden), `x @ kernel` as in Keras; linen: one Dense per gate and side (`ii`…`io`, "
    "`hi`…`ho`; GRU `ir`, `iz`, `in`, `hr`, `hz`, `hn`); nnx `LSTMCell`: the same per-gate Linear layers "
    "(`ii`, `if_`, `ig`, `io`, `hi`…`ho`); nnx `OptimizedLSTMCell`, `GRUCell`, `SimpleCell`: fused "
    "`dense_i` (in, G·hidden), `dense_h` (hidden, G·hidden)",
    "LSTM: recurrent side only; SimpleCell: input side only; GRU: input side plus `hn` in linen, input "
    "side only in nnx (no `b_hn`, google/flax#5594: a Keras GRU with a non-zero recurrent h bias does not "
    "fit; its recurrent z and r biases add to the input ones)",
    "carry: LSTM `(c, h)`, c first; GRU, SimpleCell `h`; each (batch, hidden); `initialize_carry` "
    "builds it in `param_dtype`, so float32 under mixed precision (`dtype=float16`)",
    ("reset_after",), "only the reset-after form",
    HardSigmoid(1 / 6, 0.5, "`jax.nn.hard_sigmoid` = `relu6(x + 3) / 6`, as `gate_fn`"),
    ("flax/linen/recurrent.py", "flax/nnx/nn/recurrent.py", "jax/_src/nn/functions.py (hard_sigmoid, jax 0.10.2)"))

FRAMEWORKS: dict[str, Framework] = {
    "keras3": KERAS3, "keras2": KERAS2, "torch": TORCH, "onnx": ONNX, "cudnn": CUDNN, "flax": FLAX}


def layer(name: str, framework: str) -> Layer:
    """The table entry for one Keras layer (``"LSTM"``) in one framework (``"torch"``)."""
    if name not in LAYERS:
        raise ValueError(f"layer={name!r}, expected one of {list(LAYERS)}")
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}, expected one of {list(FRAMEWORKS)}")
    return FRAMEWORKS[framework].layers[name]


def gate_permutation(name: str, src: str, dst: str) -> list[int]:
    """Block indices that take ``src``'s gate order to ``dst``'s: ``dst_blocks = [src_blocks[k]
    for k in perm]``. Keras → torch is [1, 0, 2] for GRU, [0, 1, 2, 3] for LSTM."""
    src_gates, dst_gates = layer(name, src).gates, layer(name, dst).gates
    return [src_gates.index(g) for g in dst_gates]


def permute_gates(array: np.ndarray, perm: list[int], units: int, *, axis: int = -1) -> np.ndarray:
    """``array`` with its gate blocks (``units`` wide each, along ``axis``) reordered by ``perm``."""
    array = np.asarray(array)
    if sorted(perm) != list(range(len(perm))):
        raise ValueError(f"perm={perm}, expected a permutation of 0..{len(perm) - 1}")
    if array.shape[axis] != len(perm) * units:
        raise ValueError(f"array.shape={array.shape}: axis {axis} has {array.shape[axis]} entries, "
                         f"expected {len(perm)} gates x units={units} = {len(perm) * units}")
    blocks = np.split(array, len(perm), axis=axis)  # G arrays, units wide on `axis`
    return np.concatenate([blocks[k] for k in perm], axis=axis)


# --- rendering ----------------------------------------------------------------------------------
def _order(entry: Layer) -> str:
    return ", ".join(g if g == s else f"{g} ({s})" for g, s in zip(entry.gates, entry.symbols))


def _names(names: tuple[str, ...] | None) -> str:
    return "any" if names is None else ", ".join(names) or "—"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def _number(x: float | None) -> str:
    return "—" if x is None else {1 / 6: "1/6"}.get(x, f"{x:g}")


def render_markdown() -> str:
    """Every table as one Markdown document (docs/conventions.md)."""
    fws = list(FRAMEWORKS.values())
    meaning = "; ".join(f"{name} " + ", ".join(f"{g} {m}" for g, m in gates.items())
                        for name, gates in GATE_MEANING.items())
    out = ["<!-- Generated by `python -m conformance.conventions > docs/conventions.md`: "
           "edit conformance/conventions.py, not this file. -->",
           "# Recurrent-layer conventions across frameworks", "",
           "What a weight converter must know, per framework, to move a Keras SimpleRNN, LSTM or GRU "
           "(and back). Gates are named with Keras's letters, the framework's own in parentheses "
           f"where they differ ({meaning}). G is the number of gate blocks (1, 4, 3).", "",
           "## Gate order", ""]
    out += _table(("framework", *LAYERS), [(f.name, *(_order(f.layers[n]) for n in LAYERS)) for f in fws])
    out += ["Block permutations from Keras (`gate_permutation(layer, \"keras3\", framework)`; "
            "`dst = src[perm]`):", ""]
    out += _table(("framework", "LSTM", "GRU"), [(f.name, *(str(gate_permutation(n, "keras3", key))
                                                           for n in ("LSTM", "GRU")))
                                                 for key, f in FRAMEWORKS.items()])
    out += ["## APIs", ""]
    out += _table(("framework", *LAYERS, "checked against"),
                  [(f.name, *(f"`{f.layers[n].api}`" for n in LAYERS), f.checked) for f in fws])
    for title, field in (("Weights", "weights"), ("Biases", "bias"), ("States", "states")):
        out += [f"## {title}", ""] + _table(("framework", title.lower()), [(f.name, getattr(f, field)) for f in fws])
    out += ["## GRU variants", "",
            f"All six update the state as `{GRU_UPDATE}`. They differ in where the reset gate acts: "
            "*reset after* is `r * (h_prev @ U_h + b_rec_h)` (Keras `reset_after=True`, PyTorch, cuDNN); "
            "*reset before* is `(r * h_prev) @ U_h`.", ""]
    out += _table(("framework", "reset after", "reset before", "chosen by"),
                  [(f.name, *("yes" if v in f.gru_variants else "no" for v in ("reset_after", "reset_before")),
                    f.gru_switch) for f in fws])
    out += ["## Activations", "", "Keras names of the activations each form can compute (any: a "
            "configurable function).", ""]
    out += _table(("framework", "SimpleRNN activation", "LSTM/GRU activation", "LSTM/GRU recurrent_activation"),
                  [(f.name, _names(f.layers["SimpleRNN"].activation), _names(f.layers["LSTM"].activation),
                    _names(f.layers["LSTM"].recurrent_activation)) for f in fws])
    out += ["## hard_sigmoid", "", "`clip(slope·x + offset, 0, 1)`. Keras 3 and Keras 2 differ by up to "
            "0.083 (at |x| = 2.5): a Keras 2 model's `hard_sigmoid` is not Keras 3's.", ""]
    out += _table(("framework", "slope", "offset", "definition"),
                  [(f.name, _number(f.hard_sigmoid.slope), _number(f.hard_sigmoid.offset),
                    f.hard_sigmoid.definition) for f in fws])
    out += ["## Sources", ""] + [f"- **{f.name}**, {f.checked}: " + "; ".join(f.sources) for f in fws]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
