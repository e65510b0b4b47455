#!/bin/sh
# Installs Debian's Chromium for the browser tests (tests/e2e) when /usr/bin/chromium is missing.
# Idempotent and quiet: does nothing when the browser is already there. Playwright drives this browser
# (its own `playwright install` download is not used).
set -eu

BROWSER=/usr/bin/chromium
if [ -x "$BROWSER" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: $BROWSER is missing and this is not root (no sudo); install chromium by hand" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "install-browser: apt-get failed" >&2
    exit 1
fi

if [ ! -x "$BROWSER" ]; then
    echo "install-browser: chromium installed but $BROWSER is not there" >&2
    exit 1
fi
echo "install-browser: $($BROWSER --version 2>/dev/null || echo chromium) installed"
