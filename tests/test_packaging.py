"""What a release needs, checked from the files alone (fast; building and installing the
package: ``tests/test_wheel_install.py``).

- ``pyproject.toml`` is fit for PyPI: the licence as an SPDX expression with its file, no
  deprecated licence classifier, the Python versions CI tests, the links the plugin catalog
  and PyPI show.
- The GitHub workflows: CI runs ``.ci/run``; release-please (python) makes releases and only a
  created release is published, by trusted publishing, with an upload action recent enough
  for the metadata current hatchling writes; pull request titles are conventional commits.
  They are checked against GitHub's workflow schema, and every job output they read exists.
- ``CHANGELOG.md`` has the shape release-please extends, and its newest entry is the version.
- The docs render away from the repository: on PyPI (the README) and in the plugin catalog
  (``docs/intro.md`` and ``docs/further.md`` through m2r2 into reStructuredText, as the
  catalog converts them): absolute picture URLs, no second "Further details" title, every
  link either absolute or to a heading that exists.
- The Bioconda recipe requires what ``pyproject.toml`` requires, bound for bound.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import docutils.core
import docutils.nodes
import docutils.utils
import jinja2
import m2r2
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
REPOSITORY = "https://github.com/prominence-eosc/snakemake-executor-plugin-prominence"
RAW = "https://raw.githubusercontent.com/prominence-eosc/snakemake-executor-plugin-prominence"
WORKFLOWS = ROOT / ".github" / "workflows"
RECIPE = ROOT / "packaging" / "bioconda" / "meta.yaml"
#: the markdown files rendered away from the repository: PyPI shows the README, the plugin
#: catalog docs/intro.md and docs/further.md
RENDERED_DOCS = ("README.md", "docs/intro.md", "docs/further.md")
#: Bioconda's names for PyPI names that differ
CONDA_NAMES = {"snakemake": "snakemake-minimal"}
#: the oldest pypa/gh-action-pypi-publish whose twine reads Metadata-Version 2.5 (hatchling
#: 1.32 and later write it; older versions of the action refuse the upload)
PUBLISH_ACTION_MIN = Version("1.14.2")


# --- pyproject.toml ---------------------------------------------------------------------------


def test_the_licence_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Permission is hereby granted" in text
    # PEP 639: with a licence expression the licence classifiers are deprecated
    assert [c for c in PROJECT["classifiers"] if c.startswith("License ::")] == []


def test_authors_and_the_links_pypi_and_the_catalog_show():
    assert PROJECT["authors"] and all(a["name"].strip() for a in PROJECT["authors"])
    urls = PROJECT["urls"]
    # the catalog clones Repository and reads docs/ from its main branch
    assert urls["Repository"] == REPOSITORY
    plugin = PROJECT["name"].removeprefix("snakemake-executor-plugin-")
    assert urls["Documentation"] == (
        f"https://snakemake.github.io/snakemake-plugin-catalog/plugins/executor/{plugin}.html"
    )
    assert urls["Changelog"] == f"{REPOSITORY}/blob/main/CHANGELOG.md"


def ci_python_versions() -> list[str]:
    ci = load_workflow("ci.yml")
    return [str(v) for v in ci["jobs"]["test"]["strategy"]["matrix"]["python-version"]]


def test_the_classifiers_name_the_python_versions_ci_tests():
    classified = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    tested = ci_python_versions()
    assert classified == sorted(tested, key=Version)
    assert SpecifierSet(PROJECT["requires-python"]) == SpecifierSet(f">={min(tested, key=Version)}")


def test_the_release_tools_are_the_publish_jobs_and_stay_out_of_the_test_extra():
    # The wheel test builds and checks with what the publish job installs, in a venv of its
    # own: twine 7 (which reads Metadata-Version 2.5) needs a packaging newer than Snakemake
    # accepts, so in the test extra it would quietly hold Snakemake back at an older release.
    from tests.test_wheel_install import RELEASE_TOOLS

    tools = {Requirement(r).name: Requirement(r) for r in RELEASE_TOOLS}
    assert set(tools) == {"build", "twine"}
    assert Version("7.0") in tools["twine"].specifier
    assert Version("6.2") not in tools["twine"].specifier
    publish = (WORKFLOWS / "release-please.yml").read_text()
    assert " ".join(f'"{r}"' for r in RELEASE_TOOLS) in publish
    extra = {Requirement(r).name for r in PROJECT["optional-dependencies"]["test"]}
    assert not extra & set(tools)


# --- the GitHub workflows ---------------------------------------------------------------------


def load_workflow(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def schema_check(*files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the GitHub workflow schema it ships (SchemaStore's): the keys,
    their nesting and their value types, as GitHub reads a workflow file."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
         "vendor.github-workflows", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


EXPRESSION_OUTPUT = re.compile(r"\b(needs|steps)\.([\w-]+)\.outputs\.([\w-]+)")


def dangling_outputs(workflow: dict[str, Any]) -> list[str]:
    """References to outputs no job or step has: ``needs.<job>.outputs.<name>`` of a job that
    is not needed or does not declare that output, ``steps.<id>.outputs`` of a step id the
    job does not have (the schema cannot see these; GitHub makes them empty strings, so a
    gated job would silently never run)."""
    found = []
    jobs = workflow["jobs"]
    for job_name, job in jobs.items():
        needed = job.get("needs", [])
        needed = [needed] if isinstance(needed, str) else needed
        step_ids = {step["id"] for step in job.get("steps", []) if "id" in step}
        for kind, name, output in EXPRESSION_OUTPUT.findall(yaml.safe_dump(job)):
            if kind == "needs" and (
                name not in needed or output not in jobs[name].get("outputs", {})
            ):
                found.append(f"{job_name}: needs.{name}.outputs.{output}")
            if kind == "steps" and name not in step_ids:
                found.append(f"{job_name}: steps.{name}.outputs.{output}")
    return found


def test_the_workflows_are_valid_for_github():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"ci.yml", "release-please.yml", "conventional-prs.yml"}
    result = schema_check(*files)
    assert result.returncode == 0, result.stdout + result.stderr
    for file in files:
        assert dangling_outputs(load_workflow(file.name)) == [], file.name


def test_the_workflow_checks_find_a_broken_workflow(tmp_path):
    text = (WORKFLOWS / "release-please.yml").read_text()
    # a misspelt key: the schema check fails
    misspelt = tmp_path / "misspelt.yml"
    misspelt.write_text(text.replace("runs-on:", "run-on:", 1))
    result = schema_check(misspelt)
    assert result.returncode == 1 and "misspelt.yml" in result.stdout + result.stderr
    # the publish job gated on an output release-please's job does not declare
    broken = yaml.safe_load(text.replace("outputs.release_created == 'true'", "outputs.done"))
    assert dangling_outputs(broken) == ["publish: needs.release-please.outputs.done"]
    # a job output read from a step id that does not exist
    broken = yaml.safe_load(
        text.replace("steps.release.outputs.tag_name", "steps.rp.outputs.tag_name")
    )
    assert dangling_outputs(broken) == ["release-please: steps.rp.outputs.tag_name"]


def test_ci_runs_ci_run_as_root_in_a_debian_python_image_on_every_push_and_pull_request():
    ci = load_workflow("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    (job,) = ci["jobs"].values()
    assert job["container"]["image"] == "python:${{ matrix.python-version }}-bookworm"
    assert "options" not in job["container"]  # no --user: root, so apt-get works
    assert steps_using(job, "actions/checkout")
    runs = [step["run"].strip() for step in job["steps"] if "run" in step]
    assert "bash .ci/run" in runs
    assert job["timeout-minutes"] >= 60


def test_release_please_releases_and_only_a_created_release_is_published():
    workflow = load_workflow("release-please.yml")
    assert set(workflow["on"]) == {"push"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    release = workflow["jobs"]["release-please"]
    (step,) = steps_using(release, "googleapis/release-please-action")
    assert step["with"]["release-type"] == "python"
    output = "${{ steps." + step["id"] + ".outputs.release_created }}"
    assert release["outputs"]["release_created"] == output
    assert release["permissions"] == {"contents": "write", "pull-requests": "write"}

    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "release-please"
    assert "needs.release-please.outputs.release_created" in publish["if"]
    assert publish["permissions"]["id-token"] == "write"  # trusted publishing
    assert publish["environment"]["name"] == "pypi"
    runs = "\n".join(step.get("run", "") for step in publish["steps"])
    names = [step.get("uses", step.get("run", "")).split("@")[0] for step in publish["steps"]]
    upload = names.index("pypa/gh-action-pypi-publish")
    assert upload == len(names) - 1  # built and checked before
    assert "python -m build" in runs and "twine check --strict dist/*" in runs
    (upload_step,) = steps_using(publish, "pypa/gh-action-pypi-publish")
    assert "with" not in upload_step or "password" not in upload_step["with"]  # no token
    pinned = upload_step["uses"].split("@")[1]
    assert Version(pinned.removeprefix("v")) >= PUBLISH_ACTION_MIN


def test_pull_request_titles_must_be_conventional_commits():
    workflow = load_workflow("conventional-prs.yml")
    assert "pull_request_target" in workflow["on"]
    (job,) = workflow["jobs"].values()
    (step,) = steps_using(job, "amannn/action-semantic-pull-request")
    types = step["with"]["types"].split()
    assert {"feat", "fix", "docs", "chore"} <= set(types)


# --- CHANGELOG.md -----------------------------------------------------------------------------

#: where release-please puts a release's entry: before the first line like this
#: (src/updaters/changelog.ts: "\n###? v?[0-9[]"); "## [0.2.0](...) (date)" is its own shape
RELEASE_PLEASE_HEADING = re.compile(r"\n###? v?[0-9\[]")
VERSION_OF_HEADING = re.compile(r"###? \[?v?(\d+\.\d+\.\d+[^\]\s]*)")


def test_the_changelog_has_the_shape_release_please_extends():
    text = (ROOT / "CHANGELOG.md").read_text()
    first = RELEASE_PLEASE_HEADING.search(text)
    assert first, "release-please would replace the whole file"
    preamble, entries = text[: first.start()], text[first.start() :]
    assert preamble.startswith("# Changelog\n")
    # nothing above the first entry that belongs to a release (it would stay above them all)
    assert not re.search(r"^\s*[-*] ", preamble, re.MULTILINE)
    assert not re.search(r"^##", preamble, re.MULTILINE)
    # release-please's entries go in between: the hand-written history stays below them
    assert entries.startswith("\n## 0.1.0 ")
    assert "### Since the first draft" in entries and "### The first draft" in entries


def test_the_newest_changelog_entry_is_the_version_in_pyproject():
    text = (ROOT / "CHANGELOG.md").read_text()
    first = RELEASE_PLEASE_HEADING.search(text)
    assert first is not None
    newest = VERSION_OF_HEADING.match(text, first.start() + 1)
    assert newest and newest.group(1) == PROJECT["version"]


# --- the docs, rendered away from the repository ----------------------------------------------

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(!?)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
HTML_URL = re.compile(r"<(?:img|a)\b[^>]*?(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)


def prose(markdown: str) -> str:
    """The text outside code blocks and code spans (where brackets are code, not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def links(markdown: str) -> list[tuple[bool, str]]:
    """``(is an image, target)`` of every link and picture, in the order they appear."""
    text = prose(markdown)
    found = [(bang == "!", target) for bang, target in LINK.findall(text)]
    found += [(False, target) for target in REFERENCE.findall(text)]
    found += [(m.group(0).lower().startswith("<img"), m.group(1)) for m in HTML_URL.finditer(text)]
    return found


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file."""
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", markdown).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


#: a file of this repository on its default branch, as a page or as raw content
OWN_FILE = re.compile(rf"(?:{re.escape(REPOSITORY)}/(?:blob|tree)|{re.escape(RAW)})/main/(.+)")


def problems_of_links(doc: str, markdown: str) -> list[str]:
    """Links that break once the file is shown away from the repository, and links into this
    repository (or to a heading) that lead nowhere."""
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    problems = []
    for is_image, target in links(markdown):
        path, _, anchor = target.partition("#")
        if not path:  # a heading of this file
            if doc == "README.md":
                problems.append(f"{target}: PyPI gives the README's headings no anchors")
            elif anchor not in anchors(markdown):
                problems.append(f"{target}: no such heading")
            continue
        if not re.match(r"https?://", path):
            problems.append(f"{target}: relative, broken on PyPI and in the catalog")
            continue
        if is_image and not path.startswith("https://"):
            problems.append(f"{target}: a picture over plain http")
        own = OWN_FILE.match(path)
        if own:
            name = own.group(1)
            if name not in tracked and not any(t.startswith(name + "/") for t in tracked):
                problems.append(f"{target}: {name} is not in the repository")
            elif anchor and anchor not in anchors((ROOT / name).read_text()):
                problems.append(f"{target}: {name} has no such heading")
    return problems


@pytest.mark.parametrize("doc", RENDERED_DOCS)
def test_every_link_works_away_from_the_repository(doc):
    markdown = (ROOT / doc).read_text()
    assert links(markdown), f"{doc} has no links at all: is the link pattern broken?"
    assert problems_of_links(doc, markdown) == []


def test_the_link_check_finds_broken_links():
    markdown = (
        "![a](docs/report.png) [b](#no-such-heading) [c](docs/further.md)\n"
        f"[d]({REPOSITORY}/blob/main/docs/missing.md) "
        f"[e]({REPOSITORY}/blob/main/docs/further.md#no-such-heading) "
        f"![f](http://example.org/x.png) [g](#how-it-works)\n"
        "```\n[not a link](inside/a/fence)\n```\n## How it works\n"
    )
    problems = problems_of_links("docs/further.md", markdown)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "docs/report.png",
        "#no-such-heading",
        "docs/further.md",
        f"{REPOSITORY}/blob/main/docs/missing.md",
        f"{REPOSITORY}/blob/main/docs/further.md#no-such-heading",
        "http://example.org/x.png",
    ]


def test_the_readme_shows_the_run_report_picture_from_the_repository():
    images = [target for is_image, target in links((ROOT / "README.md").read_text()) if is_image]
    assert f"{RAW}/main/docs/report.png" in images
    assert (
        "docs/report.png"
        in subprocess.run(
            ["git", "ls-files", "docs"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )


def test_the_catalog_intro_is_a_few_sentences_without_headings():
    intro = (ROOT / "docs" / "intro.md").read_text()
    assert 100 < len(intro) < 1500
    assert not re.search(r"^#", intro, re.MULTILINE)


def catalog_page(intro: str, further: str) -> str:
    """The plugin's catalog page as reStructuredText: intro.md and further.md converted by
    m2r2, as the catalog does, in the catalog's sections (title, Installation, Usage,
    Settings, then its own "Further details" heading over further.md)."""
    return "\n".join(
        [
            "Snakemake executor plugin: prominence",
            "#####################################",
            "",
            m2r2.convert(intro),
            "",
            "Installation",
            "************",
            "",
            "pip install snakemake-executor-plugin-prominence",
            "",
            "Settings",
            "********",
            "",
            "The settings table.",
            "",
            "Further details",
            "***************",
            "",
            m2r2.convert(further),
        ]
    )


def render(rst: str) -> tuple[docutils.nodes.document, list[str]]:
    """The parsed page and docutils' warnings and errors about it."""
    messages: list[str] = []
    document = docutils.core.publish_doctree(
        rst,
        settings_overrides={
            "report_level": docutils.utils.Reporter.WARNING_LEVEL,
            "halt_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
            "warning_stream": False,
        },
    )
    for message in document.findall(docutils.nodes.system_message):
        if message["level"] >= docutils.utils.Reporter.WARNING_LEVEL:
            messages.append(message.astext())
    return document, messages


def section_titles(document: docutils.nodes.document) -> list[str]:
    return [
        section[0].astext()
        for section in document.findall(docutils.nodes.section)
        if isinstance(section[0], docutils.nodes.title)
    ]


def test_the_docs_render_in_the_catalog_without_errors_or_a_second_title():
    intro = (ROOT / "docs" / "intro.md").read_text()
    further = (ROOT / "docs" / "further.md").read_text()
    document, messages = render(catalog_page(intro, further))
    assert messages == []
    titles = section_titles(document)
    assert titles.count("Further details") == 1
    # further.md's own sections sit under the catalog's "Further details"
    further_section = next(
        s for s in document.findall(docutils.nodes.section) if s[0].astext() == "Further details"
    )
    inner = section_titles(further_section)
    assert "How it works" in inner and "Detached runs" in inner
    images = [image["uri"] for image in document.findall(docutils.nodes.image)]
    assert images == [f"{RAW}/main/docs/report.png"]


def test_the_catalog_rendering_check_sees_a_second_title_and_a_relative_picture():
    document, messages = render(
        catalog_page("An intro.", "# Further details\n\n## A\n\ntext\n\n![x](report.png)\n")
    )
    assert section_titles(document).count("Further details") == 2
    assert [image["uri"] for image in document.findall(docutils.nodes.image)] == ["report.png"]
    _, messages = render(catalog_page("An intro.", "## A\n\n### B\n\n## C\n\n#### D\n"))
    assert messages  # a heading level skipped: docutils complains, as Sphinx would


# --- the Bioconda recipe ----------------------------------------------------------------------


def read_recipe(text: str) -> dict[str, Any]:
    """meta.yaml as conda-build reads it: rendered by Jinja (with conda-build's functions
    stubbed), then YAML."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = environment.from_string(text).render(
        PYTHON="python",
        pin_subpackage=lambda name, max_pin=None: f"{name} (pinned to {max_pin})",
    )
    return yaml.safe_load(rendered)


def conda_requirement(spec: str) -> Requirement:
    """``name >=1,<2`` (conda's form) as a PyPI requirement, under its PyPI name."""
    name, _, bounds = spec.partition(" ")
    pypi_name = {conda: pypi for pypi, conda in CONDA_NAMES.items()}.get(name, name)
    return Requirement(pypi_name + bounds.replace(" ", ""))


def mismatches(recipe: dict[str, Any], project: dict[str, Any]) -> list[str]:
    """Where the recipe's run requirements differ from ``project``'s dependencies."""
    run = [conda_requirement(s) for s in recipe["requirements"]["run"]]
    found = []
    python = [r for r in run if r.name == "python"]
    if [str(r.specifier) for r in python] != [str(SpecifierSet(project["requires-python"]))]:
        found.append(f"python: {python} against requires-python {project['requires-python']}")
    recipe_deps = {r.name: r.specifier for r in run if r.name != "python"}
    project_deps = {Requirement(d).name: Requirement(d).specifier for d in project["dependencies"]}
    for name in sorted(recipe_deps.keys() | project_deps.keys()):
        if recipe_deps.get(name) != project_deps.get(name):
            found.append(f"{name}: {recipe_deps.get(name)} in the recipe, "
                         f"{project_deps.get(name)} in pyproject.toml")  # fmt: skip
    return found


def test_the_recipe_requires_what_pyproject_requires():
    recipe = read_recipe(RECIPE.read_text())
    assert mismatches(recipe, PROJECT) == []
    # snakemake under Bioconda's name, as the other plugins' recipes require it
    assert any(s.startswith("snakemake-minimal ") for s in recipe["requirements"]["run"])
    host = {conda_requirement(s).name: conda_requirement(s) for s in recipe["requirements"]["host"]}
    (backend,) = (Requirement(r) for r in PYPROJECT["build-system"]["requires"])
    assert host[backend.name].specifier == backend.specifier
    assert host["python"].specifier == SpecifierSet(PROJECT["requires-python"])
    assert "pip" in host


def test_the_requirement_check_sees_a_changed_bound_a_missing_and_an_extra_package():
    recipe = read_recipe(RECIPE.read_text())
    run = recipe["requirements"]["run"]
    bumped = [s.replace("urllib3 >=2,<3", "urllib3 >=2,<4") for s in run if "requests" not in s]
    recipe["requirements"]["run"] = [*bumped, "numpy >=2"]
    found = mismatches(recipe, PROJECT)
    assert [line.split(":")[0] for line in found] == ["numpy", "requests", "urllib3"]


def test_the_recipe_builds_and_tests_as_bioconda_expects():
    recipe = read_recipe(RECIPE.read_text())
    assert recipe["package"]["name"] == PROJECT["name"]
    url = recipe["source"]["url"]
    assert url.startswith(f"https://pypi.org/packages/source/s/{PROJECT['name']}/")
    sdist = f"snakemake_executor_plugin_prominence-{recipe['package']['version']}.tar.gz"
    assert url.endswith("/" + sdist)
    build = recipe["build"]
    assert build["noarch"] == "python"
    assert "-m pip install . " in build["script"]
    assert "--no-deps" in build["script"] and "--no-build-isolation" in build["script"]
    assert sorted(build["entry_points"]) == sorted(
        f"{name} = {target}" for name, target in PROJECT["scripts"].items()
    )
    test = recipe["test"]
    assert test["imports"] == ["snakemake_executor_plugin_prominence"]
    assert "pip" in test["requires"]
    for command in ("pip check", "snakemake --executor prominence --help",
                    "prominence-snakemake --help"):  # fmt: skip
        assert command in test["commands"]
    about = recipe["about"]
    assert about["license"] == PROJECT["license"] and about["license_family"] == "MIT"
    assert (ROOT / about["license_file"]).is_file()
    assert about["home"] == about["dev_url"] == REPOSITORY
    assert about["doc_url"] == PROJECT["urls"]["Documentation"]


def load_fill_recipe():
    spec = importlib.util.spec_from_file_location("fill_recipe", RECIPE.parent / "fill_recipe.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fill_recipe_sets_the_version_and_the_hash_and_nothing_else():
    fill_recipe = load_fill_recipe()
    text = RECIPE.read_text()
    filled = fill_recipe.fill(text, "1.2.3", "ab" * 32)
    recipe = read_recipe(filled)
    assert recipe["package"]["version"] == "1.2.3"
    assert recipe["source"]["sha256"] == "ab" * 32
    assert recipe["source"]["url"].endswith("-1.2.3.tar.gz")
    lines = zip(text.splitlines(), filled.splitlines(), strict=True)
    assert len([(a, b) for a, b in lines if a != b]) == 2
    with pytest.raises(ValueError, match="set version"):
        fill_recipe.fill("no set lines here", "1", "2")
