"""Every env value reaches a udocker job intact.

Under udocker the worker puts each task env pair into one command line as
``--env=NAME=value`` and runs it through ``shlex.split`` with no shell
(``promlet.py`` ``run_udocker``, ``run_with_timeout``): raw, a value with a space becomes extra
arguments and a quote crashes the worker. ``worker_argv`` below does the same; the values the
plugin sends must come out of it exactly as they went in.
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from snakemake_executor_plugin_prominence.detached import headjob
from snakemake_executor_plugin_prominence.job.description import (
    JobDefaults,
    JobSpecError,
    build,
    task_env,
)
from tests.jobs import FakeJob

UDOCKER = JobDefaults(image="snakemake/snakemake:v9.27.1", runtime="udocker")
SINGULARITY = JobDefaults(image="snakemake/snakemake:v9.27.1")
RESOURCES = {"mem_mb": 1000, "disk_mb": 1000, "_cores": 1}


def worker_argv(env: dict[str, str]) -> list[str]:
    """The udocker command line the worker builds around a task env, split as it splits it."""
    pairs = " ".join(f"--env={name}={value}" for name, value in env.items())
    command = f"udocker -q run  -v /home/prominence {pairs} --env=HOME=/home/user --hostauth"
    return shlex.split(command + " --workdir=/home/user image /bin/sh -c 'true'")


def env_in(argv: list[str]) -> dict[str, str]:
    """What udocker gives the container: every ``--env=NAME=value`` argument."""
    pairs = [arg[len("--env=") :].partition("=") for arg in argv if arg.startswith("--env=")]
    return {name: value for name, _, value in pairs if name != "HOME"}


def sent_env(env: dict[str, str], defaults: JobDefaults = UDOCKER) -> dict[str, str]:
    return build(FakeJob(resources=RESOURCES), "true", env, defaults)["tasks"][0]["env"]


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
    lambda name: name != "HOME"
)
values = st.text(alphabet=st.characters(exclude_characters="\0"), max_size=60)


@given(st.dictionaries(names, values, min_size=1, max_size=6))
@example({"SPACE": "a b  c", "QUOTES": 'it\'s "quoted"', "EMPTY": ""})
@example({"DOLLAR": "$HOME ${X} $(id) `id` $$", "BACKSLASH": "a\\b\\\\ c\\"})
@example({"NEWLINE": "line1\nline2\r\n\t", "UNICODE": "größe ✓ 日本"})
@example({"URL": "https://s3.example.org/b/k?X-Amz-Signature=a%2Fb&X-Amz-Date=1"})
@example({"LONE": "'", "LONE2": '"', "HASH": "# not a comment", "GLOB": "*?[a]"})
def test_udocker_env_values_survive_the_workers_split(env):
    argv = worker_argv(sent_env(env))
    assert env_in(argv) == env
    # nothing leaked out of a value into udocker's own arguments
    assert argv[-4:] == ["image", "/bin/sh", "-c", "true"]


def test_raw_values_would_not_survive_it():
    """What the quoting prevents (the worker's failure modes, reproduced)."""
    assert env_in(worker_argv({"A": "x y"})) == {"A": "x"}
    with pytest.raises(ValueError, match="quotation"):
        worker_argv({"A": "it's"})


def test_singularity_env_is_passed_as_is():
    env = {"SPACE": "a b", "QUOTE": "it's", "NAME-WITH-DASH": "v"}
    assert sent_env(env, SINGULARITY) == env


@pytest.mark.parametrize("name", ["MY-VAR", "1ST", "A B", "", "A=B", "Ä"])
def test_a_name_udocker_cannot_pass_fails_the_job_naming_it_not_its_value(name):
    with pytest.raises(JobSpecError) as caught:
        sent_env({name: "s3cr3t-value"})
    message = str(caught.value)
    assert f"env={name!r}" in message
    assert "s3cr3t-value" not in message


def test_a_nul_in_a_value_fails_the_job_naming_the_variable_not_its_value():
    with pytest.raises(JobSpecError) as caught:
        sent_env({"TOKEN": "s3cr3t\0value"})
    assert "env='TOKEN'" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_the_detached_head_quotes_its_env_for_udocker_too():
    env = {"SNAKEMAKE_STORAGE_S3_SECRET_KEY": "a b'c", headjob.RUN_FOLDER_ENV: "s3://b/r 1/"}
    description = headjob.head_description(
        run_id="r1",
        command="true",
        sources=b"",
        image="snakemake/snakemake:v9.27.1",
        env=env,
        labels={},
        cpus=1,
        memory_gb=2,
        disk_gb=10,
        walltime_minutes=60,
        runtime="udocker",
    )
    assert env_in(worker_argv(description["tasks"][0]["env"])) == env
    assert task_env("head", env, "singularity") == env
