#!/usr/bin/env bash
# Flakiness check, by hand: run the test suite N times (default 3) exactly as
# `bash scripts/test.sh` does, and list every test that failed at least once, with how often,
# and each run's wall time. Extra arguments go to pytest (e.g. `-m e2e`, `-k token`).
#   bash scripts/repeat-tests.sh 5
# Exit status: 0 when every run passed, 1 otherwise. Each run's output is kept in
# test-artifacts/repeat/run-<i>.log.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
shift || true
out="$ROOT/test-artifacts/repeat"
mkdir -p "$out"
rm -f "$out"/run-*.log
for i in $(seq "$runs"); do
    started=$(date +%s)
    bash "$ROOT/scripts/test.sh" -q -rf -p no:cacheprovider "$@" >"$out/run-$i.log" 2>&1
    status=$?
    echo "run $i: exit $status in $(($(date +%s) - started)) s ($(tail -n 1 "$out/run-$i.log"))"
done
python3 - "$out" "$runs" <<'PY'
import collections, pathlib, re, sys
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
failed = collections.Counter()
for log in sorted(out.glob("run-*.log")):
    tests = set(re.findall(r"^(?:FAILED|ERROR) (\S+)", log.read_text(), re.M))
    failed.update(tests)
if not failed:
    print(f"no test failed in {runs} run(s)")
    sys.exit(0)
print(f"tests that failed at least once in {runs} run(s):")
for test, count in failed.most_common():
    print(f"  {count}/{runs}  {test}")
sys.exit(1)
PY
