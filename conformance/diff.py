"""``rnn-conformance diff A B``: which numbers moved between two fixture sets, and why.

Cases are matched by id. A case *moved* when its outputs differ by more than the dtype's tolerance
(conformance/tolerances.py), or when Keras ran it in one set and raised in the other. Moved cases
are grouped by layer and by feature (each ``key=value`` of the layer's arguments, and the mask,
initial-state, training and stateful tags), and the largest moves are listed with the config
values that differ between the two sets' serialized configs.

``rnn-conformance diff A --installed`` generates the comparison set from the installed Keras first
(conformance/cli.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from conformance import configs
from conformance.compare import compare
from conformance.recorded import RecordedCase
from conformance.report import text_table
from conformance.tolerances import tolerance_for

FEATURE = re.compile(r"(\w+)=('[^']*'|\([^)]*\)|[^,()\]\-]+)")


@dataclass
class Move:
    id: str
    family: str
    kind: str  # "values" (numbers moved), "structure" (output count, shape or dtype), "raised" (one side raised)
    max_abs: float  # the largest change, for "values"
    what: str
    config_changes: dict = field(default_factory=dict)


def id_tags(case_id: str) -> list[str]:
    """What a case's id says it exercises: its layer arguments and call tags (``mask=holes``...)."""
    head, _, tail = case_id.partition("-float")
    found = [f"{k}={v}" for k, v in FEATURE.findall(head) if k not in ("units", "filters")]
    tags = tail.split("-")[2:]  # after dtype and shape: mask=..., initial_state, training, calls=3
    return sorted(set(found + tags))


def config_changes(a: dict, b: dict) -> dict:
    """Config entries present in both with different values (keys only one side has are ignored:
    Keras 2 writes time_major and implementation, Keras 3 does not)."""
    va, vb = configs.flat_values(a), configs.flat_values(b)
    return {k: (va[k], vb[k]) for k in sorted(set(va) & set(vb)) if _norm(va[k]) != _norm(vb[k])}


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def diff_sets(a: list[RecordedCase], b: list[RecordedCase]) -> tuple[list[Move], dict]:
    by_id = {fc.id: fc for fc in b}
    moves, totals = [], {"common": 0, "only_a": 0, "only_b": len({fc.id for fc in b} - {fc.id for fc in a})}
    for fa in a:
        fb = by_id.get(fa.id)
        if fb is None:
            totals["only_a"] += 1
            continue
        totals["common"] += 1
        changes = config_changes(fa.config, fb.config)
        if fa.status != fb.status:
            moves.append(Move(fa.id, fa.family, "raised", np.inf, f"Keras {fa.status} -> {fb.status}", changes))
            continue
        if fa.status != "ok":
            continue
        c = compare(fa.outputs, fb.outputs, tolerance_for(configs.precision(fa.config, fa.dtype)))
        if not c.ok and c.worst is None:
            moves.append(Move(fa.id, fa.family, "structure", 0.0, _structure(fa.outputs, fb.outputs), changes))
        elif not c.ok:
            moves.append(Move(fa.id, fa.family, "values", c.max_abs, c.message, changes))
    return moves, totals


def render(moves: list[Move], totals: dict, a_name: str, b_name: str, top: int, all_ids: dict) -> str:
    lines = [f"A: {a_name}", f"B: {b_name}",
             f"{totals['common']} cases in both ({totals['only_a']} only in A, {totals['only_b']} only in B); "
             f"{len(moves)} moved beyond tolerance", ""]
    family_total, family_moved, family_worst = defaultdict(int), defaultdict(int), defaultdict(list)
    feature_total, feature_moved = defaultdict(int), defaultdict(int)
    moved_ids = {m.id for m in moves}
    for case_id, family in all_ids.items():
        family_total[family] += 1
        for f in id_tags(case_id):
            feature_total[f] += 1
            feature_moved[f] += case_id in moved_ids
    for m in moves:
        family_moved[m.family] += 1
        family_worst[m.family].append(m)
    lines += text_table(["by layer", "moved", "worst change"],
                        [[family, f"{family_moved[family]}/{family_total[family]}", _worst(family_worst[family])]
                         for family in sorted(family_total, key=lambda f: (-family_moved[f], f))])
    shares = sorted(((feature_moved[f] / feature_total[f], f) for f in feature_total if feature_moved[f]), reverse=True)
    lines += [""] + text_table(["by feature (features with moves, largest share first)", "moved"],
                               [[f, f"{feature_moved[f]}/{feature_total[f]}"] for _, f in shares[:25]])
    explained = defaultdict(int)
    for m in moves:
        for key, (va, vb) in m.config_changes.items():
            explained[f"{key.split('.')[-1]}: {va!r} -> {vb!r}"] += 1
    lines += ["", "config values that differ between the sets, among moved cases:"]
    for text, n in sorted(explained.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  {n:>4} cases  {text}")
    raised = [m for m in moves if m.kind == "raised"]
    numeric = [m for m in moves if m.kind == "values"]
    structure = [m for m in moves if m.kind == "structure"]
    lines += ["", f"largest numeric moves (top {top} of {len(numeric)}):"]
    for m in sorted(numeric, key=lambda m: -m.max_abs)[:top]:
        lines.append(f"- {m.id}")
        lines.append(f"    max abs change {m.max_abs:.3g}: {m.what[:140]}")
        for key, (va, vb) in list(m.config_changes.items())[:3]:
            lines.append(f"    config {key}: {va!r} -> {vb!r}")
    if structure:
        lines += ["", f"cases whose outputs changed count, shape or dtype ({len(structure)}):"]
        lines += [f"- {m.what}: {m.id}" for m in structure[:top]]
    if raised:
        lines += ["", f"cases Keras runs in one set and rejects in the other ({len(raised)}):"]
        lines += [f"- {m.what}: {m.id}" for m in raised[:top]]
    return "\n".join(lines)


def _structure(a: list, b: list) -> str:
    """How the outputs' count, shapes or dtypes changed from set A to set B."""
    if len(a) != len(b):
        return f"{len(a)} outputs -> {len(b)}"
    return "; ".join(f"outputs[{k}].{what}: {x} -> {y}" for k, (ea, eb) in enumerate(zip(a, b))
                     for what, x, y in (("shape", ea.shape, eb.shape), ("dtype", ea.dtype, eb.dtype)) if x != y)


def _worst(moves: list[Move]) -> str:
    """The worst change of a layer's moved cases: raised, a structure change, or the largest number."""
    kinds = {m.kind for m in moves}
    parts = [f"{max(m.max_abs for m in moves if m.kind == 'values'):.2e}"] if "values" in kinds else []
    parts += [k for k in ("structure", "raised") if k in kinds]
    return ", ".join(parts)
