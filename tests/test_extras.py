"""Without an optional extra, what needs it says which extra to install.

Here, in this environment (which has every extra), Flask and Werkzeug are hidden from the
import system; ``tests/test_wheel_install.py`` checks the same in a real environment holding
the plugin alone. The run report's page without matplotlib: ``tests/test_report.py``.
"""

from __future__ import annotations

import logging
import sys

import pytest

import snakemake_executor_plugin_prominence.emulator as emulator_package
from snakemake_executor_plugin_prominence.emulator import cli, extra

SERVER_MODULES = ("server", "app", "faults")


@pytest.fixture
def without_flask(monkeypatch):
    """As if the ``emulator`` extra were not installed: importing Flask or Werkzeug fails, also
    for modules of the emulator that an earlier test imported already."""
    for name in list(sys.modules):
        if name.partition(".")[0] in {"flask", "werkzeug"}:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "flask", None)
    monkeypatch.setitem(sys.modules, "werkzeug", None)
    for name in SERVER_MODULES:
        monkeypatch.delitem(sys.modules, f"{emulator_package.__name__}.{name}", raising=False)
        monkeypatch.delattr(emulator_package, name, raising=False)


def test_the_emulator_class_names_the_extra_when_flask_is_missing(without_flask):
    with pytest.raises(extra.EmulatorExtraMissing) as raised:
        extra.emulator_class()
    message = str(raised.value)
    assert "`emulator` extra" in message
    assert "pip install 'snakemake-executor-plugin-prominence[emulator]'" in message
    assert raised.value.name.partition(".")[0] in {"flask", "werkzeug"}
    # still a ModuleNotFoundError for callers that catch that
    assert isinstance(raised.value, ModuleNotFoundError)


def test_importing_emulator_from_the_package_says_the_same(without_flask):
    with pytest.raises(ModuleNotFoundError, match=r"`emulator` extra"):
        from snakemake_executor_plugin_prominence.emulator import Emulator  # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'Emulatr'"):
        _ = emulator_package.Emulatr


def test_the_command_exits_with_the_message_and_no_traceback(without_flask, caplog, tmp_path):
    caplog.set_level(logging.ERROR, logger="prominence-emulator")
    assert cli.main(["--port", "0", "--state-dir", str(tmp_path)]) == 2
    (record,) = caplog.records
    assert record.getMessage().startswith("The PROMINENCE emulator needs the plugin's `emulator`")
    assert record.exc_info is None


def test_another_missing_module_is_not_blamed_on_the_extra(monkeypatch):
    # A broken emulator module must surface as itself, not as "install the extra".
    monkeypatch.delitem(sys.modules, f"{emulator_package.__name__}.server", raising=False)
    monkeypatch.setitem(sys.modules, f"{emulator_package.__name__}.core", None)
    with pytest.raises(ModuleNotFoundError) as raised:
        extra.emulator_class()
    assert not isinstance(raised.value, extra.EmulatorExtraMissing)


def test_with_the_extra_the_class_loads():
    from snakemake_executor_plugin_prominence.emulator.server import Emulator

    assert extra.emulator_class() is Emulator
    assert emulator_package.Emulator is Emulator
