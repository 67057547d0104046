#!/usr/bin/env bash
# The second README command: set up, build, and run the whole test suite
# (ctest) for a preset (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh "$preset"
ctest --preset "$preset"
