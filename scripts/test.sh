#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs ruff and pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k jobspec`).
#
# Tests run in PROMINENCE_TEST_WORKERS parallel processes (pytest-xdist, default 6: much of an
# end-to-end test is spent waiting for jobs and status checks, so more workers than this
# machine's 2 cores keep both busy; 6 finished 10 % sooner than 4 on a fresh clone here, the
# cores are then nearly always busy); each test file runs whole in one worker, so a module's
# shared emulator or S3 server is started once. PROMINENCE_TEST_WORKERS=0 runs them in this
# process, one after the other.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" test
cd "$ROOT"
ruff check .
ruff format --check .
python -m pytest -n "${PROMINENCE_TEST_WORKERS:-6}" --dist loadfile "$@"
