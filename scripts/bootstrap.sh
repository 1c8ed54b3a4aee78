# Sourced by the README's commands: makes sure .venv holds this package with what the command
# needs, and the system packages it needs, no more. Nothing is assumed but python3 with pip.
#
#   source scripts/bootstrap.sh try    the example on the emulator: the package with its emulator
#                                      and report extras, the fs storage plugin, rsync
#   source scripts/bootstrap.sh test   the test suite: the test extra (all of the above and the
#                                      test tools), rsync, and Debian's chromium + chromium-driver
#                                      (the HTML report's browser test)
#
# Set PROMINENCE_VENV to use another directory than .venv.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PROMINENCE_VENV:-$ROOT/.venv}"
PROFILE="${1:-test}"

case "$PROFILE" in
    try) requirements=("-e" "$ROOT[emulator,report]" "snakemake-storage-plugin-fs>=1.1,<2") ;;
    test) requirements=("-e" "$ROOT[test]") ;;
    *) echo "bootstrap.sh: unknown profile '$PROFILE' (try or test)" >&2; return 2 ;;
esac

if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating a virtual environment in $VENV ..." >&2
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian without python3-venv: fall back to virtualenv from PyPI.
        python3 -m pip install --quiet --user virtualenv
        python3 -m virtualenv --quiet "$VENV"
    fi
fi

# Reinstall only when the project's dependencies changed since the last install of this profile
# (the test profile holds everything the try profile needs).
wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
installed_for() { [ "$(cat "$VENV/.prominence-install-stamp-$1" 2>/dev/null)" = "$wanted" ]; }
if ! installed_for "$PROFILE" && ! { [ "$PROFILE" = try ] && installed_for test; }; then
    echo "Installing snakemake-executor-plugin-prominence ($PROFILE) ..." >&2
    # The stamp only after a complete install, also when sourced without `set -e`. No bytecode
    # compilation at install (--no-compile): pip compiles every module of every package, one
    # after the other, which was 30 of the install's 50 s; Python compiles (and caches) the few
    # modules a run imports when it first imports them.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
            "${requirements[@]}" &&
        echo "$wanted" > "$VENV/.prominence-install-stamp-$PROFILE" || return 1
fi

# apt-get install, as root or through sudo; says what to do when neither is possible.
install_debian_packages() {
    local why="$1"
    shift
    echo "Installing $* ($why) ..." >&2
    local run=()
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "$* missing and cannot be installed without root; install them and retry." >&2
            return 1
        fi
        run=(sudo)
    fi
    "${run[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1 ||
        { "${run[@]}" apt-get update -qq && "${run[@]}" apt-get install -y -qq "$@" >/dev/null; }
}

if ! command -v rsync >/dev/null 2>&1; then
    install_debian_packages "Snakemake's fs storage plugin needs it" rsync || return 1
fi
if [ "$PROFILE" = test ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
    install_debian_packages "the HTML report test's headless browser" chromium chromium-driver ||
        return 1
fi

export PATH="$VENV/bin:$PATH"
