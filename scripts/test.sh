#!/usr/bin/env bash
# Check the formatting, then build and run every test twice: a normal build
# (build/) and an AddressSanitizer + UBSan build (build-asan/) where any
# finding fails the test. Both builds use -Werror. Then every fuzz target
# runs ADX_FUZZ_SECONDS (default 20) in build-fuzz/ (scripts/fuzz.sh).
# Prints "N passed, N failed" over both runs (a formatting difference and a
# fuzzing finding count as one failure each);
# exits non-zero on any failure. ADX_BUILD names the build directory
# (default build; the ASan one gets "-asan" appended).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh" || exit 1

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:print_stacktrace=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-}

b=${ADX_BUILD:-build}
status=0

# The committed .clang-format is the style; a file that differs from it fails
# CI here rather than showing up as noise in someone else's merge.
lint_failed=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t sources < <(git ls-files -- 'src/*.[ch]' 'include/*.h' 'tests/*.[ch]')
else
  mapfile -t sources < <(find src include tests -name '*.[ch]' | sort)
fi
if ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "test.sh: clang-format differences (run clang-format -i on the files above)" >&2
  lint_failed=1
  status=1
fi

for cfg in "$b -Dwerror=true" "$b-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false"; do
  read -r -a args <<<"$cfg"
  dir=${args[0]}
  echo "== $dir"
  rm -f "$dir/meson-logs/testlog.json"
  if ! "$root/scripts/build.sh" "${args[@]}"; then
    echo "test.sh: build in $dir failed" >&2
    status=1
    continue
  fi
  meson test -C "$dir" --print-errorlogs || status=1
done

# Every fuzz target for a short time (README "Fuzzing"); a finding fails.
echo "== fuzz"
fuzz_failed=0
ADX_FUZZ_SEED=${ADX_FUZZ_SEED:-1} ADX_FUZZ_BUILD="$b-fuzz" \
  "$root/scripts/fuzz.sh" "${ADX_FUZZ_SECONDS:-20}" || fuzz_failed=1

# Count results from meson's machine-readable logs of both runs.
counts=$(/usr/bin/python3 - "$b/meson-logs/testlog.json" "$b-asan/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = 0
for path in sys.argv[1:]:
    try:
        f = open(path)
    except OSError:
        failed += 1  # a run that produced no log counts as a failure
        continue
    for line in f:
        line = line.strip()
        if not line:
            continue
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL", "SKIP"):
            passed += r != "SKIP"
        else:
            failed += 1
print(passed, failed)
PY
)
read -r passed failed <<<"$counts"
failed=$((failed + lint_failed + fuzz_failed))
echo "$passed passed, $failed failed"
if ((failed > 0 || status != 0)); then exit 1; fi
