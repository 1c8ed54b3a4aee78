"""The fingerprint of a job's work: what a restarted run compares before it adopts a killed
run's PROMINENCE job instead of submitting the same job again.

Two jobs have the same fingerprint when they would compute the same outputs the same way. It
is the SHA-256 of a canonical JSON document (sorted keys, no spaces) whose ingredients are:

- ``v``: the version of this recipe (``VERSION``); a new recipe never matches an old one;
- per rule (a group job has one per member, sorted by their own digests):
  - ``rule``: the rule's name;
  - ``wildcards``: the job's wildcards, sorted;
  - ``input``, ``output``, ``log``: the files, sorted, each as its storage path (the storage
    provider's query, e.g. ``s3://bucket/prefix/x.txt``), pipes and services as ``<pipe>`` and
    ``<service>``; an input's path changes with the upstream job that writes it;
  - ``params``: every param, named and positional, as canonical JSON (an object whose
    ``repr`` holds a memory address counts by its type only);
  - ``code``: a ``shell:`` rule's command *template* (``rule.shellcmd``, before ``{input}``
    etc. are filled in), a ``run:`` rule's source (or its compiled code on Snakemake releases
    that keep no source), a ``script:``/``notebook:`` rule's path and the SHA-256 of the file
    when it can be read, a ``wrapper:`` rule's wrapper (its version is part of it), a
    ``cwl:`` rule's path, and the template engine;
  - ``software``: the rule's container (``container:``), conda environment (its spec, and
    the SHA-256 of an environment file) and environment modules;
- for the whole job, from the PROMINENCE description that would be posted:
  - ``image`` and ``runtime`` (and an MPI task's ``type`` and ``procsPerNode``), as submitted;
  - ``resources``: the description's ``resources`` (cpus, memory, disk, nodes, walltime).

Left out, because they differ between two runs of the same work: the run id, the submission
key, the Snakemake job id (it depends on the targets), the attempt, the remote command (it
names the run's source archive, whose hash changes when any file or mtime of the workflow
changes, and orders its rerun triggers differently per run), the task environment (presigned
URLs, renewed tokens, credentials), the job's name and labels, and the placement and retry
policies (where and how often PROMINENCE may run a job does not change what it computes).

Pure, except that it reads Snakemake's job objects (and a ``script:`` file to hash it). It
never raises for an odd job: :func:`fingerprint` returns None, and the job is then only
submitted, never adopted.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_prominence.job.description import label_value, rule_label
from snakemake_executor_plugin_prominence.job.identity import job_identity
from snakemake_executor_plugin_prominence.job.labels import (
    GROUP_LABEL,
    JOB_ID_LABEL,
    RULE_LABEL,
    WILDCARDS_LABEL,
    WILDCARDS_TOO_LONG,
    encode_wildcards,
)

__all__ = ["VERSION", "fingerprint", "identity_of_job", "identity_of_labels", "work_of"]

#: Bump when an ingredient changes: a fingerprint of another version never matches.
VERSION = 1
#: The task keys of the description that belong to the work (not cmd and env: run-specific).
TASK_KEYS = ("image", "runtime", "type", "procsPerNode")
#: A ``repr`` that names a memory address differs per process: such a value counts by its type.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: A script (or conda environment file) larger than this counts by its path only.
MAX_HASHED_SCRIPT_BYTES = 64 * 1024 * 1024


def fingerprint(job: Any, description: Mapping[str, Any]) -> str | None:
    """The hex SHA-256 of the job's work (see the module's doc), or None when some ingredient
    cannot be read (the job is then never adopted)."""
    try:
        document: dict[str, Any] = {"v": VERSION, **_submitted(description)}
        if job.is_group():
            document["members"] = sorted(_digest(work_of(member)) for member in job.jobs)
        else:
            document["work"] = work_of(job)
        return _digest(document)
    except Exception:  # an unexpected shape of Snakemake's objects: never block the job
        return None


def work_of(job: Any) -> dict[str, Any]:
    """The ingredients of one rule job's work (no PROMINENCE resources or image)."""
    rule = job.rule
    return {
        "rule": str(rule.name),
        "wildcards": {str(k): str(v) for k, v in sorted(dict(job.wildcards_dict).items())},
        "input": _paths(job.input),
        "output": _paths(job.output),
        "log": _paths(job.log),
        "params": _params(job.params),
        "code": _code(rule),
        "software": _software(job),
    }


def identity_of_job(job: Any) -> str | None:
    """Which Snakemake job this is, across runs, in the words of its labels: a rule job is its
    rule and wildcards, a group job its group job id (Snakemake derives it from the rule and
    wildcards of the group's last job, so it is stable; a pipe group's group id is not)."""
    if job.is_group():
        return f"group:{label_value(job.jobid)}"
    wildcards = job_identity(job)["wildcards"]  # as job_labels writes them
    encoded = encode_wildcards(",".join(f"{k}={v}" for k, v in wildcards.items()))
    if encoded == WILDCARDS_TOO_LONG:
        return None
    return f"rule:{label_value(rule_label(job))}:{encoded if wildcards else ''}"


def identity_of_labels(labels: Mapping[str, Any]) -> str | None:
    """:func:`identity_of_job` of the job that carries these labels (None: not known)."""
    rule = labels.get(RULE_LABEL)
    if not isinstance(rule, str) or not rule:
        return None
    if labels.get(GROUP_LABEL):
        jobid = labels.get(JOB_ID_LABEL)
        return f"group:{jobid}" if isinstance(jobid, str) and jobid else None
    encoded = labels.get(WILDCARDS_LABEL, "")
    if encoded == WILDCARDS_TOO_LONG:
        return None
    return f"rule:{rule}:{encoded}"


# --- ingredients ------------------------------------------------------------------------


def _digest(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _submitted(description: Mapping[str, Any]) -> dict[str, Any]:
    task = description["tasks"][0]
    return {
        "task": {key: task[key] for key in TASK_KEYS if key in task},
        "resources": dict(description["resources"]),
    }


def _paths(files: Any) -> list[str]:
    """Each file as Snakemake's own rerun triggers record an input: its storage path."""
    return sorted(_path(f) for f in files)


def _path(f: Any) -> str:
    flags = getattr(f, "flags", None) or {}
    if getattr(f, "is_storage", False):
        return str(f.storage_object.query)
    if "pipe" in flags:
        return "<pipe>"
    if "service" in flags:
        return "<service>"
    entry = flags.get("sourcecache_entry")
    if entry is not None:  # a file of a remote source: its true location, not the cache's
        return str(getattr(entry, "get_path_or_uri", lambda: entry)())
    return str(f)


def _params(params: Any) -> dict[str, Any]:
    named = {str(name): canonical(value) for name, value in params.items()}
    return {"named": named, "positional": [canonical(value) for value in params]}


def canonical(value: Any) -> Any:
    """A JSON value that is the same in every run for equal values (sets and dicts sorted,
    floats written exactly; an object whose ``repr`` holds an address: its type only)."""
    if isinstance(value, str):
        return str(value)  # a plain str of Snakemake's AnnotatedString
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        pairs = ([canonical(k), canonical(v)] for k, v in value.items())
        return {"<dict>": sorted(json.dumps(pair, sort_keys=True) for pair in pairs)}
    if isinstance(value, list | tuple | range):
        return [canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return {"<set>": sorted(json.dumps(canonical(item), sort_keys=True) for item in value)}
    if isinstance(value, bytes | bytearray):
        return {"<bytes>": bytes(value).hex()}
    if isinstance(value, Path):
        return str(value)
    text = repr(value)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    return {"<object>": kind} if _ADDRESS.search(text) else {"<repr>": text, "<type>": kind}


def _code(rule: Any) -> dict[str, Any]:
    code: dict[str, Any] = {}
    if getattr(rule, "shellcmd", None) is not None:
        code["shell"] = str(rule.shellcmd)
    source = getattr(rule, "run_func_src", None)
    if source is not None:
        code["run"] = str(source)
    elif getattr(rule, "run_func", None) is not None and not code and not _scripted(rule):
        code["run_code"] = _compiled(rule.run_func.__code__)
    for kind in ("script", "notebook"):
        path = getattr(rule, kind, None)
        if path is not None:
            code[kind] = {"path": str(path), "sha256": _file_sha256(rule, str(path))}
    for kind in ("wrapper", "cwl", "template_engine"):
        value = getattr(rule, kind, None)
        if value is not None:
            code[kind] = str(value)
    return code


def _scripted(rule: Any) -> bool:
    """Whether Snakemake generated the rule's run function (for a script, notebook, wrapper,
    CWL tool or template): then the file or name above is the code, not that function."""
    kinds = ("script", "notebook", "wrapper", "cwl", "template_engine")
    return any(getattr(rule, kind, None) is not None for kind in kinds)


def _compiled(code: Any) -> str:
    """A digest of a compiled function: its bytecode, names and constants, nested functions
    included (the same source gives the same digest under the same Python)."""
    digest = hashlib.sha256(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            digest.update(_compiled(const).encode())
        else:
            digest.update(repr(const).encode())
    return digest.hexdigest()


def _file_sha256(rule: Any, path: str) -> str | None:
    """The SHA-256 of a script or notebook, found as Snakemake finds it (relative to the
    Snakefile that defines the rule); None when it cannot be read here (a URL, a path with
    wildcards): then its path alone stands for it."""
    if "{" in path or "://" in path:
        return None
    candidate = Path(path)
    if not candidate.is_absolute():
        # the directory of the Snakefile that defines the rule (a local source file's path)
        base = getattr(getattr(rule, "basedir", None), "path", None)
        if base is None or "://" in str(base):
            return None
        candidate = Path(str(base)) / path
    try:
        if candidate.stat().st_size > MAX_HASHED_SCRIPT_BYTES:
            return None
        return hashlib.sha256(candidate.read_bytes()).hexdigest()
    except OSError:
        return None


def _software(job: Any) -> dict[str, Any]:
    software: dict[str, Any] = {}
    image = getattr(job, "container_img_url", None)
    if image:
        software["container"] = str(image)
    spec = getattr(job, "conda_env_spec", None)
    if spec:
        software["conda"] = str(spec)
        if str(spec).endswith((".yaml", ".yml")):  # an environment file, not a named env
            software["conda_sha256"] = _file_sha256(job.rule, str(spec))
    modules = getattr(job, "env_modules", None)
    if modules:
        software["env_modules"] = [str(module) for module in modules]
    return software
