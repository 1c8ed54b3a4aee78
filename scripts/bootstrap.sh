# Sourced by the README's commands: makes sure .venv holds this package with its emulator
# and test extras, and that rsync (needed by Snakemake's `fs` storage plugin) and Debian's
# chromium + chromium-driver (the HTML report's browser test) are installed.
# Nothing is assumed but python3 with pip. Set PROMINENCE_VENV to use another directory.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PROMINENCE_VENV:-$ROOT/.venv}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "Creating a virtual environment in $VENV ..." >&2
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian without python3-venv: fall back to virtualenv from PyPI.
        python3 -m pip install --quiet --user virtualenv
        python3 -m virtualenv --quiet "$VENV"
    fi
fi

# Reinstall only when the project's dependencies changed since the last install.
stamp="$VENV/.prominence-install-stamp"
wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "Installing snakemake-executor-plugin-prominence and its test tools ..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test]"
    echo "$wanted" > "$stamp"
fi

if ! command -v rsync >/dev/null 2>&1; then
    echo "Installing rsync (Snakemake's fs storage plugin needs it) ..." >&2
    if [ "$(id -u)" = 0 ]; then
        (apt-get install -y -qq rsync >/dev/null 2>&1 ||
            (apt-get update -qq && apt-get install -y -qq rsync >/dev/null))
    elif command -v sudo >/dev/null 2>&1; then
        (sudo apt-get install -y -qq rsync >/dev/null 2>&1 ||
            (sudo apt-get update -qq && sudo apt-get install -y -qq rsync >/dev/null))
    else
        echo "rsync is missing and cannot be installed without root; install it and retry." >&2
        exit 1
    fi
fi

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "Installing chromium and chromium-driver (the HTML report test's headless browser) ..." >&2
    if [ "$(id -u)" = 0 ]; then
        (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
            (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null))
    elif command -v sudo >/dev/null 2>&1; then
        (sudo apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
            (sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null))
    else
        echo "chromium/chromium-driver are missing and cannot be installed without root;" \
            "install them and retry." >&2
        exit 1
    fi
fi

export PATH="$VENV/bin:$PATH"
