#!/bin/sh
# Make Debian's headless-capable `chromium` available for the report's browser test.
# Prints the browser's path on success; exits non-zero (with the reason on stderr) when it
# is missing and cannot be installed here (no root, no apt, no network to the Debian mirror).
set -eu

for name in chromium chromium-browser; do
    if path=$(command -v "$name"); then
        echo "$path"
        exit 0
    fi
done

if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium is not installed and apt-get is not available" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"
else
    SUDO=""
fi
export DEBIAN_FRONTEND=noninteractive
{
    $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends chromium
} >&2 || { echo "could not install chromium with apt-get" >&2; exit 1; }
command -v chromium
