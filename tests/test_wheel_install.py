"""The package as PyPI will get it, and as a user installs it.

Once per module (the expensive part, shared by every test here): ``python -m build`` makes the
sdist and, from it, the wheel, from a copy of the files a fresh clone has, in an isolated build
environment as the release workflow does; the wheel is installed with no extra into a fresh
virtual environment. Then, there, as a user: ``snakemake --executor prominence --help`` lists
every setting, the plugin catalog's settings extraction gives JSON, ``prominence-snakemake
--help`` works, the event schema is installed, and the emulator and the run report's page say
which extra they need. Every command runs from a scratch directory with no PYTHONPATH, so
nothing is imported from this checkout.
"""

from __future__ import annotations

import dataclasses
import email.parser
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from snakemake_executor_plugin_prominence import ExecutorSettings

pytestmark = pytest.mark.slow  # one build and two virtual environments, about 90 s

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PACKAGE = "snakemake_executor_plugin_prominence"
SCHEMA = f"{PACKAGE}/run/job_event.schema.json"
SETTING_NAMES = [field.name for field in dataclasses.fields(ExecutorSettings)]
#: what the publish job builds and checks with (.github/workflows/release-please.yml)
RELEASE_TOOLS = ("build>=1.2", "twine>=7")

#: What the plugin catalog runs in an environment holding the plugin (its collect_plugins.py):
#: the registry's settings info as JSON, a type by its name. Anything else that is not plain
#: data would break the catalog's page, so it must fail here too.
CATALOG_EXTRACTION = """
import json
from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

plugin = ExecutorPluginRegistry().get_plugin("prominence")

def plain(key, value):
    if key == "type":
        return None if value is None else value.__name__
    return value

print(json.dumps([{k: plain(k, v) for k, v in s.items()} for s in plugin.get_settings_info()]))
"""

#: A run report written in the clean environment (no matplotlib): the log lines, as JSON.
REPORT_WITHOUT_MATPLOTLIB = """
import json, sys
from pathlib import Path
from snakemake_executor_plugin_prominence.report.writer import RunReport

lines = []

class Log:
    def info(self, text):
        lines.append(text)

    warning = info

report = RunReport("run1", Path(sys.argv[1]), 0.5)
report.add({
    "id": 1,
    "status": "completed",
    "events": {"createTime": 1000, "startTime": 1010, "endTime": 1100},
    "resources": {"cpus": 1, "memory": 1, "disk": 10, "nodes": 1, "walltime": 60},
    "labels": {"snakemakerule": "a", "snakemakejob": "1", "snakemakeattempt": "1"},
    "execution": {"site": "S", "tasks": [{"exitCode": 0, "wallTimeUsage": 80.0,
                                           "cpuTimeUsage": 40.0, "retries": 0}]},
})
report.finish(None, Log())
print(json.dumps(lines))
"""


@dataclasses.dataclass
class Built:
    wheel: Path
    sdist: Path
    venv: Path
    scratch: Path
    seconds: dict[str, float]
    #: a venv with the release tools (build, twine), as the publish job has them
    tools: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *command: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        """A command of the installed environment, as a user of it runs it."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        result = subprocess.run(
            command, cwd=self.scratch, env=env, capture_output=True, text=True, timeout=300
        )
        if ok:
            output = result.stdout[-2000:] + result.stderr[-3000:]
            assert result.returncode == 0, f"{command}: {output}"
        return result


def timed(seconds: dict[str, float], step: str, command: list[str], cwd: Path) -> None:
    """Run one step of the build; pip steps skip compiling modules to bytecode (the slowest
    part of an install, which nothing here depends on)."""
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=540)
    seconds[step] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, f"{step}: {result.stdout[-3000:]}{result.stderr[-3000:]}"


def fresh_clone(destination: Path) -> Path:
    """This checkout's files as a fresh clone has them (plus uncommitted changes): what git
    tracks or would track, without ignored files (.venv, caches) and without what other tests
    running at the same time create in the tree meanwhile."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in this checkout is not copied
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """Build once, install once: every test of this module reads the same results."""
    base = tmp_path_factory.mktemp("release")
    source = fresh_clone(base / "source")
    dist, venv, scratch = base / "dist", base / "venv", base / "scratch"
    tools = base / "tools"
    scratch.mkdir()
    seconds: dict[str, float] = {}
    timed(seconds, "tools", [sys.executable, "-m", "venv", str(tools)], base)
    timed(
        seconds,
        "tools install",
        [str(tools / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "--quiet", "--no-compile", *RELEASE_TOOLS],
        base,
    )  # fmt: skip
    timed(
        seconds,
        "build",
        [str(tools / "bin" / "python"), "-m", "build", "--outdir", str(dist), "."],
        source,
    )
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    timed(seconds, "venv", [sys.executable, "-m", "venv", str(venv)], base)
    timed(
        seconds,
        "install",
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "--quiet", "--no-compile", str(wheel)],
        base,
    )  # fmt: skip
    print(f"\nbuild and install: {seconds}")
    return Built(wheel, sdist, venv, scratch, seconds, tools)


def wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.HeaderParser().parsestr(archive.read(name).decode("utf-8"))


# --- the distributions ------------------------------------------------------------------------


def test_twine_accepts_the_sdist_and_the_wheel(built):
    result = subprocess.run(
        [
            str(built.tools / "bin" / "python"),
            "-m",
            "twine",
            "check",
            "--strict",
            str(built.wheel),
            str(built.sdist),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_the_names_are_the_normalised_project_name_and_version(built):
    stem = f"{PACKAGE}-{PROJECT['version']}"
    assert built.sdist.name == f"{stem}.tar.gz"  # the name the Bioconda recipe downloads
    assert built.wheel.name == f"{stem}-py3-none-any.whl"


def test_the_wheel_metadata_is_pyprojects(built):
    metadata = wheel_metadata(built.wheel)
    assert metadata["Name"] == PROJECT["name"] and metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == PROJECT["requires-python"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    required = {
        str(Requirement(r)) for r in metadata.get_all("Requires-Dist") if "extra ==" not in r
    }
    assert required == {str(Requirement(d)) for d in PROJECT["dependencies"]}
    assert set(metadata.get_all("Provides-Extra")) == {"emulator", "report", "test"}
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert urls["Repository"] == PROJECT["urls"]["Repository"]
    assert not [c for c in metadata.get_all("Classifier") if c.startswith("License ::")]


def test_the_wheel_holds_the_package_its_data_and_the_licence_and_nothing_else(built):
    with zipfile.ZipFile(built.wheel) as archive:
        names = archive.namelist()
    assert SCHEMA in names
    assert f"{PACKAGE}/emulator/server.py" in names and f"{PACKAGE}/report/html.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {PACKAGE}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_sdist_holds_what_the_bioconda_build_needs(built):
    with tarfile.open(built.sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"LICENSE", "pyproject.toml", "README.md", "CHANGELOG.md", "PKG-INFO"} <= names
    assert {"docs/intro.md", "docs/further.md", SCHEMA, f"{PACKAGE}/__init__.py"} <= names
    assert not [n for n in names if n.startswith((".venv", ".git/")) or "__pycache__" in n]


def test_fill_recipe_reads_the_sdists_version_and_hash(built):
    spec = importlib.util.spec_from_file_location(
        "fill_recipe", ROOT / "packaging" / "bioconda" / "fill_recipe.py"
    )
    assert spec and spec.loader
    fill_recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fill_recipe)
    version, sha256 = fill_recipe.sdist_facts(built.sdist)
    assert version == PROJECT["version"]
    assert sha256 == hashlib.sha256(built.sdist.read_bytes()).hexdigest()


# --- the wheel installed with no extra --------------------------------------------------------


def test_the_environment_has_the_plugin_and_no_extra(built):
    code = (
        "import importlib.util as u, json, snakemake_executor_plugin_prominence as p; "
        "print(json.dumps([p.__file__] + [u.find_spec(m) is not None "
        "for m in ('flask', 'matplotlib', 'pytest')]))"
    )
    location, *found = json.loads(built.run(built.bin("python"), "-c", code).stdout)
    assert Path(location).is_relative_to(built.venv)  # installed, not this checkout
    assert found == [False, False, False]
    built.run(built.bin("python"), "-m", "pip", "check")


def test_snakemake_help_lists_every_setting(built):
    result = built.run(built.bin("snakemake"), "--executor", "prominence", "--help")
    flags = ["--prominence-" + name.replace("_", "-") for name in SETTING_NAMES]
    assert len(flags) > 20
    assert [flag for flag in flags if flag not in result.stdout] == []


def test_the_catalogs_settings_extraction_succeeds(built):
    result = built.run(built.bin("python"), "-c", CATALOG_EXTRACTION)
    settings = json.loads(result.stdout)
    assert [s["name"] for s in settings] == SETTING_NAMES
    for setting in settings:
        assert setting["cliarg"] == "--prominence-" + setting["name"].replace("_", "-")
        assert len(setting["help"]) > 20
    types = {s["name"]: s["type"] for s in settings}
    assert types["max_retries"] == "int"


def test_prominence_snakemake_help(built):
    result = built.run(built.bin("prominence-snakemake"), "--help")
    assert result.stdout.startswith("usage: prominence-snakemake")
    for command in ("submit", "list", "status", "logs", "cancel"):
        assert command in result.stdout


def test_the_event_schema_is_installed_with_the_package(built):
    code = (
        "import json; from snakemake_executor_plugin_prominence.run import events; "
        "print(json.dumps([str(events.SCHEMA_FILE), json.loads(events.SCHEMA_FILE.read_text())]))"
    )
    path, schema = json.loads(built.run(built.bin("python"), "-c", code).stdout)
    assert Path(path).is_relative_to(built.venv)
    assert schema == json.loads((ROOT / SCHEMA).read_text())


def test_the_emulator_says_which_extra_it_needs(built):
    help_text = built.run(built.bin("prominence-emulator"), "--help").stdout
    assert "--instant" in help_text  # its options are readable without the extra
    result = built.run(built.bin("prominence-emulator"), "--port", "0", ok=False)
    assert result.returncode == 2
    assert "`emulator` extra" in result.stderr
    assert "pip install 'snakemake-executor-plugin-prominence[emulator]'" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    code = "from snakemake_executor_plugin_prominence.emulator import Emulator"
    imported = built.run(built.bin("python"), "-c", code, ok=False)
    assert imported.returncode == 1
    assert (
        imported.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "snakemake_executor_plugin_prominence.emulator.extra.EmulatorExtraMissing: "
            "The PROMINENCE emulator needs the plugin's `emulator` extra"
        )
    )


def test_the_run_report_says_which_extra_its_page_needs(built):
    reports = built.scratch / "reports"
    result = built.run(built.bin("python"), "-c", REPORT_WITHOUT_MATPLOTLIB, str(reports))
    lines = json.loads(result.stdout)
    assert any(
        "report.html" in line
        and "`report` extra" in line
        and "pip install 'snakemake-executor-plugin-prominence[report]'" in line
        for line in lines
    ), lines
    assert (reports / "run1" / "jobs.tsv").is_file()
    assert not (reports / "run1" / "report.html").exists()
