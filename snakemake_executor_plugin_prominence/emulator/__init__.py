"""A local PROMINENCE-compatible service: the real REST API's routes, validation and job shapes,
with jobs that really run on this host. For development and tests only.

Start it in Python with ``Emulator`` or from the shell with ``prominence-emulator``. It needs
the plugin's ``emulator`` extra (Flask): ``Emulator`` is loaded on first use, through
``extra.emulator_class``, so that without the extra both say which extra to install (and
``prominence-emulator --help`` still works).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .extra import emulator_class

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        return emulator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
