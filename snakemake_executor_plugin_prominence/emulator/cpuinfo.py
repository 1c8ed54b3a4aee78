"""The ``execution.cpu`` block the worker reports: vendor, model and clock of this host's CPU.

Read once from ``/proc/cpuinfo`` (the first processor), as the worker reads it on the machine
the job landed on; empty where the file does not exist or lacks the fields.
"""

from __future__ import annotations

from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
#: ``/proc/cpuinfo`` key -> key of the worker's ``cpu`` block
_FIELDS = {"vendor_id": "vendor", "model name": "model", "cpu MHz": "clock"}


def host_cpu(path: Path = CPUINFO) -> dict[str, str]:
    """``{"vendor", "model", "clock"}`` of the first processor listed (strings, as reported)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if found:
                break  # the end of the first processor's block
            continue
        key, sep, value = line.partition(":")
        target = _FIELDS.get(key.strip())
        if sep and target and target not in found:
            found[target] = value.strip()
    return found
