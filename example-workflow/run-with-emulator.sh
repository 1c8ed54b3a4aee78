#!/usr/bin/env bash
# Run the example workflow through `snakemake --executor prominence` against the local
# PROMINENCE emulator. Installs what it needs (see scripts/bootstrap.sh) on first use.
# Extra arguments go to snakemake (e.g. `--forceall`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/bootstrap.sh" try
cd "$ROOT/example-workflow"

state="$(mktemp -d)"
# --write-token-file: the emulator writes a token file, as `prominence login` does, before it
# says where it listens. It accepts only JWT access tokens with an expiry, as PROMINENCE does;
# this one lives a day, so the run does not warn that it expires within the hour.
prominence-emulator --port 0 --state-dir "$state/emulator" --write-token-file "$state/token" \
    --token-user demo --token-lifetime 86400 >"$state/url" 2>"$state/emulator.log" &
emulator_pid=$!
trap 'kill "$emulator_pid" 2>/dev/null; wait "$emulator_pid" 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do
    grep -q "listening on" "$state/url" 2>/dev/null && break
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$state/emulator.log" >&2; exit 1; }
    sleep 0.1
done
url="$(sed -n 's/^PROMINENCE emulator listening on //p' "$state/url")"
[ -n "$url" ] || { echo "The emulator did not start:" >&2; cat "$state/emulator.log" >&2; exit 1; }
echo "PROMINENCE emulator running at $url" >&2

# The emulator's token (it never leaves this machine), from its token file; a token of yours
# in the environment would go first, so it is blanked for this run.
PROMINENCE_URL="$url" PROMINENCE_TOKEN="" SNAKEMAKE_PROMINENCE_TOKEN="" \
    snakemake --profile profiles/emulator --default-storage-prefix "$PWD/.storage" \
    --prominence-token-file "$state/token" "$@"

echo
echo "Done. Results (kept in the storage prefix, as on a real PROMINENCE run):"
find "$PWD/.storage/results" -type f | sort
echo "Report:"
cat "$PWD/.storage/results/report.txt"
