"""What a case exercises, read off its recorded config and calls: the columns of the layer x
feature table, and the ``--cases quick`` selection (the fewest cases that still touch every
layer x feature and layer x dtype pair of the full matrix).

A case has every feature its config or calls switch on, or ``defaults`` when none.
"""

from __future__ import annotations

from typing import Any

from conformance import configs
from conformance.recorded import RecordedCase

# Column order of the table. Each is (feature, what switches it on).
FEATURES = (
    "defaults", "return_sequences", "return_state", "go_backwards", "mask", "zero_output_for_mask",
    "initial_state", "stateful", "dropout", "unroll", "activation", "recurrent_activation",
    "use_bias=False", "unit_forget_bias=False", "reset_after=False",
    "conv_geometry", "channels_first", "merge_mode", "backward_layer", "cells", "dtype_policy",
    "consume_less", "depth",
)
# (implementation=1 is not a feature: Keras 3 leaves it out of get_config, so no config shows it.)
_NONDEFAULT = {"use_bias": False, "unit_forget_bias": False, "reset_after": False}
_DEFAULT_ACTIVATION = {"activation": ("tanh",), "recurrent_activation": ("sigmoid",)}
_CONV_DEFAULTS = {"strides": 1, "padding": "valid", "dilation_rate": 1}


def _is_default_conv(key: str, value: Any) -> bool:
    values = value if isinstance(value, (list, tuple)) else [value]
    return all(v == _CONV_DEFAULTS[key] for v in values)


def explicit_backward(outer: dict) -> bool:
    """Bidirectional serializes a backward_layer always; it was given explicitly when it differs
    from the forward layer in more than its name and direction."""
    fwd, bwd = outer.get("layer"), outer.get("backward_layer")
    if not isinstance(fwd, dict) or not isinstance(bwd, dict):
        return False
    strip = lambda c: {k: v for k, v in c.get("config", {}).items() if k not in ("name", "go_backwards")}  # noqa: E731
    return fwd.get("class_name") != bwd.get("class_name") or strip(fwd) != strip(bwd)


# Keras 0.2.0 / 1.2.2 configs (refimpl.legacy) name features their own way (inner_activation,
# dropout_W/_U), and some defaults differ by class (0.2's SimpleRNN, GRU and SimpleDeepRNN default
# to sigmoid; JZS's inner activation is sigmoid, every other one hard_sigmoid).
_LEGACY_SIGMOID = ("SimpleRNN", "GRU", "SimpleDeepRNN")


def _legacy_features(serialized: dict) -> set[str]:
    """What a Keras 0.2 (flat: the class in "name") or 1.2.2 config switches on beyond the shared flags."""
    keras0 = "config" not in serialized
    name, c = (serialized["name"], serialized) if keras0 else (serialized["class_name"], serialized["config"])
    activation = "sigmoid" if keras0 and name in _LEGACY_SIGMOID else "tanh"
    inner = "sigmoid" if name.startswith("JZS") else "hard_sigmoid"
    found = {"dropout"} if c.get("dropout_W") or c.get("dropout_U") else set()
    if c.get("activation", activation) != activation:
        found.add("activation")
    if c.get("inner_activation", inner) != inner:
        found.add("recurrent_activation")
    if c.get("consume_less", "cpu") != "cpu":
        found.add("consume_less")
    if c.get("depth", 3) != 3:
        found.add("depth")
    return found | {f for f in ("return_sequences", "go_backwards", "unroll") if c.get(f)}


def _is_legacy(serialized: dict) -> bool:
    return "output_dim" in serialized.get("config", serialized)


def features(rec: RecordedCase) -> tuple[str, ...]:
    """The features of a recorded case (its config and calls)."""
    legacy = _is_legacy(rec.config)
    found: set[str] = _legacy_features(rec.config) if legacy else set()
    outer = rec.config.get("config", rec.config)
    # A Bidirectional's backward layer only counts as "backward_layer" (see explicit_backward).
    for _, c in ([] if legacy else configs.walk(rec.config, skip=("backward_layer",))):
        for flag in ("return_sequences", "return_state", "go_backwards", "unroll", "zero_output_for_mask"):
            if c.get(flag):
                found.add(flag)
        for key, value in _NONDEFAULT.items():
            if key in c and c[key] == value:
                found.add(f"{key}={value}")
        for key, defaults in _DEFAULT_ACTIVATION.items():
            if key in c and c[key] not in defaults:
                found.add(key)
        if any(k in c and not _is_default_conv(k, c[k]) for k in _CONV_DEFAULTS):
            found.add("conv_geometry")
        if c.get("data_format") == "channels_first":
            found.add("channels_first")
        if c.get("dropout") or c.get("recurrent_dropout"):
            found.add("dropout")
    if "cells" in outer or "cell" in outer:
        found.add("cells")
    if "merge_mode" in outer and outer["merge_mode"] != "concat":
        found.add("merge_mode")
    if explicit_backward(outer):
        found.add("backward_layer")
    if configs.precision(rec.config, rec.dtype) != rec.dtype:  # a layer computes in another dtype
        found.add("dtype_policy")
    if rec.stateful:
        found.add("stateful")
    if rec.masked:
        found.add("mask")
    if rec.has_initial_state:
        found.add("initial_state")
    return tuple(f for f in FEATURES if f in found) or ("defaults",)


def activation_values(rec: RecordedCase) -> set[str]:
    """``key=value`` for every activation a case's layers name (activation, recurrent_activation;
    Keras 0.2 / 1.2.2: inner_activation), e.g. {"activation='gelu'", "recurrent_activation='sigmoid'"}."""
    keys = ("activation", "recurrent_activation", "inner_activation")
    layers = [rec.config.get("config", rec.config)] if _is_legacy(rec.config) else \
        [c for _, c in configs.walk(rec.config)]
    return {f"{k}={c[k]!r}" for c in layers for k in keys if isinstance(c.get(k), str)}


def quick(recs: list) -> list:
    """A small subset of ``recs`` that keeps every (layer, feature), (layer, dtype) and (layer,
    activation value) pair they touch: each case is kept when it adds a pair not yet covered, in
    matrix order. (One case per feature would let a working activation stand for a failing one.)"""
    covered: set[tuple[str, str]] = set()
    out = []
    for rec in recs:
        pairs = {(rec.family, f) for f in (*features(rec), *activation_values(rec))} | {(rec.family, rec.dtype)}
        if not pairs <= covered:
            covered |= pairs
            out.append(rec)
    return out
