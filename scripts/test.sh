#!/usr/bin/env bash
# Runs Vigil's whole test suite on a fresh Debian machine: installs what the suite needs
# (dockerd, PostgreSQL, Prometheus, Alertmanager, clang, …), checks formatting and lints, and runs
# every test with VIGIL_REQUIRE_INTEGRATION=1 so that an integration test that cannot run fails
# instead of skipping. Tests start the real components they need themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test
export VIGIL_REQUIRE_INTEGRATION="${VIGIL_REQUIRE_INTEGRATION:-1}"
export CARGO_TERM_COLOR=never
# A clean checkout gains nothing from incremental state; in CI it only costs disk (about 1 GB).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# The build and the tests' images need a few GB: say how much there is, so that a full disk is
# recognised as that and not as a compiler failure.
df -h . /tmp | sed 's/^/disk: /'
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --no-fail-fast --locked
