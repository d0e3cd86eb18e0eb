#!/usr/bin/env bash
# Install what is missing, build, and run the daemon on 127.0.0.1:8080 with
# default settings. Extra arguments are passed to `serve`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"
"$root/scripts/build.sh" build
# serve listens on 127.0.0.1:8080 by default.
exec build/anndata-exportd serve "$@"
