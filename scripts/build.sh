#!/usr/bin/env bash
# Configure (first time) and compile: the one build command that
# scripts/run.sh, scripts/test.sh, the README and the Dockerfile share.
#
#   scripts/build.sh [BUILDDIR] [meson setup options...]
#   scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
#
# It installs nothing (scripts/setup.sh does); options given again on an
# existing build directory reconfigure it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

dir=${1:-build}
(($# > 0)) && shift

if [[ ! -f "$dir/build.ninja" ]]; then
  meson setup "$dir" "$@"
elif (($# > 0)); then
  meson setup --reconfigure "$dir" "$@"
fi
ninja -C "$dir"
