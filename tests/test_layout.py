"""The package's folders show its architecture, and its imports keep to it.

Bottom to top: ``settings`` < ``service`` < ``job`` < ``run`` < ``report`` < ``detached`` <
``executor`` < the package's ``__init__``. A module may import its own sub-package, the ones
below it and ``settings``, never one above; the emulator imports nothing of the plugin and the
plugin nothing of the emulator. Every sub-package says in its ``__init__`` docstring what it
owns and (``May import: ...``) what it may import. Read from the source with ``ast``: every
import statement counts, also one inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = "snakemake_executor_plugin_prominence"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
#: the rooms of the plugin, bottom to top; the package's ``__init__`` is above them all
ORDER = ("settings", "service", "job", "run", "report", "detached", "executor", "__init__")
EMULATOR = "emulator"


def read_package(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """``{dotted module name: (source, is a package)}`` of every module under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = (path.read_text(encoding="utf-8"), is_package)
    return modules


def room(module: str) -> str:
    """The top-level piece of the package a module belongs to (``__init__``: the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(
    module: str, source: str, is_package: bool, known: Mapping[str, object]
) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every module of the package that ``source`` imports. A name
    taken from a package (``from pkg.job import labels``) is the module when there is one by
    that name, else the package itself (whose ``__init__`` runs to give it)."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}"
                yield node.lineno, child if child in known else target


def violations(modules: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Every import against the layout, and every module outside the known rooms."""
    found = []
    for module, (source, is_package) in sorted(modules.items()):
        own = room(module)
        if own != EMULATOR and own not in ORDER:
            found.append(f"{module}: not in a known room ({', '.join(ORDER)}, {EMULATOR})")
            continue
        for line, target in imports(module, source, is_package, modules):
            other = room(target)
            if own == EMULATOR and other != EMULATOR:
                found.append(f"{module}:{line} imports {target}: the emulator stands alone")
            elif own != EMULATOR and other == EMULATOR:
                found.append(
                    f"{module}:{line} imports {target}: the plugin never uses the emulator"
                )
            elif own != EMULATOR and other in ORDER and ORDER.index(other) > ORDER.index(own):
                found.append(f"{module}:{line} imports {target}: {other} is above {own}")
    return found


def test_imports_run_one_way():
    modules = read_package()
    assert f"{PACKAGE}.job.verdict" in modules and f"{PACKAGE}.emulator.server" in modules
    assert violations(modules) == []


def test_the_package_has_exactly_the_rooms_of_the_layout():
    rooms = {room(module) for module in read_package()}
    assert rooms == {*ORDER, EMULATOR}
    # the sub-packages are folders, the rest single modules
    for name in ("service", "job", "run", "report", "detached", EMULATOR):
        assert (ROOT / name / "__init__.py").is_file(), name
    for name in ("settings", "executor"):
        assert (ROOT / f"{name}.py").is_file(), name


def test_the_top_level_module_holds_only_what_snakemake_looks_for():
    import snakemake_executor_plugin_prominence as plugin

    assert plugin.__all__ == ["Executor", "ExecutorSettings", "common_settings"]
    tree = ast.parse((ROOT / "__init__.py").read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef)}
    assert defined == {"Executor"}  # the handle; the settings are imported from settings.py
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module.startswith(plugin.__name__)
        for alias in node.names
    }
    assert imported == {"ExecutorSettings", "common_settings"}


def test_snakemake_loads_the_plugin_without_the_executor_and_its_http_client():
    """Snakemake imports every installed plugin at each start, also inside each job."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, snakemake_executor_plugin_prominence\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('requests', "
            "'urllib3', 'snakemake_executor_plugin_prominence.')))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(loaded) == ["snakemake_executor_plugin_prominence.settings"]


SUB_PACKAGES = sorted(path.parent.name for path in ROOT.glob("*/__init__.py"))


@pytest.mark.parametrize("name", SUB_PACKAGES)
def test_every_sub_package_says_what_it_owns_and_may_import(name):
    docstring = ast.get_docstring(ast.parse((ROOT / name / "__init__.py").read_text()))
    assert docstring and len(docstring) > 80, f"{name}/__init__.py needs a docstring"
    if name == EMULATOR:
        return
    said = re.search(r"May import: (.*?)\.(?:\s|$)", docstring, re.DOTALL)
    assert said, f"{name}/__init__.py does not say what it may import"
    allowed = set(re.findall(r"``(\w+)``", said.group(1)))
    assert allowed == set(ORDER[: ORDER.index(name)]), name


# --- the check can fail ---------------------------------------------------------------------


def synthetic(**sources: str) -> dict[str, tuple[str, bool]]:
    """A few modules of a made-up copy of the package: ``job__labels="..."`` is
    ``<package>.job.labels``; ``job___init__`` the ``job`` package."""
    modules = {PACKAGE: ("", True)}
    for key, source in sources.items():
        parts = key.split("__", 1)
        if parts[-1] == "_init__":
            modules[f"{PACKAGE}.{parts[0]}"] = (source, True)
        else:
            modules[".".join([PACKAGE, *parts])] = (source, False)
    for name in ("settings", "executor"):
        modules.setdefault(f"{PACKAGE}.{name}", ("", False))
    return modules


P = PACKAGE


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        # a job module reaching up into a run
        (
            {"job__labels": f"from {P}.run import tracking\n", "run__tracking": ""},
            "job.labels:1 imports {P}.run.tracking: run is above job",
        ),
        # the same, late, inside a function
        (
            {
                "report__writer": "",
                "run__startup": f"def f():\n    from {P}.report import writer\n",
            },
            "run.startup:2 imports {P}.report.writer: report is above run",
        ),
        # relative, from a sub-package's __init__
        (
            {"service___init__": "from ..detached import cli\n", "detached__cli": ""},
            "service:1 imports {P}.detached.cli: detached is above service",
        ),
        # a name of the package's __init__ (which imports the executor, and with it all)
        (
            {"settings": f"from {P} import Executor\n"},
            "settings:1 imports {P}: __init__ is above settings",
        ),
        (
            {"detached__cli": f"import {P}.executor\n"},
            "detached.cli:1 imports {P}.executor: executor is above detached",
        ),
        # the emulator and the plugin stay apart, both ways
        (
            {"emulator__core": f"from {P}.job.labels import RUN_LABEL\n", "job__labels": ""},
            "emulator.core:1 imports {P}.job.labels: the emulator stands alone",
        ),
        (
            {"emulator__server": "from ..settings import ExecutorSettings\n"},
            "emulator.server:1 imports {P}.settings: the emulator stands alone",
        ),
        (
            {"run__submission": f"from {P}.emulator import Emulator\n"},
            "run.submission:1 imports {P}.emulator: the plugin never uses the emulator",
        ),
        # a module outside the known rooms
        ({"helpers": "x = 1\n"}, "helpers: not in a known room"),
    ],
)
def test_the_check_catches_what_breaks_the_layout(sources, expected):
    found = violations(synthetic(**sources))
    assert len(found) == 1, found
    assert found[0].startswith(f"{P}." + expected.format(P=P)), found


def test_the_check_lets_downward_and_sideways_imports_through():
    modules = synthetic(
        run__tracking=f"from {PACKAGE}.job.verdict import verdict\nfrom . import overdue\n",
        run__overdue=f"from {PACKAGE}.service import client\nfrom {PACKAGE}.settings import flag\n",
        job__verdict="",
        service__client="",
        executor=f"from {PACKAGE}.detached import cli\nfrom {PACKAGE}.run import tracking\n",
        detached__cli="",
        emulator__core="from .store import Store\nimport json\n",
        emulator__store="",
    )
    assert violations(modules) == []
