"""The fixture oracle: Keras's recorded outputs, from a set found by name or directory.

The committed sets live in the repository's ``fixtures/``; a built wheel carries the same files as
``conformance/_fixtures/`` (pyproject.toml maps one onto the other), so a pip-installed suite
replays them from any folder without Keras. ``find_set`` resolves what a user typed: a directory
holding a manifest.json, or the name of a set shipped with the package.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conformance import fixtures
from conformance.recorded import RecordedCase

_PACKAGE = Path(__file__).resolve().parents[1]
SHIPPED = (_PACKAGE / "_fixtures", _PACKAGE.parent / "fixtures")  # in a wheel; in a checkout
CANONICAL = "keras-3.15.1_tensorflow-2.21.0_cpu"


class SetNotFound(LookupError):
    """No fixture set by that name or in that directory: the message lists the sets there are."""


def shipped_root() -> Path:
    """The folder of the sets that come with the package (the wheel's, else the checkout's)."""
    return next((p for p in SHIPPED if p.is_dir()), SHIPPED[-1])


def shipped_sets() -> list[Path]:
    return sorted(p.parent for p in shipped_root().glob("*/manifest.json"))


def find_set(name: str | Path | None = None) -> Path:
    """A set's directory: the shipped set of that name (the canonical one for None), else ``name``
    as a directory holding a manifest.json. A name with a path separator is always a directory."""
    name = str(CANONICAL if name in (None, "") else name)
    is_path = "/" in name or os.sep in name
    shipped = shipped_root() / name
    if not is_path and (shipped / "manifest.json").is_file():
        return shipped
    path = Path(name)
    if (path / "manifest.json").is_file():
        return path
    names = [p.name for p in shipped_sets()]
    where = (f"the shipped sets are {', '.join(names)}" if names else
             f"no sets are shipped with this installation ({shipped_root()} is empty or missing)")
    why = "is a directory without a manifest.json" if path.is_dir() else "is neither a directory nor a shipped set"
    raise SetNotFound(f"fixture set {name!r} {why}; {where}; or give the path of a set's directory")


class FixtureOracle:
    """A recorded set as the oracle: its cases are already recorded, so ``recorded`` returns them."""

    kind = "fixtures"

    def __init__(self, set_dir: str | Path):
        self.set_dir = Path(set_dir)
        self.manifest = fixtures.check(self.set_dir)
        self.name = fixtures.oracle_name(self.manifest)  # keras-tensorflow, tf-keras-tensorflow, ...
        self.major = fixtures.keras_major(self.manifest)
        self._items: list[RecordedCase] | None = None

    @property
    def items(self) -> list[RecordedCase]:
        if self._items is None:
            self._items = fixtures.load(self.set_dir)[1]
        return self._items

    def recorded(self, item: RecordedCase) -> RecordedCase:
        return item

    @property
    def shipped(self) -> bool:
        """A set that came with the package (a rerun line can name it instead of its path)."""
        return self.set_dir.parent.resolve() == shipped_root().resolve()

    @property
    def set_option(self) -> str | None:
        """What ``--set`` must say to select this set again (None: the default)."""
        if self.shipped:
            return None if self.set_dir.name == CANONICAL else self.set_dir.name
        return str(self.set_dir)

    def describe(self) -> str:
        o = self.manifest["oracle"]
        return (f"fixture set {self.set_dir.name} (" + ", ".join(f"{k} {v}" for k, v in o.items())
                + f", {self.manifest['device'].get('cpu', self.manifest['device'].get('kind'))})")

    def __getstate__(self) -> dict[str, Any]:  # pool workers reload the arrays themselves
        return {**self.__dict__, "_items": None}
