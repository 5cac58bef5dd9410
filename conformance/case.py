"""One matrix case as data, and the vocabulary the matrix is written in.

A ``Case`` is data only: a layer spec (Keras class name + keyword arguments, or RNN + cell specs),
the data shape, dtype, mask pattern and call protocol. Its ``id`` reads like the call and is
stable, so ``rnn-conformance verify --case ID`` reruns exactly one case.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

LAYERS = ("SimpleRNN", "LSTM", "GRU")
CELL_OF = {"SimpleRNN": "SimpleRNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}
DTYPES = ("float64", "float32", "float16")
# Keras dtype policies a case may be built with besides those: compute dtype != variable dtype, or
# bfloat16 (ml_dtypes). configs.POLICY_DTYPES says which dtypes each computes and stores in.
POLICIES = ("mixed_float16", "mixed_bfloat16", "bfloat16")
MASKS = ("all_true", "right_pad", "left_pad", "holes", "masked_row", "first_masked")
MERGE_MODES = ("concat", "sum", "ave", "mul", None)
# The rows of every table, in this order; families not listed follow, sorted.
LAYER_ORDER = ("SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "RNN(SimpleRNNCell)",
               "RNN(LSTMCell)", "RNN(GRUCell)", "StackedRNNCells", "Bidirectional(SimpleRNN)",
               "Bidirectional(LSTM)", "Bidirectional(GRU)", "Bidirectional(ConvLSTM2D)")
Spec = tuple[str, tuple[tuple[str, Any], ...]]


def spec(name: str, **kwargs: Any) -> Spec:
    return name, tuple(sorted(kwargs.items()))


@dataclass(frozen=True)
class Case:
    layer: Spec
    cells: tuple[Spec, ...] = ()  # for RNN(cell), or RNN([cells]) when stacked
    stacked: bool = False
    wrapped: tuple[Spec, ...] = ()  # for Bidirectional: the layer [and the backward_layer]
    spatial: tuple[int, ...] = ()  # ConvLSTM: the spatial dims of each step
    dtype: str = "float64"  # or a dtype policy (POLICIES)
    batch: int = 3
    steps: int = 5
    features: int = 4
    mask: str | None = None
    initial_state: bool = False
    training: bool = False  # True: dropout with masks the harness supplies to both sides
    stateful_calls: bool = False  # call, call, reset_state, call
    zero_steps: int = 0  # the first N steps' inputs are exactly 0: padding without a mask

    @property
    def layer_name(self) -> str:
        return self.layer[0]

    @property
    def family(self) -> str:
        """The table row: SimpleRNN, ..., ConvLSTM2D, RNN(LSTMCell), StackedRNNCells, Bidirectional(GRU)."""
        if self.wrapped:
            return f"Bidirectional({self.wrapped[0][0]})"
        if self.layer_name != "RNN":
            return self.layer_name
        return "StackedRNNCells" if self.stacked else f"RNN({self.cells[0][0]})"

    @property
    def channels_first(self) -> bool:
        return any(dict(s[1]).get("data_format") == "channels_first" for s in (self.layer, *self.wrapped))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(B, T, *spatial, F), or (B, T, F, *spatial) for channels_first."""
        if self.channels_first:
            return (self.batch, self.steps, self.features, *self.spatial)
        return (self.batch, self.steps, *self.spatial, self.features)

    @property
    def id(self) -> str:
        def fmt(s: Spec) -> str:
            return f"{s[0]}({', '.join(f'{k}={v!r}' for k, v in s[1])})"

        parts = [fmt(self.layer)]
        if self.cells:
            cells = ", ".join(map(fmt, self.cells))
            cells = f"[{cells}]" if self.stacked else cells
            parts[0] = parts[0][:-1] + (", " if self.layer[1] else "") + f"cell={cells})"
        if self.wrapped:
            inner = f"layer={fmt(self.wrapped[0])}"
            if len(self.wrapped) > 1:
                inner += f", backward_layer={fmt(self.wrapped[1])}"
            parts[0] = parts[0][:-1] + (", " if self.layer[1] else "") + inner + ")"
        parts.append(self.dtype)
        spatial = "S" + "x".join(map(str, self.spatial)) if self.spatial else ""
        parts.append(f"B{self.batch}T{self.steps}{spatial}F{self.features}")
        if self.mask:
            parts.append(f"mask={self.mask}")
        if self.initial_state:
            parts.append("initial_state")
        if self.training:
            parts.append("training")
        if self.stateful_calls:
            parts.append("calls=3")
        if self.zero_steps:
            parts.append(f"zero_steps={self.zero_steps}")
        return "-".join(parts)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())

    def kwargs(self) -> dict[str, Any]:
        return dict(self.layer[1])


def instantiate(case: Case, layers: Any, *, kwargs_of: Callable[[Any], dict] = dict) -> Any:
    """The case's layer, unbuilt, from a namespace of layer classes: ``keras.layers``, or
    ``refimpl`` (the same names, arguments and defaults). Every layer and cell gets the case's
    dtype; ``kwargs_of`` rewrites each layer's keyword arguments (the oracle builds channels_first
    cases channels_last)."""
    kwargs = dict(case.layer[1])
    if case.cells:
        cells = [getattr(layers, name)(**{"dtype": case.dtype, **dict(kw)}) for name, kw in case.cells]
        # RNN([cells]) would wrap them in a StackedRNNCells of the default dtype (float32), which
        # then casts float64 states down; passing the stack explicitly keeps the case's dtype.
        cell = layers.StackedRNNCells(cells, dtype=case.dtype) if case.stacked else cells[0]
        return layers.RNN(cell, **kwargs, dtype=case.dtype)
    if case.wrapped:
        inner = [getattr(layers, name)(**{"dtype": case.dtype, **kwargs_of(kw)}) for name, kw in case.wrapped]
        return layers.Bidirectional(inner[0], backward_layer=inner[1] if len(inner) > 1 else None,
                                    **kwargs, dtype=case.dtype)
    return getattr(layers, case.layer_name)(**{"dtype": case.dtype, **kwargs_of(kwargs)})


def check_unique_ids(ids: Iterable[str]) -> None:
    """Raise ValueError naming the first ids that occur more than once."""
    seen: set[str] = set()
    dupes = sorted({i for i in ids if i in seen or seen.add(i)})
    if dupes:
        raise ValueError(f"duplicate case ids: {dupes[:3]}")


def ordered(families: Iterable[str]) -> list[str]:
    """Layer families in table order (``LAYER_ORDER``, then the rest sorted)."""
    names = set(families)
    return [n for n in LAYER_ORDER if n in names] + sorted(names - set(LAYER_ORDER))


def _in_group(family: str, name: str) -> bool:
    """``name`` picks ``family``: the family itself, or its group ("RNN" takes RNN(...) and
    StackedRNNCells, "Bidirectional" every Bidirectional(...))."""
    return name == family or family.startswith(name + "(") or (name == "RNN" and family == "StackedRNNCells")


def layer_names(families: Iterable[str]) -> list[str]:
    """Every name ``select(layers=...)`` accepts for these families, in table order."""
    families = ordered(families)
    groups = [g for g in ("RNN", "Bidirectional") if any(_in_group(f, g) for f in families)]
    return families + groups


def select(items: list, *, layers: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
           ids: Iterable[str] | None = None) -> list:
    """The items (matrix or recorded cases: anything with ``id``, ``family`` and ``dtype``) that
    pass every filter given. Unknown layer names, dtypes or ids raise ValueError listing the valid ones."""
    layers, dtypes, ids = (list(x) if x else None for x in (layers, dtypes, ids))
    families = {i.family for i in items}
    unknown = [n for n in layers or [] if not any(_in_group(f, n) for f in families)]
    if unknown:
        raise ValueError(f"--layers {' '.join(unknown)}: no such layer here; choose from "
                         f"{', '.join(layer_names(families))}")
    bad = [d for d in dtypes or [] if d not in DTYPES + POLICIES]
    if bad:
        raise ValueError(f"--dtype {' '.join(bad)}: expected one of {', '.join(DTYPES + POLICIES)}")
    out = [i for i in items
           if (layers is None or any(_in_group(i.family, n) for n in layers))
           and (dtypes is None or i.dtype in dtypes)
           and (ids is None or i.id in ids)]
    if ids:
        missing = sorted(set(ids) - {i.id for i in out})
        if missing:
            raise ValueError(f"unknown case id(s): {missing[:3]} (list them with `rnn-conformance list`)")
    return out
