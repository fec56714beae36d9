#!/usr/bin/env bash
# Installs whatever is missing, then starts Outpost on the embedded default: a demo vault seeded
# with generated sample documents (user "demo", password "outpost-demo").
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools installed by cargo (cargo itself, cargo-nextest, tauri-driver) live here.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

./scripts/install-deps.sh
(cd ui && npm run build)
cargo build --bin outpost

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No graphical display: run this from a desktop session (or set DISPLAY)." >&2
  exit 1
fi

app="${CARGO_TARGET_DIR:-target}/debug/outpost"
if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  exec "$app" --demo "$@"
fi
# No desktop session bus (e.g. a bare X server): give Outpost a Secret Service of its own whose
# keyring persists under ~/.local/share/outpost/keyring, so the demo vault opens next time too.
export OUTPOST_KEYRING_HOME="${OUTPOST_KEYRING_HOME:-$HOME/.local/share/outpost/keyring}"
exec ./scripts/with-keyring.sh "$app" --demo "$@"
