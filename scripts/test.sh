#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (local disk, memory://
# and s3:// against a local S3-compatible server this script installs and starts), and the
# Flight SQL server driven by real Python clients.
# Usage: scripts/test.sh            (from anywhere; run .ci/run for the CI variant)
set -euo pipefail

REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

# One shared build cache outside the work tree, so clones and CI reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdphub-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "python test tools (S3 server, Flight SQL clients) into .venv"
scripts/s3-server.sh install

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "local S3-compatible server"
# `auto`: the default port, or a free one if another clone's server holds it.
scripts/s3-server.sh stop >/dev/null 2>&1 || true
eval "$(scripts/s3-server.sh start auto)"
trap 'scripts/s3-server.sh stop >/dev/null 2>&1 || true' EXIT
# The s3:// tests must run here; without the server they fail instead of skipping.
export CDPHUB_REQUIRE_S3_TESTS=1

step "cargo test"
cargo test --workspace --all-targets

step "Flight SQL with real clients (ADBC, pyarrow.flight, SQLAlchemy, pandas) against cdphub serve"
# The debug binary built by `cargo test` above; each test session starts its own servers on
# free loopback ports, over a scale-0.01 demo lake in a temporary directory. (The same
# package set as above, so nothing is rebuilt with other features.)
cargo test --workspace --all-targets --no-run
CDPHUB_BIN="$CARGO_TARGET_DIR/debug/cdphub" .venv/bin/python -m pytest -q -p no:cacheprovider \
    crates/flight/tests/python
