#!/usr/bin/env bash
# The oldest end of the supported Snakemake range: a separate virtual environment
# (.venv-oldest) with the lowest Snakemake that pyproject.toml accepts, and the tests that
# exercise Snakemake itself end to end (the example workflow, Snakemake's conformance harness
# with fs and with S3, the lean-jobs run with no package index, the resource mapping, and
# adoption, which reads Snakemake's job objects and its records of a killed run).
# scripts/test.sh runs the whole suite with the newest Snakemake; CI (.ci/run) runs both.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PROMINENCE_OLDEST_VENV:-$ROOT/.venv-oldest}"
cd "$ROOT"

oldest="$(python3 - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
(spec,) = [d for d in deps if re.match(r"snakemake\s*[<>=]", d)]
print(re.search(r">=\s*([0-9][0-9.]*)", spec).group(1))
PY
)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating $VENV for Snakemake $oldest ..." >&2
    python3 -m venv "$VENV" 2>/dev/null || { python3 -m pip install --quiet --user virtualenv &&
        python3 -m virtualenv --quiet "$VENV"; }
fi
stamp="$VENV/.prominence-install-stamp"
wanted="$oldest $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing the plugin with Snakemake $oldest and the test tools ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    # no bytecode at install, as in bootstrap.sh: compiled when first imported
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
        -e "$ROOT[test]" "snakemake==$oldest"
    echo "$wanted" > "$stamp"
fi
installed="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("snakemake"))')"
if [ "$installed" != "$oldest" ]; then
    echo "expected Snakemake $oldest in $VENV, found $installed" >&2
    exit 1
fi

echo "Focused tests with Snakemake $installed (the oldest supported) ..." >&2
PATH="$VENV/bin:$PATH" "$VENV/bin/python" -m pytest -p no:cacheprovider \
    -n "${PROMINENCE_TEST_WORKERS:-4}" --dist loadfile \
    tests/test_example_workflow.py tests/test_conformance.py tests/test_s3_storage.py \
    tests/test_lean_jobs.py tests/test_bad_resources.py \
    tests/test_fingerprint.py tests/test_adoption_run.py "$@"
