#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration, crash and node-failure
# tests; the storage and API suites on both SQLite and PostgreSQL, the API suite also through
# RabbitMQ; PostgreSQL and RabbitMQ must be running — .ci/run starts them) and the
# independent judges in Python (the official `standardwebhooks`, `svix` and `stripe` packages,
# `fhir.resources` for the FHIR payloads, Selenium driving Debian's headless Chromium for the
# demo's pages), which this script installs on first use: packages into .venv, Chromium with apt.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
# The storage suite runs on SQLite and PostgreSQL (VESTNIK_TEST_POSTGRES, default the local
# server); the node tests use PostgreSQL and RabbitMQ (VESTNIK_TEST_AMQP, default the local
# broker). The API suite runs on SQLite, then on PostgreSQL, then on PostgreSQL with dispatch
# through RabbitMQ.
cargo test --workspace
VESTNIK_TEST_BACKEND=postgres cargo test -p vestnik-server --test it
VESTNIK_TEST_BACKEND=postgres VESTNIK_TEST_QUEUE="${VESTNIK_TEST_AMQP:-amqp://guest:guest@127.0.0.1:5672/%2f}" \
  cargo test -p vestnik-server --test it

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
