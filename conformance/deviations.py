"""Known deviations as data: where Keras (or one implementation) is known to compute something
other than the documented semantics, each with its root cause.

``conformance/deviations.json`` holds the project's entries; an adopter's own are a JSON object
``{case id or glob: reason}`` (``load_adopter_deviations``). An entry applies to the case ids its
``match`` globs select ('*' any text, '{a,b}' alternatives, '!glob' excludes), for the oracles in
``oracle`` and the implementations in ``impls``. Its ``kind`` says how the case departs:
"values" (the numbers differ), "raises" (the oracle raises), "any" (the numbers differ, or the
implementation raises), "gradients" (only the gradients differ). Judging applies them as strict
xfails (``judge.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

DEVIATIONS_FILE = Path(__file__).with_name("deviations.json")
KINDS = ("values", "raises", "any", "gradients")


@dataclass(frozen=True)
class Deviation:
    match: tuple[str, ...]
    kind: str  # one of KINDS
    oracle: tuple[str, ...]
    reason: str
    impls: tuple[str, ...] = ("*",)  # the implementations that disagree with the oracle here

    @property
    def oracle_quirk(self) -> bool:
        """Keras itself departs from its documented semantics (not one implementation's difference)."""
        return [g for g in self.impls if not g.startswith("!")] in ([], ["*"])

    def applies(self, case_id: str, oracle: str, impl: str = "refimpl") -> bool:
        return (matches(oracle, self.oracle) and matches(impl, self.impls)
                and all(not glob(case_id, g[1:]) if g.startswith("!") else glob(case_id, g)
                        for g in self.match))


def matches(name: str, globs: tuple[str, ...]) -> bool:
    """Some positive glob matches and no '!glob' does."""
    positive = [g for g in globs if not g.startswith("!")] or ["*"]
    return any(glob(name, g) for g in positive) and not any(glob(name, g[1:]) for g in globs if g.startswith("!"))


def glob(text: str, pattern: str) -> bool:
    """'*' matches anything, '{a,b}' matches a or b; every other character (brackets included)
    matches itself."""
    regex = ""
    for part in re.split(r"(\*|\{[^}]*\})", pattern):
        if part == "*":
            regex += ".*"
        elif part.startswith("{") and part.endswith("}"):
            regex += "(" + "|".join(map(re.escape, part[1:-1].split(","))) + ")"
        else:
            regex += re.escape(part)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def load_deviations(path: Path = DEVIATIONS_FILE) -> list[Deviation]:
    entries = json.loads(Path(path).read_text())["deviations"]
    for e in entries:
        if e["kind"] not in KINDS or not e.get("reason"):
            raise ValueError(f"{path}: entry {e['match']} needs a kind of {KINDS} and a reason")
    return [Deviation(tuple(e["match"]), e["kind"], tuple(_as_list(e["oracle"])), e["reason"],
                      tuple(_as_list(e.get("impls", "*")))) for e in entries]


def load_adopter_deviations(path: str | Path) -> list[Deviation]:
    """An implementation's own known differences: a JSON object {case id or glob: reason}. Each
    entry is a strict xfail for whichever implementation is being verified, against any oracle."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"deviations file {path}: {e}") from None
    if not isinstance(entries, dict) or not all(isinstance(r, str) and r.strip() for r in entries.values()):
        raise ValueError(f"deviations file {path}: expected a JSON object {{case id or glob: non-empty reason}}")
    return [Deviation((key,), "any", ("*",), reason) for key, reason in entries.items()]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def deviation_for(case: Any, deviations: Iterable[Deviation], oracle: str, impl: str = "refimpl", *,
                  gradients: bool = False) -> Deviation | None:
    """The first entry that applies to ``case`` (anything with an ``id``): for its outputs, or with
    ``gradients`` for its gradients alone; None when there is none."""
    return next((d for d in deviations if (d.kind == "gradients") == gradients and d.applies(case.id, oracle, impl)),
                None)


def stale_deviations(cases: list, oracle: str, impl: str = "refimpl",
                     deviations: list[Deviation] | None = None) -> list[Deviation]:
    """Entries for this oracle and implementation that match none of ``cases`` (typos, or cases
    that were removed)."""
    deviations = load_deviations() if deviations is None else deviations
    return [d for d in deviations if matches(oracle, d.oracle) and matches(impl, d.impls)
            and not any(d.applies(c.id, oracle, impl) for c in cases)]
