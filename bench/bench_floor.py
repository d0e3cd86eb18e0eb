#!/usr/bin/python3
"""Where a small export's time goes, and what is left when the parts we do
not control are taken away: the floor under issue 11's small-job targets
(at most 10 ms end to end in the CLI; 250 exports/s from the daemon).

The small job is the real fixture conversation (shared/fixtures/
polis_real.json, 370 KB: 138 participants x 46 statements, 71 HDF5 objects
and 157 attributes in the h5ad), exported by the CLI --runs times each way,
interleaved; medians:

1. start-up alone: `export` of a request file that does not exist (exec,
   dynamic linking, start-up, the error, exit): what any export pays.
2. the fixture as it asks (h5ad, gzip 4), with --timings: load (decode),
   prepare (sanitize, filter), writer (compressing the numeric chunks, then
   libhdf5's calls), commit (sha256, fsync of the file and its directory,
   rename), the rest of the process (start-up, JSON out, exit).
3. the same request with "compression": null: writer is then libhdf5's
   calls alone, the part no change of ours can shorten but doing less.

It prints the floor of the CLI (start-up + libhdf5's calls + commit) against
the 10 ms target, and the CPU a daemon export needs before its HTTP,
spooling and job records (decode + prepare + writer), which bounds what two
cores can do (figures from a fresh process: a warm daemon pays somewhat less;
bench_small.py measures its CPU per export).

    /usr/bin/python3 bench/bench_floor.py --bin build-rel/anndata-exportd
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_load import FIXTURE  # noqa: E402


def run(binary, req, out, timings):
    args = [binary, "export", req, "-o", out] + (["--timings"] if timings else [])
    t0 = time.perf_counter()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    return wall, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build-rel/anndata-exportd"))
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    if not os.path.exists(FIXTURE):
        raise SystemExit("fixture not found: %s (shared/ beside the clone, or ADX_SHARED)" % FIXTURE)
    with open(FIXTURE) as f:
        req = json.load(f)
    with tempfile.TemporaryDirectory(prefix="adx-bench-floor-") as tmp:
        plain = os.path.join(tmp, "none.json")
        with open(plain, "w") as f:
            json.dump(dict(req, compression=None), f)
        missing = os.path.join(tmp, "missing.json")
        out = os.path.join(tmp, "out.h5ad")
        start, rows = [], {"gzip": [], "none": []}
        for _ in range(args.runs):
            wall, p = run(args.bin, missing, out, False)
            if p.returncode == 0:
                raise SystemExit("exporting a missing file succeeded?")
            start.append(wall)
            for kind, path in (("gzip", FIXTURE), ("none", plain)):
                wall, p = run(args.bin, path, out, True)
                if p.returncode != 0:
                    raise SystemExit(p.stderr.decode(errors="replace")[:2000])
                t = json.loads(p.stdout)["timings"]
                if "writer_s" not in t:
                    raise SystemExit("%s: --timings has no writer_s/commit_s (a build before"
                                     " stop 19)" % args.bin)
                t["wall"] = wall
                rows[kind].append(t)

    def med(kind, key):
        return statistics.median(r[key] for r in rows[kind]) * 1e3

    st = statistics.median(start) * 1e3
    print("fixture conversation, CLI, medians of %d runs (ms), load average %s"
          % (args.runs, " ".join("%.1f" % x for x in os.getloadavg())))
    print("  start-up and exit alone (export of a missing file)   %6.2f" % st)
    for kind in ("gzip", "none"):
        w = med(kind, "wall")
        parts = [med(kind, k) for k in ("load_s", "prepare_s", "writer_s", "commit_s")]
        print("  %-5s wall %6.2f = load %5.2f + prepare %5.2f + writer %5.2f + commit %5.2f"
              " + rest %5.2f" % ((kind, w) + tuple(parts) + (w - sum(parts),)))
    hdf5 = med("none", "writer_s")
    commit = med("gzip", "commit_s")
    floor = st + hdf5 + commit
    print("  compressing the numeric chunks (writer gzip - none)   %6.2f"
          % (med("gzip", "writer_s") - hdf5))
    print("  floor: start-up %.2f + libhdf5's calls %.2f + commit %.2f = %.2f ms"
          " (target 10 ms: %s)" % (st, hdf5, commit, floor,
                                   "within" if floor <= 10 else "above it by %.2f ms" % (floor - 10)))
    work = med("gzip", "load_s") + med("gzip", "prepare_s") + med("gzip", "writer_s")
    print("  daemon: decode + prepare + writer = %.2f ms of CPU per export before HTTP,"
          " spooling, sha256 and job records; 2 cores: at most %.0f exports/s (target 250/s)"
          % (work, 2e3 / work))


if __name__ == "__main__":
    main()
