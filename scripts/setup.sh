#!/usr/bin/env bash
# Installs what cpprof needs on Debian 12 (only the packages that are
# missing), then configures and builds the given CMake preset (default:
# release). Run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"

packages=(
  g++ cmake ninja-build pkg-config git curl
  libboost-dev zlib1g-dev             # HTTP (Beast/Asio, header-only), gzip
  libdw-dev                           # file:line and inlined frames (libdw, loaded lazily)
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and benchmarks
  golang-go                           # `go tool pprof`: the independent reader in tests
  google-perftools libgoogle-perftools-dev  # the peers the benchmarks compare against:
  linux-perf                                #   gperftools' profiler and `perf record`
  libjemalloc2 libtcmalloc-minimal4   # allocators cpprof must forward to (tests), peers (bench)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
