#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked GNOME Keyring (a real Secret
# Service), so vault device secrets go to a real keyring in tests and headless runs.
# The keyring lives in a throwaway folder, or in $OUTPOST_KEYRING_HOME when that is set.
# Usage: scripts/with-keyring.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${OUTPOST_IN_KEYRING_SESSION:-}" = 1 ]; then exec "$@"; fi
export OUTPOST_IN_KEYRING_SESSION=1
# pdfium is found under XDG_DATA_HOME, which the keyring gets its own of below.
# So are Outpost's own data: pin both to where they are outside this session.
export OUTPOST_PDFIUM_PATH="${OUTPOST_PDFIUM_PATH:-${XDG_DATA_HOME:-$HOME/.local/share}/outpost/pdfium/libpdfium.so}"
export OUTPOST_DATA_DIR="${OUTPOST_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/outpost/data}"
if [ -n "${OUTPOST_KEYRING_HOME:-}" ]; then
  keyring_home="$OUTPOST_KEYRING_HOME"
  mkdir -p "$keyring_home"
else
  keyring_home=$(mktemp -d)
  trap 'rm -rf "$keyring_home"' EXIT
fi
# The inner shell keeps running (no exec) so the trap above can clean up afterwards.
env XDG_DATA_HOME="$keyring_home" dbus-run-session -- bash -c '
  printf "outpost-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec "$@"' outpost-keyring "$@"
