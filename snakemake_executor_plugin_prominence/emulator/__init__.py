"""A local PROMINENCE-compatible service: the real REST API's routes, validation and job shapes,
with jobs that really run on this host. For development and tests only.

Start it in Python with ``Emulator`` or from the shell with ``prominence-emulator``.
"""

from .server import Emulator

__all__ = ["Emulator"]
