"""Which resources a job's rules set themselves, as opposed to inheriting Snakemake's defaults.

The disk a job asks for gets a floor (images are pulled into the job's own disk), but a value
the user wrote for the rule is taken as is. A job's evaluated resources cannot tell the two
apart, and Snakemake's executor interface says nothing about where a value came from, so this
module reads it off the rule, the way Snakemake builds it in 9.3.5 ... 9.x
(``Workflow.rule``): a rule starts from a copy of the parsed default resources, then its own
``resources:`` and ``--set-resources`` overwrite entries. An entry still equal to the default
entry was inherited (expressions such as ``max(2*input.size_mb, 1000)`` are the very same
function object in the copy; a rule that writes the same plain number as the default cannot be
told apart, and gets the floor). Anything unexpected counts as inherited: the floor is the
safe side.

No I/O; reads Snakemake's objects only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

__all__ = ["DISK_RESOURCES", "rule_sets", "rules_set_disk"]

#: A rule may write its disk in any of these; Snakemake derives the others from it.
DISK_RESOURCES = ("disk", "disk_mb", "disk_mib")


def rules_set_disk(job: JobExecutorInterface) -> bool:
    """Whether the job's disk is the user's own: for a group job, every rule of it set one
    (a member that inherits the default would get too little room for the image)."""
    members = list(job.jobs) if job.is_group() else [job]
    return bool(members) and all(rule_sets(member, DISK_RESOURCES) for member in members)


def rule_sets(job: Any, names: Iterable[str]) -> bool:
    """Whether the rule of a single job sets any of ``names`` in its ``resources:`` or
    through ``--set-resources``."""
    try:
        rule = job.rule
        settings = rule.workflow.resource_settings
        own = rule.resources
        overwritten = settings.overwrite_resources.get(rule.name) or {}
        defaults = _parsed_defaults(settings)
        for name in names:
            if name in overwritten:
                return True
            if name in own and (name not in defaults or own[name] != defaults[name]):
                return True
    except (AttributeError, KeyError, TypeError):
        return False
    return False


def _parsed_defaults(settings: Any) -> Any:
    """The default resources every rule was copied from when it was defined.

    Releases with the reworked resources (9.16 has them, 9.9 not yet) copy
    ``ResourceSettings._parsed_default_resources`` (a cached ``Resources``); earlier ones copy
    ``default_resources.parsed`` (a dict), ``default_resources`` being None when the command
    line gave none (Snakemake fills in its full defaults only later, to run the jobs).
    """
    if hasattr(type(settings), "_parsed_default_resources"):
        return settings._parsed_default_resources
    defaults = settings.default_resources
    return {} if defaults is None else defaults.parsed
