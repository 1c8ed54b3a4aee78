#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs ruff and pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k jobspec`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
ruff check .
ruff format --check .
python -m pytest "$@"
