#!/usr/bin/env bash
# Install the Debian 12 packages that building and testing anndata-exportd
# need. Idempotent: only missing packages are installed, nothing is run when
# all are present. Runs apt-get directly as root, else through sudo.
set -euo pipefail

packages=(
  # build
  gcc pkg-config meson ninja-build
  libuv1-dev libmicrohttpd-dev libjansson-dev libhdf5-dev libdeflate-dev
  liblzf-dev zlib1g-dev libzip-dev nettle-dev libsystemd-dev
  # unit tests
  check
  # lint: scripts/test.sh fails on clang-format differences
  clang-format
  # fuzzing (scripts/fuzz.sh, run by scripts/test.sh): libFuzzer comes with clang
  clang
  # integration tests read the outputs back with Debian's python3 stack
  python3 python3-anndata python3-pytest python3-h5py python3-numpy python3-scipy python3-pandas
  hdf5-tools curl
  # deploy tests: the daemon behind a real nginx, a page in headless
  # chromium, the systemd unit checked by systemd-analyze
  nginx chromium systemd
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "setup: not root and no sudo; install these packages: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists.
if ! apt-cache policy "${missing[0]}" 2>/dev/null | grep -q 'Candidate: [^(]'; then
  "${sudo[@]}" apt-get update
fi
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
