#!/usr/bin/env bash
# Runs a command with a private PostgreSQL server (Debian's package) on a loopback port, and
# OUTPOST_TEST_POSTGRES_URL pointing at it. The cluster lives in a throwaway folder and is stopped
# and removed afterwards. As root, the server runs as the unprivileged `postgres` user (initdb
# refuses root). A URL already in OUTPOST_TEST_POSTGRES_URL is used as it is.
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
if [ -n "${OUTPOST_TEST_POSTGRES_URL:-}" ]; then exec "$@"; fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL is not installed: run scripts/install-deps.sh (it installs Debian's postgresql)" >&2
  exit 1
fi
dir=$(mktemp -d)
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
export OUTPOST_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
"$@"
