#!/bin/sh
# Installs what tagd needs on a fresh Debian 12 / Raspberry Pi OS machine, as root, into ./.venv.
#   scripts/install.sh          the daemon and the reference server
#   scripts/install.sh --test   the same plus the test tools
set -eu
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# Build needs for the native bindings: systemd-python (libsystemd), xkbcommon (libxkbcommon via cffi), evdev
# (kernel input headers). xkb-data holds the keyboard layouts the decoder compiles.
packages="python3 python3-venv python3-dev gcc pkg-config libsystemd-dev libxkbcommon-dev xkb-data linux-libc-dev"
missing=$(for p in $packages; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extras"
