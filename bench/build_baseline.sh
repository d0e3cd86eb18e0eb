#!/usr/bin/env bash
# Build another revision of anndata-exportd (release) for the benchmarks'
# --baseline, in a detached git worktree, without touching this checkout.
#
#   bench/build_baseline.sh REV DIR
#   -> DIR/build-rel/anndata-exportd
#
# 01c03cc is the end of round 1, the tree issue 11's "measured" figures
# come from. Needs the build dependencies scripts/setup.sh installs.
set -euo pipefail

rev=${1:?usage: build_baseline.sh REV DIR}
dir=${2:?usage: build_baseline.sh REV DIR}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ! -e "$dir/.git" ]]; then
  git -C "$root" worktree add --detach "$dir" "$rev"
fi
cd "$dir"
[[ -f build-rel/build.ninja ]] || meson setup build-rel --buildtype=release
# serve needs its adx-h5check helper too: the whole tree.
ninja -C build-rel
echo "$dir/build-rel/anndata-exportd"
