"""The container runtime's command line the worker builds for a task, and what becomes of it.

The worker (``promlet.py``, ``run_singularity``/``run_udocker`` and ``run_with_timeout``) puts
everything into one string and splits it with ``shlex.split``, without quoting anything:

- Singularity: ``singularity exec ... --pwd <workdir> <image file> <cmd>``; the environment
  goes to the process as a mapping, so env values are safe, but the workdir and ``cmd`` are
  part of the split string;
- udocker: ``udocker -q run --env=K=V ... --workdir=<workdir> ... <container> <cmd>``, with
  every env pair of the task (and the ``PROMINENCE_*`` the worker adds) as one ``--env=K=V``
  word, unquoted. A value with a space becomes extra words, and the first one that is not an
  option is what udocker runs as the container: the task fails. A lone quote or a trailing
  backslash makes ``shlex.split`` raise ``ValueError``, which the worker does not catch: it
  crashes, and the job ends without any task result. Quotes that do pair up are removed, so a
  value sent as ``'a b'`` arrives as ``a b``.

The emulator builds the same string and splits it the same way; it then runs the words after
the image (or container) on the host, with the environment udocker would have set.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .sandbox import substitute

#: where the job runs on the worker in the command lines (the emulator's own paths stay out of
#: them, so that they cannot change how the line splits)
WORKER_DIR = "/var/lib/condor/execute/dir_{job_id}"
CONTAINER_HOME = "/home/user"
#: Singularity's exit status when it cannot open the image it was given
SINGULARITY_FAILURE = 255
#: udocker's exit status for any error of its own
UDOCKER_FAILURE = 1
#: options of ``udocker run`` that take the next word as their value
_UDOCKER_VALUE_OPTIONS = ("-v", "-e", "-w", "-u", "-p")
_UDOCKER_OPTIONS = ("--env=", "--user=", "--workdir=", "--hostauth")
#: variables udocker's command line sets for the container that the emulator sets itself
_HOST_SIDE = ("HOME", "USER", "TMP", "TEMP", "TMPDIR", "UDOCKER_DIR")


class WorkerCrash(Exception):
    """The worker's ``shlex.split`` raised: it dies with this traceback on the job's stderr."""

    def __init__(self, error: ValueError, suspects: list[str]) -> None:
        super().__init__(str(error))
        self.error = error
        #: the env variables (or fields) whose values hold a quote or backslash: the likely cause
        self.suspects = suspects

    def traceback(self, child: bool = False) -> str:
        """What the dying worker (or its ``child`` process that runs a sidecar) prints on the
        job's stderr."""
        return ("Process Process-1:\n" if child else "") + (
            "Traceback (most recent call last):\n"
            '  File "promlet.py", in run_tasks\n'
            '  File "promlet.py", in run_with_timeout\n'
            '  File "/usr/lib64/python3.6/shlex.py", in split\n'
            f"ValueError: {self.error}\n"
        )


@dataclass
class Launch:
    """What the container runtime runs for a task (when ``failure`` is empty)."""

    #: the command inside the container ([] runs the image's default command)
    argv: list[str]
    #: the task's variables as the container sees them (before the worker's own)
    env: dict[str, str]
    #: the workdir the runtime was given, in the container
    workdir: str
    #: the runtime's error line when it cannot run (the task then exits with ``exit_code``)
    failure: str = ""
    exit_code: int = 0
    #: for the emulator's note: which env variables' values became extra words
    culprits: list[str] = field(default_factory=list)


def container_workdir(task: dict, job_id: int) -> str:
    """The worker's workdir: ``/home/user`` unless set; relative paths are under it."""
    workdir = task.get("workdir") or CONTAINER_HOME
    if not workdir.startswith("/"):
        workdir = f"{CONTAINER_HOME}/{workdir}"
    return substitute(workdir, job_id)


def _suspects(values: dict[str, str], marks: str) -> list[str]:
    return [key for key, value in values.items() if any(mark in value for mark in marks)]


def _unsplittable(values: dict[str, str]) -> list[str]:
    """The values that cannot be split even on their own, else those with a quote or a
    backslash (quotes of several values can pair up across them)."""
    alone = []
    for key, value in values.items():
        try:
            shlex.split(value)
        except ValueError:
            alone.append(key)
    return alone or _suspects(values, "'\"\\")


def _split(line: str, suspects: dict[str, str]) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise WorkerCrash(exc, _unsplittable(suspects)) from None


def task_env(task: dict) -> dict[str, str]:
    """The task's ``env`` as the worker reads it: every value through ``str()``."""
    return {str(key): str(value) for key, value in (task.get("env") or {}).items()}


def singularity(task: dict, *, job_id: int, image_file: str, cmd: str | None) -> Launch:
    """Singularity's command line for ``task``; raises ``WorkerCrash`` where the worker does."""
    path = WORKER_DIR.format(job_id=job_id)
    workdir = container_workdir(task, job_id)
    command = "run" if cmd is None or task.get("app") else "exec"
    app = f" --app {task['app']} " if task.get("app") else ""
    line = (
        f"singularity {command} {app} --home {path}/userhome:{CONTAINER_HOME}"
        f" --bind {path}/usertmp:/tmp  --pwd {workdir} {image_file} {cmd or ''}"
    )
    words = _split(line, {"workdir": workdir, "cmd": cmd or "", "app": task.get("app") or ""})
    env = task_env(task)
    if image_file in words:
        at = words.index(image_file)
        if at >= 2 and words[at - 2] == "--pwd":
            return Launch(words[at + 1 :], env, words[at - 1])
    # The workdir split into several words: Singularity takes the word after it as the image.
    after_pwd = words.index("--pwd") + 2 if "--pwd" in words else len(words) - 1
    taken = words[min(after_pwd, len(words) - 1)]
    return Launch(
        [],
        env,
        workdir,
        failure=f"FATAL:   could not open image {taken}: no such file or directory",
        exit_code=SINGULARITY_FAILURE,
    )


def udocker(
    task: dict,
    *,
    job_id: int,
    task_num: int,
    container: str,
    cmd: str | None,
    user: str,
    url: str,
    token: str,
    cpus: int,
    memory: int,
    nodes: int = 1,
) -> Launch:
    """udocker's command line for ``task``; raises ``WorkerCrash`` where the worker does."""
    path = WORKER_DIR.format(job_id=job_id)
    workdir = container_workdir(task, job_id)
    env = task_env(task)
    if token and url:
        env["PROMINENCE_TOKEN"] = token
        env["PROMINENCE_URL"] = url
    env["PROMINENCE_TASK_NUM"] = str(task_num)
    env["PROMINENCE_NODE_NUM"] = "0"
    extras = " ".join(f"--env={key}={value}" for key, value in env.items())
    extras += (
        f" --env=PROMINENCE_CPUS={cpus} --env=PROMINENCE_MEMORY={memory}"
        f" --env=PROMINENCE_NODES={nodes} --env=PROMINENCE_NODE_NUM=0"
        f" --env=PROMINENCE_JOB_ID={job_id}"
    )
    line = (
        f"udocker -q run {extras} --env=HOME={CONTAINER_HOME} --env=USER={user} --env=TMP=/tmp"
        f" --env=TEMP=/tmp --env=TMPDIR=/tmp --env=UDOCKER_DIR={path}/.udocker"
        f" --env=PROMINENCE_CONTAINER_RUNTIME=udocker --hostauth --user={user}"
        f" -v {path}/userhome:{CONTAINER_HOME}  --workdir={workdir} -v {path}/usertmp:/tmp"
        f" {container} {cmd or ''}"
    )
    user_values = {**task_env(task), "workdir": workdir, "cmd": cmd or ""}
    words = _split(line, user_values)
    return _udocker_run(words[3:], container, workdir, _suspects(task_env(task), " \t\n"))


def _udocker_run(words: list[str], container: str, workdir: str, spaced: list[str]) -> Launch:
    """What ``udocker run`` makes of its words: options, then the container, then the command.

    Its parser takes the first word that is neither an option nor an option's value as the
    container; everything after it is the command.
    """
    env: dict[str, str] = {}
    unknown: list[str] = []
    given_workdir = workdir
    at = 0
    while at < len(words):
        word = words[at]
        if word in _UDOCKER_VALUE_OPTIONS:
            at += 2
            continue
        if not word.startswith("-"):
            break
        if word.startswith("--env="):
            key, sep, value = word[len("--env=") :].partition("=")
            if sep:
                env[key] = value
        elif word.startswith("--workdir="):
            given_workdir = word[len("--workdir=") :]
        elif not word.startswith(_UDOCKER_OPTIONS):
            unknown.append(word)
        at += 1
    for name in _HOST_SIDE:
        env.pop(name, None)
    if at >= len(words) or words[at] != container:
        return Launch(
            [],
            env,
            given_workdir,
            failure="Error: image or container not available",
            exit_code=UDOCKER_FAILURE,
            culprits=spaced,
        )
    if unknown:
        return Launch(
            [],
            env,
            given_workdir,
            failure="Error: syntax error: unknown option(s) for run",
            exit_code=UDOCKER_FAILURE,
            culprits=spaced,
        )
    return Launch(words[at + 1 :], env, given_workdir)
