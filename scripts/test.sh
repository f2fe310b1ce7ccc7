#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, integration, crash tests) and the
# independent judges (the official `standardwebhooks` and `svix` Python packages), which this
# script installs into .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
cargo test --workspace

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/judges/requirements.txt
VESTNIK_BIN="$PWD/target/debug/vestnik" .venv/bin/python -m pytest -q tests/judges
