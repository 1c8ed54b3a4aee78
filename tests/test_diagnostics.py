"""What a failed job's stderr says went wrong, from output shaped like the real thing."""

from __future__ import annotations

from snakemake_executor_plugin_prominence.job.diagnostics import explain

RULE_FAILED = """\
localrule report:
    input: /data/results/summary.tsv (retrieve from storage)
RuleException:
CalledProcessError in file "/home/user/Snakefile", line 75:
Command 'set -euo pipefail;  sort x | head' returned non-zero exit status 3.
[Fri Nov 27 23:34:59 2026]
Error in rule report:
    message: None
    jobid: 0
"""


def test_the_rules_own_exit_status():
    assert explain(RULE_FAILED) == ["rule report's command exited with status 3"]


def test_rule_failure_without_a_command():
    assert explain("Error in rule merge:\n    message: None\n") == [
        "rule merge failed inside the job"
    ]


def test_image_without_snakemake():
    stderr = "/opt/conda/bin/python: No module named snakemake\n"
    (finding,) = explain(stderr, "busybox:1.36")
    assert finding.startswith("the image busybox:1.36 has Python but no Snakemake")


def test_image_without_python():
    for stderr in ("/bin/sh: 1: python: not found\n", "/bin/sh: python: command not found\n"):
        (finding,) = explain(stderr, "alpine")
        assert finding.startswith("the image alpine has no `python` on its PATH")


def test_missing_storage_plugin():
    for stderr in (
        "ModuleNotFoundError: No module named 'snakemake_storage_plugin_s3'\n",
        "snakemake: error: unrecognized arguments: --storage-s3-retries 5\n",
    ):
        (finding,) = explain(stderr)
        assert finding.startswith("a Snakemake storage plugin is missing in the job")


def test_object_store_credentials():
    stderr = (
        "botocore.exceptions.PartialCredentialsError: Partial credentials found in explicit, "
        "missing: aws_secret_access_key\n"
    )
    (finding,) = explain(stderr)
    assert "SNAKEMAKE_STORAGE_S3_SECRET_KEY" in finding


def test_nothing_recognised_says_nothing():
    assert explain("") == []
    assert explain("Building DAG of jobs...\nSelect jobs to execute...\n") == []


# Shapes seen when running Snakemake's own test workflows through the plugin (issue 14 notes).
MISSING_OUTPUT = """\
Waiting at most 5 seconds for missing files:
/data/store/other.txt (in storage) (missing locally)
MissingOutputException in rule other in file "/jobs/6/userhome/Snakefile", line 51:
Job 0 completed successfully, but some output files are missing. Missing files after 5 seconds. \
This might be due to filesystem latency. If that is the case, consider to increase the wait time \
with --latency-wait:
/data/store/other.txt (in storage) (missing locally, parent dir contents: )
Shutting down, this might take some time.
"""

UNDEPLOYED_FILE = """\
RuleException:
FileNotFoundError in file "/jobs/21/userhome/Snakefile", line 6:
[Errno 2] No such file or directory: 'wrapper.py'
[Sat Nov 28 09:55:56 2026]
Error in rule 1:
    message: None
"""


def test_an_output_the_command_did_not_write_is_named_with_the_likely_cause():
    (finding,) = explain(MISSING_OUTPUT)
    assert finding.startswith("rule other ran but did not write its output /data/store/other.txt")
    assert "where {output} points" in finding


def test_a_workflow_file_that_was_not_deployed_is_named_with_the_fix():
    (finding,) = explain(UNDEPLOYED_FILE)
    assert finding.startswith("the rule's code could not open 'wrapper.py' in the job")
    assert "`git add` it, or make it an input" in finding


def test_an_absolute_missing_path_is_not_blamed_on_deployment():
    stderr = UNDEPLOYED_FILE.replace("'wrapper.py'", "'/reference/genome.fa'")
    assert explain(stderr) == ["rule 1 failed inside the job"]


def test_a_local_wrapper_that_was_not_deployed_is_named():
    stderr = """\
RuleException:
WorkflowError in file "/jobs/46/userhome/Snakefile", line 16:
Unable to locate wrapper script in wrapper git repository (https://github.com/snakemake/\
snakemake-wrappers/raw/file:my_wrapper). This can be a network issue or a mistake.
wrapper.py: FileNotFoundError: [Errno 2] No such file or directory: 'my_wrapper/wrapper.py'
wrapper.R: FileNotFoundError: [Errno 2] No such file or directory: 'my_wrapper/wrapper.R'
Error in rule test:
"""
    (finding,) = explain(stderr)
    assert finding.startswith("the rule's code could not open 'my_wrapper/wrapper.py' in the job")


def test_a_module_of_the_workflow_that_was_not_deployed_is_named():
    stderr = """\
ModuleNotFoundError in file "/jobs/44/userhome/Snakefile", line 1:
No module named 'bar'
  File "/jobs/44/userhome/Snakefile", line 1, in <module>
"""
    (finding,) = explain(stderr)
    assert finding.startswith("the workflow imports 'bar', which the job does not have")
    assert "`git add bar.py`" in finding


def test_a_missing_file_outside_a_rule_failure_is_not_blamed_on_deployment():
    stderr = "cat: [Errno 2] No such file or directory: 'x.txt'\nError in rule r:\n"
    assert explain(stderr) == ["rule r failed inside the job"]
