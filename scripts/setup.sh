#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks to run lorawatch and its tests.
#
# Idempotent: every step checks first and says "already present" when there is nothing to do.
# Steps: Debian packages (Mosquitto, PostgreSQL 15 server + dev headers, cmake, build tools),
# TimescaleDB (Apache edition) built from Debian trixie's source package because bookworm has none,
# then a virtualenv (.venv) with lorawatch and its dev extras, and axe-core from the npm registry
# (package-lock.json) for the browser tests, which drive Debian's chromium (never a downloaded browser).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
VENV=${LORAWATCH_VENV:-$here/.venv}
PYTHON=${PYTHON:-python3}
did=0

say() { printf '[setup] %s\n' "$*"; }
sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages ---------------------------------------------------------------------------
need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ -x "/usr/lib/postgresql/$PG_MAJOR/bin/postgres" ] || need+=("postgresql-$PG_MAJOR")
[ -x "$PG_CONFIG" ] && [ -d "/usr/include/postgresql/$PG_MAJOR/server" ] || need+=("postgresql-server-dev-$PG_MAJOR")
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v gcc >/dev/null 2>&1 || need+=(build-essential)
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
# Browser tests: Debian's chromium (driven by playwright through executable_path), a font for its
# screenshots, and npm for axe-core (Debian's npm brings nodejs).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  did=1
else
  say "Debian packages already present"
fi

# --- TimescaleDB -------------------------------------------------------------------------------
pkglib=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
if ls "$pkglib"/timescaledb*.so >/dev/null 2>&1 && [ -f "$sharedir/extension/timescaledb.control" ]; then
  say "TimescaleDB already installed in $pkglib"
else
  say "building TimescaleDB (Apache edition) from Debian trixie's source package"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/parts"
  # Reuse the mirror the system already uses; keep the system's apt configuration untouched.
  uri=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
        | grep -oE '^(URIs:|deb) +\S+' | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  uri=${uri:-http://deb.debian.org/debian}
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" > "$work/sources.list"
  aptopts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
           -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
  apt-get "${aptopts[@]}" update -qq
  (cd "$work" && apt-get "${aptopts[@]}" source --download-only timescaledb)
  (cd "$work" && dpkg-source -x --no-check timescaledb_*.dsc src >/dev/null)
  (cd "$work/src" && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
      -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF \
      -DPG_CONFIG="$PG_CONFIG" >/dev/null)
  (cd "$work/src/build" && make -j"$(nproc)" >/dev/null && sudo_ make install >/dev/null)
  say "TimescaleDB installed"
  did=1
fi

# --- virtualenv --------------------------------------------------------------------------------
stamp="$VENV/.lorawatch-installed"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  say "virtualenv $VENV already up to date"
else
  say "creating virtualenv $VENV with lorawatch[dev]"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  touch "$stamp"
  did=1
fi

# --- axe-core (npm) ---------------------------------------------------------------------------
# The version in package-lock.json, installed into node_modules/; the browser tests inject its axe.min.js.
axe_want=$("$VENV/bin/python" -c 'import json; print(json.load(open("package-lock.json"))["packages"]["node_modules/axe-core"]["version"])')
axe_have=$("$VENV/bin/python" -c 'import json; print(json.load(open("node_modules/axe-core/package.json"))["version"])' 2>/dev/null || true)
if [ "$axe_have" = "$axe_want" ] && [ -f node_modules/axe-core/axe.min.js ]; then
  say "axe-core $axe_have already present in node_modules/"
else
  say "installing axe-core $axe_want from the npm registry (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  did=1
fi

if [ "$did" = 0 ]; then say "nothing to do: everything is already installed"; else say "done"; fi
