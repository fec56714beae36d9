#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked GNOME Keyring (a real Secret
# Service), so the vault's device secrets go to a real keyring in tests and headless runs.
# Usage: scripts/with-keyring.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${OUTPOST_IN_KEYRING_SESSION:-}" = 1 ]; then exec "$@"; fi
export OUTPOST_IN_KEYRING_SESSION=1
# pdfium is found under XDG_DATA_HOME, which the keyring gets its own of below.
export OUTPOST_PDFIUM_PATH="${OUTPOST_PDFIUM_PATH:-${XDG_DATA_HOME:-$HOME/.local/share}/outpost/pdfium/libpdfium.so}"
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
# gnome-keyring keeps its collections under XDG_DATA_HOME; a throwaway one keeps test secrets apart.
exec env XDG_DATA_HOME="$keyring_home" dbus-run-session -- bash -c '
  printf "outpost-test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec "$@"' outpost-keyring "$@"
