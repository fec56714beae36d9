#!/usr/bin/env bash
# Installs whatever is missing, then starts Outpost on the embedded default: a local Outpost server
# (SQLite, seeded once with demo users and generated sample documents in Russian and English) and
# the app, whose demo vault (user "demo", password "outpost-demo") is connected to that server.
# Stop the server to work offline (see README); closing the app stops the server too.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools installed by cargo (cargo itself, cargo-nextest, tauri-driver) live here.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac

./scripts/install-deps.sh
(cd ui && npm run build)
cargo build -p outpost --bin outpost
cargo build -p outpost-server --bin outpost-server

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No graphical display: run this from a desktop session (or set DISPLAY)." >&2
  exit 1
fi

target="${CARGO_TARGET_DIR:-target}/debug"
server_data="${OUTPOST_SERVER_DATA_DIR:-$HOME/.local/share/outpost-server}"
port="${OUTPOST_DEMO_PORT:-8443}"
mkdir -p "$server_data"
# Demo users and documents, the first time only (a server with users is left alone).
"$target/outpost-server" --data-dir "$server_data" demo
"$target/outpost-server" --data-dir "$server_data" serve --listen "127.0.0.1:$port" \
  >>"$server_data/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >"$server_data/server.pid"
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$server_data/server.pid"' EXIT
for _ in $(seq 1 100); do
  if curl -s --cacert "$server_data/tls/ca.pem" "https://127.0.0.1:$port/api/v1/health" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$server_pid" 2>/dev/null || { echo "The demo server did not start; see $server_data/server.log" >&2; exit 1; }
  sleep 0.2
done
echo "Demo server on https://127.0.0.1:$port (pid $server_pid, log $server_data/server.log)."

app_args=(--demo --server "https://127.0.0.1:$port" --server-ca "$server_data/tls/ca.pem"
  --demo-totp-file "$server_data/demo-totp.tsv")
if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  "$target/outpost" "${app_args[@]}" "$@"
  exit
fi
# No desktop session bus (e.g. a bare X server): give Outpost a Secret Service of its own whose
# keyring persists under ~/.local/share/outpost/keyring, so the demo vault opens next time too.
export OUTPOST_KEYRING_HOME="${OUTPOST_KEYRING_HOME:-$HOME/.local/share/outpost/keyring}"
./scripts/with-keyring.sh "$target/outpost" "${app_args[@]}" "$@"
