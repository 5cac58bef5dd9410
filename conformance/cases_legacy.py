"""The case matrices of Keras 0.2.0 and 1.2.2 (``refimpl.legacy``), run by the historical oracle
(``conformance.oracle.historical``). Every case is float64 with random per-gate weights and
non-zero biases (conformance/data.py), and sizes of at least 2: Keras 1's Theano ``rnn`` squeezes
its outputs (``T.squeeze``), so a batch, a sequence or an output_dim of 1 loses that axis.

A layer spec holds the version's own arguments (output_dim, inner_activation, consume_less, ...);
the oracle adds ``input_dim``. Masked cases zero their masked steps' inputs: the version's
``Masking(mask_value=0.)`` layer derives the mask from them (data.py's patterns).
"""

from __future__ import annotations

from conformance.case import Case, spec

KERAS0_LAYERS = ("SimpleRNN", "GRU", "LSTM", "SimpleDeepRNN", "JZS1", "JZS2", "JZS3")
KERAS1_LAYERS = ("SimpleRNN", "GRU", "LSTM")
MASKS = ("right_pad", "left_pad", "holes", "masked_row", "first_masked")
# The activations each version has (refimpl/legacy/names.py), and those of its inner activation.
ACTIVATIONS = {0: ("tanh", "sigmoid", "hard_sigmoid", "relu", "softplus", "linear", "softmax",
                   "time_distributed_softmax"),
               1: ("tanh", "sigmoid", "hard_sigmoid", "relu", "softplus", "softsign", "elu", "linear", "softmax")}
INNER = {0: ("sigmoid", "hard_sigmoid", "tanh", "linear"), 1: ("sigmoid", "hard_sigmoid", "tanh", "linear")}
GATED = ("GRU", "LSTM", "SimpleDeepRNN", "JZS1", "JZS2", "JZS3")


def _common(version: int, name: str) -> list[Case]:
    """What both versions share: return_sequences, masks, activations, odd sizes."""
    out = []
    for rs in (True, False):
        out.append(Case(spec(name, output_dim=3, return_sequences=rs)))
        for mask in MASKS:
            out.append(Case(spec(name, output_dim=3, return_sequences=rs), mask=mask))
    for act in ACTIVATIONS[version]:
        out.append(Case(spec(name, output_dim=3, activation=act, return_sequences=True)))
    if name in GATED:
        for inner in INNER[version]:
            out.append(Case(spec(name, output_dim=3, inner_activation=inner, return_sequences=True)))
    out += [Case(spec(name, output_dim=5, return_sequences=True), batch=2, steps=9, features=7),
            Case(spec(name, output_dim=4, return_sequences=True), features=4),  # input_dim == output_dim
            Case(spec(name, output_dim=2), batch=4, steps=12, features=3, mask="holes")]
    return out


def keras0_cases() -> list[Case]:
    out = []
    for name in KERAS0_LAYERS:
        out += _common(0, name)
        if name == "SimpleDeepRNN":
            for depth in (1, 2, 4):
                out.append(Case(spec(name, output_dim=3, depth=depth, return_sequences=True)))
                out.append(Case(spec(name, output_dim=3, depth=depth, return_sequences=True), mask="holes"))
        if name == "LSTM":
            out.append(Case(spec(name, output_dim=3, forget_bias_init="zero", return_sequences=True)))
        out.append(Case(spec(name, output_dim=3, truncate_gradient=2, return_sequences=True)))
    return out


def keras1_cases() -> list[Case]:
    out = []
    for name in KERAS1_LAYERS:
        out += _common(1, name)
        for mode in ("cpu", "mem", "gpu"):
            for rs in (True, False):
                out.append(Case(spec(name, output_dim=3, consume_less=mode, return_sequences=rs), mask="right_pad"))
            out.append(Case(spec(name, output_dim=3, consume_less=mode, go_backwards=True, return_sequences=True),
                            mask="left_pad"))
            out.append(Case(spec(name, output_dim=3, consume_less=mode, stateful=True, return_sequences=True),
                            stateful_calls=True, steps=6))
        out += [Case(spec(name, output_dim=3, go_backwards=True)),
                Case(spec(name, output_dim=3, go_backwards=True, return_sequences=True)),
                Case(spec(name, output_dim=3, unroll=True, return_sequences=True), mask="holes"),
                Case(spec(name, output_dim=3, stateful=True), stateful_calls=True, mask="right_pad", steps=8),
                # Dropout changes nothing at inference; it must still be accepted.
                Case(spec(name, output_dim=3, dropout_W=0.3, dropout_U=0.2, return_sequences=True))]
    return out


def legacy_cases(version: int) -> list[Case]:
    return {0: keras0_cases, 1: keras1_cases}[version]()
