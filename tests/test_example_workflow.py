"""The example workflow through `snakemake --executor prominence` against the emulator, run
as subprocesses exactly as the README does, compared file by file with a local run."""

from __future__ import annotations

import pytest

from tests.processes import (
    EXAMPLE_RESULTS,
    copy_example,
    emulator_process,
    files_under,
    run_snakemake,
)

pytestmark = pytest.mark.e2e


def test_example_workflow_matches_a_local_run(tmp_path):
    local = copy_example(tmp_path / "local")
    result = run_snakemake(["--cores", "2"], cwd=local)
    assert result.returncode == 0, result.stderr[-3000:]

    remote = copy_example(tmp_path / "remote")
    storage = tmp_path / "storage"
    token_file = tmp_path / "token"
    # As run-with-emulator.sh does: the emulator writes a token file at start.
    with emulator_process(
        tmp_path / "emulator-state", "--write-token-file", str(token_file), "--token-user", "demo"
    ) as url:
        result = run_snakemake(
            ["--profile", "profiles/emulator", "--default-storage-prefix", str(storage),
             "--prominence-token-file", str(token_file)],
            cwd=remote,
            env={"PROMINENCE_URL": url, "PROMINENCE_TOKEN": "", "SNAKEMAKE_PROMINENCE_TOKEN": ""},
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]

    expected = files_under(local / "results")
    assert sorted(expected) == EXAMPLE_RESULTS
    assert files_under(storage / "results") == expected
    # Every rule's log came back too.
    assert sorted(files_under(storage / "logs")) == sorted(files_under(local / "logs"))
    assert "k-mer report" in (storage / "results" / "report.txt").read_text()
    # The run report of the same run (see tests/test_report_run.py for its figures).
    [report_dir] = (remote / ".snakemake" / "prominence_reports").iterdir()
    header, *rows = (report_dir / "jobs.tsv").read_text().splitlines()
    status = header.split("\t").index("status")
    assert rows and all(row.split("\t")[status] == "completed" for row in rows)
    assert (report_dir / "jobs.jsonl").read_text().count("\n") == len(rows)
    assert (report_dir / "rules.tsv").exists()
    assert f"PROMINENCE run report: {len(rows)} job(s), {len(rows)} ok, 0 failed" in result.stderr
