"""Drift across major versions: an old checkpoint, loaded into a later Keras, computes what?

``rnn-conformance diff A B`` with A a Keras 0.2.0 or 1.2.2 set and B a set of a later Keras: every
SimpleRNN, GRU and LSTM case of A (its config, weights and calls, and the outputs the old Keras
recorded) is ported to B's Keras (``refimpl.legacy.port``: the old defaults written out, the
gates reordered) and run there; ``diff.diff_sets`` then says which numbers moved and by how much.
The later Keras runs as refimpl at that version (``keras_version``), so no Keras needs installing;
tests/live/test_legacy_port.py and tests/live/test_keras2.py check that real Keras 3 and tf-keras
compute the same numbers for every ported case.
JZS1/2/3 and SimpleDeepRNN have no later twin and are left out (counted as "only in A").
"""

from __future__ import annotations

import refimpl
from conformance.adapters.refimpl_adapter import play
from conformance.recorded import RecordedCase
from refimpl.legacy import port

PORTABLE = ("SimpleRNN", "GRU", "LSTM")


def ported(old: list[RecordedCase], from_version: int, to_version: int) -> list[RecordedCase]:
    """The cases of a Keras ``from_version`` set (0 or 1) as Keras ``to_version`` computes them."""
    if from_version not in (0, 1) or to_version <= from_version:
        raise ValueError(f"drift goes from Keras 0.2 or 1.2.2 to a later Keras; got {from_version} -> {to_version}")
    out = []
    for rec in old:
        if rec.family not in PORTABLE or rec.status != "ok":
            continue
        legacy = refimpl.deserialize(rec.config, keras_version=from_version)
        first = next(c for c in rec.calls if isinstance(c, dict))
        if not legacy.built:
            legacy.build(first["inputs"].shape)
        legacy.set_weights(rec.weights)
        config, weights = port(legacy, to_version, dtype=rec.dtype if to_version > 1 else None)
        layer = refimpl.deserialize(config, keras_version=to_version)
        if not getattr(layer, "built", False):
            layer.build(first["inputs"].shape)
        layer.set_weights(weights)
        outputs = play(layer, rec.calls)
        out.append(RecordedCase(rec.id, rec.family, rec.dtype, config, rec.calls, weights, False, None, outputs, "ok"))
    return out



# What no ported argument carries over (refimpl/legacy/porting.py), each as (name, whether a case
# is exposed to it going from one version to another, what changed).
CAUSES = (
    ("masking", lambda rec, a, b: a == 0 and rec.masked,
     "Keras 0.2 zeroes the state a masked step hands on and does not hold its output; Keras >= 1 holds both"),
    ("hard_sigmoid", lambda rec, a, b: b == 3 and "hard_sigmoid" in _activations(rec),
     "Keras <= 2 (Theano too) compute clip(0.2 x + 0.5, 0, 1), Keras 3 relu6(x + 3) / 6"),
)


def explain(moved_ids: set[str], old: list[RecordedCase], from_version: int, to_version: int) -> list[str]:
    """Lines saying how many moved cases each cause reaches, and how many no cause explains."""
    counts = {name: 0 for name, _, _ in CAUSES}
    unexplained = []
    for rec in old:
        if rec.id not in moved_ids:
            continue
        hit = [name for name, applies, _ in CAUSES if applies(rec, from_version, to_version)]
        for name in hit:
            counts[name] += 1
        if not hit:
            unexplained.append(rec.id)
    lines = ["why they moved (a case can have both causes):"]
    lines += [f"  {counts[name]:>4} cases  {name}: {what}" for name, _, what in CAUSES if counts[name]]
    lines.append(f"  {len(unexplained):>4} cases  no known cause" + (f": {unexplained[:3]}" if unexplained else ""))
    return lines


def _activations(rec: RecordedCase) -> set[str]:
    """The activations an old layer uses: those in its config, and the defaults it leaves out."""
    c = rec.config.get("config", rec.config)
    return {c.get("activation"), c.get("inner_activation", "hard_sigmoid" if rec.family in ("GRU", "LSTM") else None)}
