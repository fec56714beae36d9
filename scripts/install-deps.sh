#!/usr/bin/env bash
# Installs whatever Outpost needs on Debian 12 and is missing. Safe to run again: it skips what is there.
# Puts pdfium (from the PyPI wheel pypdfium2) at $OUTPOST_PDFIUM_DIR (default ~/.local/share/outpost/pdfium).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # build and run the Tauri app
  libwebkit2gtk-4.1-dev build-essential curl wget file libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev pkg-config libdbus-1-dev
  # fonts the sample documents embed (Cyrillic and Latin)
  fonts-dejavu-core
  # tests: a virtual display, the WebKit WebDriver, a real Secret Service, third-party PDF tools
  xvfb webkit2gtk-driver imagemagick x11-apps dbus dbus-x11 gnome-keyring libsecret-tools
  poppler-utils qpdf mupdf-tools libnss3-tools openssl python3-venv
  # hardware-token tests: a software PKCS #11 token and the tool that loads certificates onto it
  softhsm2 opensc
  # the server's PostgreSQL backend (tests start a private cluster with scripts/with-postgres.sh)
  postgresql
  # the peers the benchmarks measure beside Outpost: rsync (sync); MuPDF's viewer and Evince (the
  # app window), found on screen with xwininfo
  rsync mupdf evince x11-utils
)

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -q
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# Debian's sqlcipher shell, a test's independent reader of the vault. Debian 12's own is SQLCipher 3.4,
# which cannot read SQLCipher 4 databases: on Debian 12 it comes from Debian's bookworm-backports (4.6).
sqlcipher_version=$(dpkg-query -W -f='${Version}' sqlcipher 2>/dev/null || true)
case "$sqlcipher_version" in
  [4-9].*) ;;
  *)
    release=()
    if [ "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" = bookworm ]; then
      release=(-t bookworm-backports)
      if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "==> adding Debian's bookworm-backports (for SQLCipher 4)"
        printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
          "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
          sudo_if_needed tee /etc/apt/sources.list.d/debian-backports.sources >/dev/null
      fi
    fi
    echo "==> installing sqlcipher (SQLCipher 4) ${release[*]}"
    sudo_if_needed apt-get update -q
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${release[@]}" sqlcipher
    ;;
esac

# Rust: rustup's stable toolchain (Debian 12's own rustc is too old for Tauri 2).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "==> installing Rust with rustup"
  if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal; then
    echo "Could not install Rust: install it from https://rustup.rs, then run this again." >&2
    exit 1
  fi
  export PATH="$HOME/.cargo/bin:$PATH"
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --quiet --locked cargo-nextest
fi

# A real S3-compatible server for the blob-store tests (s3s-fs; 0.14.1 is the newest that builds
# with the toolchain here).
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "==> installing s3s-fs (an S3 server for tests)"
  cargo install --quiet --locked s3s-fs --version 0.14.1 --features binary
fi

# pdfium: the libpdfium.so shipped inside the PyPI wheel pypdfium2.
PDFIUM_DIR="${OUTPOST_PDFIUM_DIR:-$HOME/.local/share/outpost/pdfium}"
if [ ! -f "$PDFIUM_DIR/libpdfium.so" ]; then
  echo "==> fetching pdfium from the pypdfium2 wheel"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "pypdfium2==5.15.2" -d "$tmp"
  python3 - "$tmp" "$PDFIUM_DIR" <<'PY'
import sys, zipfile, glob, os
wheel = glob.glob(os.path.join(sys.argv[1], "pypdfium2-*.whl"))[0]
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("libpdfium.so"))
    with z.open(name) as src, open(os.path.join(out, "libpdfium.so.part"), "wb") as dst:
        dst.write(src.read())
os.replace(os.path.join(out, "libpdfium.so.part"), os.path.join(out, "libpdfium.so"))
PY
  rm -rf "$tmp"
fi

# Node packages of the UI.
if [ ! -d ui/node_modules ]; then
  echo "==> installing the UI's npm packages"
  # npm ci refuses lock files that lack other platforms' optional packages (npm 11), so install.
  (cd ui && npm install --no-audit --no-fund)
fi

# Python tools the tests use as independent judges (SQLCipher 4 for the vault format).
VENV="${OUTPOST_VENV:-$HOME/.cache/outpost/venv}"
# pypdf reads our annotations back; pyHanko signs test inputs and validates signatures.
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import sqlcipher3, pypdf, pyhanko" 2>/dev/null; then
  echo "==> creating the Python tools venv at $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet "sqlcipher3-binary==0.6.0" "pypdf==7.1.0" "pyHanko==0.38.0" "pyhanko-cli==0.6.0"
fi

# tauri-driver: the WebDriver bridge for end-to-end tests of the real window.
if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "==> installing tauri-driver"
  cargo install --quiet --locked tauri-driver
fi
