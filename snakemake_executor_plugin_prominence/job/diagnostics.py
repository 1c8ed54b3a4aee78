"""Read a failed job's output the way a person would, and say what went wrong.

PROMINENCE records the exit code of the remote Snakemake, which is 1 whatever the rule's own
command returned; the rule's status and the common infrastructure problems (an image without
Python or Snakemake, a missing storage plugin) are only visible in the job's stderr.
"""

from __future__ import annotations

import re

_EXIT_STATUS = re.compile(r"returned non-zero exit status (\d+)")
_ERROR_IN_RULE = re.compile(r"^Error in rule (\S+?):?\s*$", re.MULTILINE)
_NO_PYTHON = re.compile(
    r"(?:\b(?:python3?): (?:command )?not found|exec: \"?python3?\"?: executable file not found"
    r"|No such file or directory: '?python3?'?)"
)
_NO_SNAKEMAKE = re.compile(r"No module named '?snakemake'?(?:\s|$)")
_NO_STORAGE_PLUGIN = re.compile(
    r"(?:No module named '?(snakemake_storage_plugin_\w+)'?"
    r"|[Ss]torage provider (\S+) is not (?:installed|available)"
    r"|unrecognized arguments: (--storage-\S+))"
)
_S3_CREDENTIALS = re.compile(
    r"(?:PartialCredentialsError|NoCredentialsError|Unable to locate credentials"
    r"|InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied)"
)
_MISSING_OUTPUT = re.compile(r"^MissingOutputException in rule (\S+?)\b", re.MULTILINE)
_MISSING_OUTPUT_FILE = re.compile(r"^(\S.*?) (?:\(in storage\) )?\(missing locally", re.MULTILINE)
#: the start of a rule's failure inside the job (its Python code or Snakemake's handling of it)
_RULE_EXCEPTION = re.compile(r"^RuleException:$", re.MULTILINE)
#: a relative path the rule's code (run:, a params function, a local wrapper...) did not find
_MISSING_RELATIVE_FILE = re.compile(r"\[Errno 2\] No such file or directory: '([^'/][^']*)'")
#: the workflow's own Python code importing a module the job does not have
_MISSING_MODULE = re.compile(
    r"^ModuleNotFoundError in file \"[^\"]*\", line \d+:\nNo module named '([^']+)'",
    re.MULTILINE,
)
_TOKEN_REJECTED = re.compile(r"Authentication failure|access token has expired", re.IGNORECASE)


def explain(stderr: str, image: str | None = None) -> list[str]:
    """Plain-language findings from a failed job's stderr, most specific first."""
    findings: list[str] = []
    image_text = f"the image {image}" if image else "the job's image"
    if _NO_PYTHON.search(stderr):
        findings.append(
            f"{image_text} has no `python` on its PATH; PROMINENCE job images must contain "
            "Python, Snakemake and the storage plugin in use (set prominence_image or "
            "--prominence-container-image)"
        )
    elif _NO_SNAKEMAKE.search(stderr):
        findings.append(
            f"{image_text} has Python but no Snakemake; PROMINENCE job images must contain "
            "Snakemake and the storage plugin in use (set prominence_image or "
            "--prominence-container-image)"
        )
    plugin = _NO_STORAGE_PLUGIN.search(stderr)
    if plugin:
        name = next(group for group in plugin.groups() if group)
        findings.append(
            f"a Snakemake storage plugin is missing in the job ({name}); install it in the "
            "image or use --prominence-storage-plugins ship (the default) or install"
        )
    findings.extend(_rule_findings(stderr))
    if _S3_CREDENTIALS.search(stderr):
        findings.append(
            "the object store refused the job's credentials or got none: check "
            "SNAKEMAKE_STORAGE_S3_ACCESS_KEY / SNAKEMAKE_STORAGE_S3_SECRET_KEY (or the "
            "storage settings) where you start Snakemake; they reach the job in its environment"
        )
    if _TOKEN_REJECTED.search(stderr):
        findings.append("PROMINENCE rejected a token (expired or invalid)")
    return findings


def _rule_findings(stderr: str) -> list[str]:
    """What the rule itself did wrong inside the job, the most specific cause only."""
    missing = _MISSING_OUTPUT.search(stderr)
    if missing:
        path = _MISSING_OUTPUT_FILE.search(stderr, missing.end())
        what = f"its output {path.group(1)}" if path else "all its outputs"
        return [
            f"rule {missing.group(1)} ran but did not write {what}: the command must write "
            "where {output} points (with a storage provider, a local copy that Snakemake "
            "uploads), not to a path it names itself"
        ]
    module = _MISSING_MODULE.search(stderr)
    if module and not module.group(1).startswith("snakemake"):
        name = module.group(1)
        return [
            f"the workflow imports {name!r}, which the job does not have: a module of your own "
            f"next to the Snakefile reaches the job only if git tracks it (`git add "
            f"{name.split('.')[0]}.py`); a package must be in the job's image"
        ]
    failure = _RULE_EXCEPTION.search(stderr)
    unreadable = failure and _MISSING_RELATIVE_FILE.search(stderr, failure.end())
    if unreadable:
        return [
            f"the rule's code could not open {unreadable.group(1)!r} in the job: files of the "
            "workflow directory reach a job only if Snakemake deploys them (Snakefile, "
            "includes, config files, scripts and the files next to them, conda files, files "
            "tracked by git); `git add` it, or make it an input of the rule"
        ]
    rule = _ERROR_IN_RULE.search(stderr)
    status = _EXIT_STATUS.search(stderr)
    if status:
        where = f"rule {rule.group(1)}'s" if rule else "the rule's"
        return [f"{where} command exited with status {status.group(1)}"]
    if rule:
        return [f"rule {rule.group(1)} failed inside the job"]
    return []
