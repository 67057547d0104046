#!/usr/bin/env bash
# The first README command: set up, build, and run the demo service with
# profiling on at http://127.0.0.1:6060/debug/pprof/ (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
exec build/release/bin/cpprof_demo --http "${CPPROF_DEMO_HTTP:-127.0.0.1:6060}" "$@"
