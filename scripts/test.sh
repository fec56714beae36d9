#!/usr/bin/env bash
# The whole test suite: installs what is missing, then formatting, lints, the UI's tests, and every
# Rust test (unit, integration, SIGKILL intake runs, and the real window under Xvfb) against a real
# Secret Service, pdfium and third-party tools.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools installed by cargo (cargo itself, cargo-nextest, tauri-driver) live here.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac
started=$(date +%s)

./scripts/install-deps.sh

# In CI the clone is new each time: keep build output in a cache outside it.
if [ "${CI:-}" = true ] && [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR="$HOME/.cache/outpost/ci-target"
  # A clone is built once: incremental state would only fill the disk (gigabytes of it).
  export CARGO_INCREMENTAL=0
  rm -rf "$CARGO_TARGET_DIR/debug/incremental"
  # Every build links new test binaries (hundreds of MB each) beside the old ones: keep only the
  # newest of each name, or the cache fills the disk within days.
  if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
    find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%T@ %f\n' |
      sort -rn | awk '{ name = $2; sub(/-[0-9a-f]+$/, "", name); if (seen[name]++) print $2 }' |
      (cd "$CARGO_TARGET_DIR/debug/deps" && xargs -r rm -f --)
  fi
fi
export OUTPOST_TEST_PYTHON="${OUTPOST_VENV:-$HOME/.cache/outpost/venv}/bin/python"

echo "==> UI: type-check, build, unit tests"
(cd ui && npm run build && npm test)

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> Rust tests (under a private D-Bus session with GNOME Keyring, beside a private PostgreSQL)"
./scripts/with-postgres.sh ./scripts/with-keyring.sh cargo nextest run --workspace --no-fail-fast

echo "==> all tests passed in $(( $(date +%s) - started )) s"
