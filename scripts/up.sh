#!/usr/bin/env bash
# Builds Vigil (installing its Debian build dependencies where missing) and runs `vigil up` on the
# embedded default: one process, SQLite in ./vigil-data, listening on 127.0.0.1:9093.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec cargo run --release -p vigil -- up "$@"
