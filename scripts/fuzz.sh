#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in
# build-fuzz/ and run each for SECONDS (default 30), one after the other,
# on one core (nice). Exits non-zero on any finding in the project's code.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (targets: request options query polis glob h5r ...)
#
# Each target's corpus grows in build-fuzz/fuzz-corpus/NAME (kept between
# runs; the committed seeds in tests/fuzz/corpus/NAME and the kept findings
# in tests/fuzz/regress/NAME are read too). Findings go to
# build-fuzz/fuzz-findings/. The h5r target runs in libFuzzer's fork mode so
# that a crash inside libhdf5 itself does not end the run; every artifact is
# then replayed and triaged: it is libhdf5's (moved to fuzz-findings/libhdf5,
# reported, not a failure — the daemon reads uploads in the adx-h5check
# child, which contains them) only when the faulting frame and, for heap
# errors, the frame that allocated the memory are in libhdf5. Anything else
# fails. ADX_FUZZ_BUILD names the build directory.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
secs=${1:-30}
(($# > 0)) && shift
dir=${ADX_FUZZ_BUILD:-build-fuzz}

# libhdf5 stays a shared object here: the triage below tells libhdf5's own
# faults by the object named in each stack frame, which a static link hides.
if [[ ! -f "$dir/build.ninja" ]]; then
  if ! out=$(CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dstatic_hdf5=disabled 2>&1); then
    echo "$out"
    exit 1
  fi
fi
all=()
for src in tests/fuzz/fuzz_*.c; do
  n=${src#tests/fuzz/fuzz_}
  n=${n%.c}
  # fuzz_common.c is the targets' shared helper library, not a target.
  [[ $n == common ]] || all+=("$n")
done
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
ninja -C "$dir" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >/dev/null || {
  ninja -C "$dir" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")
  exit 1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
findings="$dir/fuzz-findings"
mkdir -p "$findings/libhdf5"
limits=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024)

# Replays one artifact alone. 0: the fault and (heap errors) the allocation
# are in libhdf5; 1: ours, or unclassifiable; 2: does not reproduce.
triage() {
  local bin=$1 input=$2 log
  log=$(timeout 120 "$bin" -runs=1 "${limits[@]}" "$input" 2>&1)
  /usr/bin/python3 - "$log" <<'PY'
import re, sys
log = sys.argv[1]
if not re.search(r"ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error:|SUMMARY: ", log):
    sys.exit(2)
RUNTIME = re.compile(r"__sanitizer|__asan|__interceptor|__lsan|fuzzer::|\(anonymous namespace\)|"
                     r"libclang_rt|/libc\.so|libc-start|AlarmCallback|"
                     r"\b(malloc|calloc|realloc|free|memcpy|memmove|memset|strlen)\b")
def first_frame(lines):
    for l in lines:
        if re.match(r"\s*#\d+ ", l) and not RUNTIME.search(l):
            return l
    return ""
sections, cur = [], None
for l in log.splitlines():
    if re.search(r"ERROR: |(allocated|freed) by thread|previously allocated", l):
        cur = []
        sections.append((l, cur))
    elif cur is not None and re.match(r"\s*#\d+ ", l):
        cur.append(l)
    elif cur is not None and cur and not l.strip():
        cur = None
if not sections:
    sys.exit(1)
frames = [first_frame(s) for _, s in sections]
print("\n".join(f"  {h.strip()[:100]}\n    {f.strip()[:160]}" for (h, _), f in zip(sections, frames)))
sys.exit(0 if frames and all("libhdf5" in f for f in frames) else 1)
PY
}

status=0
summary=()
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  corpus="$dir/fuzz-corpus/$t"
  mkdir -p "$corpus"
  opts=(-max_total_time="$secs" "${limits[@]}" -print_final_stats=1
    -artifact_prefix="$findings/$t-")
  case $t in request | options | query) opts+=(-dict=tests/fuzz/json.dict) ;; esac
  # A fixed seed (ADX_FUZZ_SEED, CI sets 1) makes a short run repeat the
  # same mutations, so a red CI names an input that reproduces.
  [[ -n ${ADX_FUZZ_SEED:-} ]] && opts+=(-seed="$ADX_FUZZ_SEED")
  # libhdf5's spins would otherwise take most of the time: a seed reads in
  # ~20 ms, so 3 s is a hang even on a busy machine.
  [[ $t == h5r ]] && opts+=(-timeout=3 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  before=$(ls "$findings" | grep -c "^$t-" || true)
  log="$dir/fuzz-$t.log"
  echo "== fuzz $t (${secs} s)"
  timing=()
  [[ -x /usr/bin/time ]] && timing=(/usr/bin/time -f '%U %S' -o "$dir/fuzz-$t.cpu")
  "${timing[@]}" nice -n 10 "$bin" "${opts[@]}" "$corpus" "tests/fuzz/corpus/$t" \
    "tests/fuzz/regress/$t" >"$log" 2>&1
  rc=$?
  cpu=$(awk '{printf "%.0f", $1 + $2}' "$dir/fuzz-$t.cpu" 2>/dev/null)
  stats=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  execs=$(grep -Eo '(stat::number_of_executed_units: |^#)[0-9]+' "$log" | grep -Eo '[0-9]+$' | sort -n | tail -1)
  bad=0
  new=0
  for a in $(ls "$findings" | grep "^$t-" | tail -n +$((before + 1))); do
    [[ -f "$findings/$a" ]] || continue
    new=1
    out=$(triage "$bin" "$findings/$a")
    case $? in
    0) if [[ $t == h5r ]]; then
         echo "  $a: inside libhdf5 (contained by adx-h5check in production)"
         echo "$out"
         mv "$findings/$a" "$findings/libhdf5/"
       else
         echo "  $a: FINDING"; echo "$out"; bad=1
       fi ;;
    2) echo "  $a: does not reproduce alone (a timeout on a loaded machine?)" ;;
    *) echo "  $a: FINDING"; echo "$out"; bad=1 ;;
    esac
  done
  # A run that stopped without leaving an input behind failed for another reason.
  if ((rc != 0 && !new)); then
    bad=1
    tail -30 "$log"
  fi
  ((bad)) && status=1
  summary+=("$(printf '%-8s %6s s  %6s s CPU  %10s execs  %s  %s' "$t" "$secs" "${cpu:-?}" \
    "${execs:-?}" "${stats:-?}" \
    "$( ((bad)) && echo FINDING || echo ok)")")
done
printf '%s\n' "== fuzz summary" "${summary[@]}"
exit $status
