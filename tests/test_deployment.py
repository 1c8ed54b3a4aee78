"""The pieces of the default ``ship`` path, on the distributions installed here: what is
shipped for a plugin, what cannot travel, the zip, and the job-side fetch run by a Python that
sees nothing but its standard library."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import distribution

from snakemake_executor_plugin_prominence.job import deployment


def test_unused_plugin_settings_are_dropped_exactly():
    command = "a --storage-s3-retries 5 b --storage-s3-retries 50 && c --storage-s3-retries 5"
    assert deployment.without_args(command, ["--storage-s3-retries 5"]) == (
        "a  b --storage-s3-retries 50 && c "
    )


def test_s3_plugin_ships_with_boto3_but_without_what_snakemake_brings():
    shipped = deployment.to_ship(["snakemake-storage-plugin-s3"])
    assert {"snakemake-storage-plugin-s3", "boto3", "botocore", "s3transfer"} <= set(shipped)
    for provided in ("snakemake", "packaging", "requests", "urllib3"):
        assert provided not in shipped, provided
    assert "snakemake-interface-storage-plugins" not in shipped


def test_fs_plugin_needs_little():
    shipped = deployment.to_ship(["snakemake-storage-plugin-fs"])
    assert "snakemake-storage-plugin-fs" in shipped and "boto3" not in shipped


def test_platform_specific_wheels_do_not_travel():
    assert deployment.can_travel(distribution("boto3"))
    assert not deployment.can_travel(distribution("psutil"))  # compiled extension
    assert deployment.pin(distribution("boto3")).startswith("boto3==")


def _run_fetch(tmp_path, sha256: str, url: str) -> subprocess.CompletedProcess:
    """The job's fetch command, with a ``python`` that has no site-packages at all."""
    shims = tmp_path / "shims"
    shims.mkdir()
    python = shims / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    python.chmod(0o755)
    job = tmp_path / "job"
    job.mkdir()
    return subprocess.run(
        ["/bin/sh", "-c", deployment.fetch_command(sha256)],
        cwd=job,
        env={"PATH": f"{shims}:/usr/bin:/bin", deployment.URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_job_unpacks_the_zip_with_the_standard_library(tmp_path):
    archive = tmp_path / "packages.zip"
    sha256 = deployment.write_zip([distribution("snakemake-storage-plugin-fs")], archive)
    result = _run_fetch(tmp_path, sha256, archive.as_uri())
    assert result.returncode == 0, result.stderr
    target = tmp_path / "job" / deployment.PIP_TARGET
    assert (target / "snakemake_storage_plugin_fs" / "__init__.py").is_file()
    assert list(target.glob("snakemake_storage_plugin_fs-*.dist-info/METADATA"))
    assert not list(target.rglob("*.pyc"))


def test_a_damaged_zip_is_refused(tmp_path):
    archive = tmp_path / "packages.zip"
    deployment.write_zip([distribution("snakemake-storage-plugin-fs")], archive)
    result = _run_fetch(tmp_path, "0" * 64, archive.as_uri())
    assert result.returncode != 0
    assert "damaged (sha256 mismatch)" in result.stderr
    assert not os.path.exists(tmp_path / "job" / deployment.PIP_TARGET)
