"""Entry point of ``python -m snakemake_executor_plugin_prominence.emulator``.

The same as the ``prominence-emulator`` command.
"""

from .cli import main

raise SystemExit(main())
