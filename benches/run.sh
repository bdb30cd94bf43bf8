#!/usr/bin/env bash
# Builds cdphub and the harness in release mode, then runs a benchmark.
# Usage: benches/run.sh pipeline --scale 1 [--seed 42] [--out bench-results/pipeline-s1.json]
#        benches/run.sh stitch --scale 10 [--repeat 3] [--out bench-results/stitch-s10.json]
#        benches/run.sh flight --scale 1 [--rows 5000000] [--clients 32] [--seconds 60] [--lake DIR]
#        benches/run.sh marts --scale 1 [--repeat 3] [--out bench-results/marts-s1.json]
#        benches/run.sh attribution --scale 1 [--repeat 5] [--out bench-results/attribution-s1.json]
set -euo pipefail
REPO_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdphub-target}"
cargo build --release -p cdphub -p cdphub-bench
if [ "${1:-}" != pipeline ]; then
    # The DuckDB peers and the pyarrow clients run in the project virtualenv.
    scripts/s3-server.sh install
fi
exec "$CARGO_TARGET_DIR/release/cdphub-bench" "$@" --project "$REPO_ROOT"
