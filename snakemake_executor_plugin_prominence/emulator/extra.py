"""Loading the emulator's server, which needs the plugin's optional ``emulator`` extra.

Flask (and its Werkzeug) come with ``pip install 'snakemake-executor-plugin-prominence[emulator]'``,
not with the plugin itself, yet a plain install has the ``prominence-emulator`` command too.
Everything that starts the emulator loads it through here, so that such a user reads which extra
to install instead of an ImportError from deep inside the emulator's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import Emulator

#: the top-level modules of the ``emulator`` extra that the emulator imports
EXTRA_MODULES = frozenset({"flask", "werkzeug"})
INSTALL_COMMAND = "pip install 'snakemake-executor-plugin-prominence[emulator]'"


class EmulatorExtraMissing(ModuleNotFoundError):
    """The ``emulator`` extra is not installed. A ModuleNotFoundError, so code that already
    handles a missing module keeps working."""


def emulator_class() -> type[Emulator]:
    """The ``Emulator`` class; raises EmulatorExtraMissing, naming the extra and the command
    that installs it, when Flask or Werkzeug is missing (any other import error is a bug and
    propagates as it is)."""
    try:
        from .server import Emulator
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in EXTRA_MODULES:
            raise
        raise EmulatorExtraMissing(
            f"The PROMINENCE emulator needs the plugin's `emulator` extra ({missing} is not "
            f"installed): {INSTALL_COMMAND}",
            name=exc.name,
        ) from exc
    return Emulator
