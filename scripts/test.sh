#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration, crash tests; the storage
# and API suites on both SQLite and PostgreSQL, which must be running) and the
# independent judges in Python (the official `standardwebhooks`, `svix` and `stripe` packages,
# `fhir.resources` for the FHIR payloads, Selenium driving Debian's headless Chromium for the
# demo's pages), which this script installs on first use: packages into .venv, Chromium with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
# The storage suite runs on SQLite and PostgreSQL (VESTNIK_TEST_POSTGRES, default the local
# server); the API suite runs on SQLite, then again on PostgreSQL.
cargo test --workspace
VESTNIK_TEST_BACKEND=postgres cargo test -p vestnik-server --test it

# The page tests drive Debian's Chromium through its ChromeDriver.
install_chromium() {
  "$@" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null ||
    { "$@" apt-get update >/dev/null && "$@" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; }
}
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ]; then
    install_chromium env
  elif command -v sudo >/dev/null; then
    install_chromium sudo
  else
    echo "scripts/test.sh: the browser tests need Debian's chromium and chromium-driver; install them (apt-get install chromium chromium-driver) or run as root" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/judges/requirements.txt
VESTNIK_BIN="$PWD/target/debug/vestnik" .venv/bin/python -m pytest -q tests/judges
