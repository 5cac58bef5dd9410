"""Type aliases shared by refimpl's modules."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import numpy as np

Array = np.ndarray
Activation = Callable[[Array], Array]
Shape = Sequence[Union[int, None]]
# A cell's states: one array per state, or (StackedRNNCells) one such list per cell.
States = list[Any]
Config = dict[str, Any]
