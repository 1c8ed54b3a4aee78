"""The fingerprint of a job's work (``job.fingerprint``), on real Snakemake job objects: every
ingredient changes it, and what differs between two runs of the same work does not.

The jobs come from a dry run of a small workflow through Snakemake's own API, with the ``fs``
storage provider as the default storage (so files are storage paths, as in a real run); the
descriptions are the plugin's own (``job.description.build``)."""

from __future__ import annotations

import inspect
import linecache
from pathlib import Path
from typing import Any

import pytest

from snakemake_executor_plugin_prominence.job.description import JobDefaults, build
from snakemake_executor_plugin_prominence.job.fingerprint import (
    canonical,
    fingerprint,
    identity_of_job,
    identity_of_labels,
    work_of,
)
from snakemake_executor_plugin_prominence.job.labels import WORK_LABEL, job_labels

SNAKEFILE = """
IMAGE = config.get("image", "docker://snakemake/snakemake:v9.3.5")

rule all:
    input:
        expand("out/{s}.txt", s=["A", "B"]),
        "scripted.txt",
        "ran.txt",
        "other.txt",
        "grouped/second.txt",

rule source:
    output:
        config.get("data", "data") + "/{s}.in",
    shell:
        "echo {wildcards.s} > {output}"

rule make:
    input:
        config.get("data", "data") + "/{s}.in",
    output:
        "out/{s}.txt",
    params:
        n=config.get("n", 1),
        table={"b": [1, 2], "a": {"x", "y"}},
    threads: config.get("threads", 2)
    resources:
        mem_mb=config.get("mem_mb", 3000),
        runtime=10,
    container:
        IMAGE
    shell:
        config.get("command", "echo {params.n} {input} > {output}")

rule other:
    output:
        "other.txt",
    shell:
        config.get("other_command", "touch {output}")

rule scripted:
    output:
        "scripted.txt",
    script:
        "scripts/tool.py"

rule ran:
    output:
        "ran.txt",
    run:
        with open(output[0], "w") as out:
            out.write(config.get("ran", "ran"))

rule first:
    output:
        "grouped/first.txt",
    group:
        "pair"
    shell:
        config.get("first_command", "echo 1 > {output}")

rule second:
    input:
        "grouped/first.txt",
    output:
        "grouped/second.txt",
    group:
        "pair"
    shell:
        "cat {input} > {output}"
"""
DEFAULTS = JobDefaults(image="snakemake/snakemake:v9.3.5")


def dag_jobs(
    workdir: Path,
    storage: Path,
    config: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
    snakefile: str = SNAKEFILE,
    targets: list[str] | None = None,
) -> dict[str, Any]:
    """Real job objects of ``snakefile`` in ``workdir`` after a dry run, by rule and wildcard
    values (``make:A``, ``scripted``, ...), and the group job as ``group:pair``.
    ``files``: files of the workflow (path: text) besides the Snakefile."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(snakefile)
    # Snakemake 9.2x reads a run: block's source through linecache, which would serve the
    # previous build's Snakefile in this process (a real run is one process per run)
    linecache.clearcache()
    for name, text in {"scripts/tool.py": "print('tool')\n", **(files or {})}.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(text)
    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=64),  # threads are not capped
            config_settings=ConfigSettings(config=config or {}),
            storage_settings=StorageSettings(
                default_storage_provider="fs", default_storage_prefix=str(storage)
            ),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        dag_api = workflow_api.dag(DAGSettings(targets=set(targets or [])))
        if "pseudo_executor" in inspect.signature(dag_api.execute_workflow).parameters:
            dag_api.execute_workflow(executor="local", pseudo_executor="dryrun")
        else:  # older Snakemake: the dry run is an executor of its own
            dag_api.execute_workflow(executor="dryrun")
        dag = workflow_api._workflow.dag
        jobs: dict[str, Any] = {}
        for job in dag.jobs:
            values = ",".join(str(v) for v in dict(job.wildcards_dict).values())
            jobs[f"{job.name}:{values}" if values else job.name] = job
        groups = [job for job in dag.get_jobs_or_groups() if job.is_group()]
        members = [job for job in dag.jobs if job.name in ("first", "second")]
        if not groups and members:  # a local dry run forms no groups on Snakemake 9.3.5
            groups = [
                dag.group_job_factory.new("pair", members, workflow_api._workflow.global_resources)
            ]
            groups[0].finalize()
        for group in groups:
            jobs[f"group:{group.groupid}"] = group
        return jobs


def fp(job: Any, command: str = "snakemake ...", env: dict[str, str] | None = None) -> str:
    """The fingerprint of the description the plugin would post for ``job``."""
    description = build(job, command, env or {}, DEFAULTS, job_labels=job_labels(job))
    work = fingerprint(job, description)
    assert work is not None and len(work) == 64
    return work


@pytest.fixture(scope="module")
def where(tmp_path_factory) -> tuple[Path, Path]:
    """One workflow directory and one storage prefix for every build: as two runs of the same
    workflow see them."""
    root = tmp_path_factory.mktemp("fingerprint")
    return root / "wf", root / "storage"


@pytest.fixture(scope="module")
def base(where) -> dict[str, str]:
    jobs = dag_jobs(*where)
    return {name: fp(job) for name, job in jobs.items()}


def prints(where: tuple[Path, Path], **kwargs: Any) -> dict[str, str]:
    return {name: fp(job) for name, job in dag_jobs(*where, **kwargs).items()}


def test_another_run_of_the_same_work_has_the_same_fingerprint(where, base):
    # another run, with other targets: other Snakemake job ids, the same work
    targets = ["out/B.txt", "out/A.txt", "grouped/second.txt"]
    jobs = dag_jobs(*where, targets=targets)
    assert {name: fp(jobs[name]) for name in jobs} == {name: base[name] for name in jobs}
    assert {"make:A", "make:B", "source:A", "group:pair"} <= set(jobs)

    job = jobs["make:A"]
    # what differs per run and per submission: the remote command (its sources archive, the
    # order of the rerun triggers), presigned URLs and tokens in the env, the submission key,
    # the run id (labels), the attempt
    first = fp(
        job,
        "snakemake --deploy-sources s3://b/snakemake-workflow-sources.aaa.tar.xz "
        "--rerun-triggers code input",
        {"URL": "https://s3/x?X-Amz-Signature=1"},
    )
    job.attempt = 2
    second = fp(
        job,
        "snakemake --deploy-sources s3://b/snakemake-workflow-sources.bbb.tar.xz "
        "--rerun-triggers input code",
        {"URL": "https://s3/x?X-Amz-Signature=2", "PROMINENCE_TOKEN": "renewed"},
    )
    assert first == second == base["make:A"]
    description = build(
        job, "c", {}, DEFAULTS, job_labels={"snakemakerun": "r2", "snakemakekey": "k"}
    )
    assert fingerprint(job, description) == base["make:A"]
    assert WORK_LABEL not in description["labels"]  # the executor adds it


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        ({"config": {"command": "echo {params.n} {input} >> {output}"}}, "the shell command"),
        ({"config": {"n": 2}}, "a param"),
        ({"config": {"data": "inputs"}}, "the input's path"),
        ({"config": {"threads": 4}}, "threads: the cpus asked for"),
        ({"config": {"mem_mb": 9000}}, "mem_mb: the memory asked for"),
        ({"config": {"image": "docker://snakemake/snakemake:v9.27.1"}}, "the image"),
    ],
)
def test_each_ingredient_of_a_rule_job_changes_it(where, base, change, changed):
    after = prints(where, **change)
    assert after["make:A"] != base["make:A"], changed
    assert after["make:B"] != base["make:B"], changed
    assert after["scripted"] == base["scripted"]  # another rule's work is untouched
    assert after["ran"] == base["ran"]


def test_the_wildcards_the_code_of_other_rules_and_scripts(where, base):
    assert base["make:A"] != base["make:B"]  # another job of the same rule
    edited = prints(where, config={"other_command": "echo edited > {output}"})
    assert edited["other"] != base["other"]
    assert edited["make:A"] == base["make:A"]  # editing another rule changes nothing here

    script = prints(where, files={"scripts/tool.py": "print('tool, edited')\n"})
    assert script["scripted"] != base["scripted"]
    assert script["make:A"] == base["make:A"]
    touched = prints(where, files={"scripts/tool.py": "print('tool')\n"})  # rewritten: new mtime
    assert touched["scripted"] == base["scripted"]

    ran = prints(where, snakefile=SNAKEFILE.replace('config.get("ran", "ran")', '"changed"'))
    assert ran["ran"] != base["ran"]
    assert ran["make:A"] == base["make:A"]


def test_a_group_job_is_fingerprinted_from_its_members(where, base):
    edited = prints(where, config={"first_command": "echo one > {output}"})
    assert edited["group:pair"] != base["group:pair"]
    assert edited["second"] == base["second"]
    # the group's own fingerprint is not a member's
    assert base["group:pair"] not in (base["first"], base["second"])


def test_files_count_as_storage_paths_and_identities_match_the_labels(where):
    jobs = dag_jobs(*where)
    storage = where[1]
    work = work_of(jobs["make:A"])
    assert work["input"] == [f"{storage}/data/A.in"]
    assert work["output"] == [f"{storage}/out/A.txt"]
    assert work["wildcards"] == {"s": "A"}
    # the template, not the command: {input} is not filled in (Snakemake 9.2x adds the
    # rule's source text as "run")
    assert work["code"]["shell"] == "echo {params.n} {input} > {output}"
    assert set(work["code"]) <= {"shell", "run"}
    assert work["software"] == {"container": "docker://snakemake/snakemake:v9.3.5"}
    for name in ("make:A", "other", "group:pair"):
        job = jobs[name]
        assert identity_of_job(job) == identity_of_labels(job_labels(job)), name


def test_params_are_canonical():
    assert canonical({"b": [1, 2], "a": {"y", "x"}}) == canonical({"a": {"x", "y"}, "b": (1, 2)})
    assert canonical({"a": 1}) != canonical({"a": 2})
    assert canonical(1.5) == 1.5 and canonical(float("nan")) == "nan"

    class Thing:
        pass

    # a repr with a memory address differs per process: only the type counts
    assert canonical(Thing()) == canonical(Thing())
    assert canonical(Path("/x")) == "/x"


def test_an_odd_job_gets_no_fingerprint():
    class Odd:
        def is_group(self) -> bool:
            raise RuntimeError("not a Snakemake job")

    assert fingerprint(Odd(), {"tasks": [{"image": "i"}], "resources": {}}) is None
