"""What machine this is, as fixture manifests and reports record it."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_device() -> dict:
    """A fixture manifest's ``device`` entry for a CPU run."""
    return {"kind": "cpu", "cpu": cpu_name(), "machine": platform.machine(), "system": platform.system()}
