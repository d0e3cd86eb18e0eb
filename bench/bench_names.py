#!/usr/bin/python3
"""Requests whose cost lies in their names and patterns, this build against
a baseline build in one run: the steps that once grew with the square of
the input (stop 18), and long include patterns on long keys (stop 20). Each case is one generated request exported to h5ad
(no compression) by `export --timings`; printed are the stage the case
stresses (load or prepare, seconds of wall time, median of --runs) for both
builds and the ratio, or the problem status when a build refuses it.

    /usr/bin/python3 bench/bench_names.py --bin build-rel/anndata-exportd \\
        --baseline /tmp/adx-old/build-rel/anndata-exportd

The baseline is built by bench/build_baseline.sh REV DIR.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile


def cases(scale):
    k = 100000 * scale
    uns = {"k%d" % i: i for i in range(k)}
    x = [[1.0]]
    long_keys = {"a" * 60000 + str(i): i for i in range(10)}
    return [
        ("include: 2048 prefix patterns on %d uns keys" % k, "prepare_s",
         {"adata": {"X": x, "uns": uns}, "include": ["uns/zz%d*" % i for i in range(2048)]}),
        ("include: one pattern drops %d uns keys" % k, "prepare_s",
         {"adata": {"X": x, "uns": uns}, "include": ["uns/zz*"]}),
        ("%d null uns values dropped" % (2 * k), "prepare_s",
         {"adata": {"X": x, "uns": {"n%d" % i: None for i in range(2 * k)}}}),
        ("categorical_columns: 2048 patterns on %d obs columns" % (k // 10), "load_s",
         {"adata": {"X": [[1.0], [2.0]],
                    "obs": {"columns": {"c%d" % i: [i, 1] for i in range(k // 10)}}},
          "categorical_columns": ["zz%d*" % i for i in range(2048)]}),
        # long patterns on long keys (stop 20): the star-backtracking
        # matcher cost pattern x key per try
        ("include: uns/* + a*4000 + c* on 10 keys of a*60000", "prepare_s",
         {"adata": {"X": x, "uns": long_keys}, "include": ["uns/*" + "a" * 4000 + "c*"]}),
        ("include: 4 such patterns", "prepare_s",
         {"adata": {"X": x, "uns": long_keys},
          "include": ["uns/*" + "a" * 4000 + c + "*" for c in "cdef"]}),
        ("include: uns/* + [a]*1300 + c* on the same keys", "prepare_s",
         {"adata": {"X": x, "uns": long_keys}, "include": ["uns/*" + "[a]" * 1300 + "c*"]}),
        ("record array of %d fields" % (k // 5), "total",
         {"adata": {"X": x, "uns": {"r": {"encoding-type": "rec-array",
                                          "fields": {"f%d" % i: [i] for i in range(k // 5)}}}}}),
    ]


def run(binary, req_path, out, stage):
    p = subprocess.run([binary, "export", req_path, "-o", out, "--timings"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        try:
            doc, _ = json.JSONDecoder().raw_decode(p.stderr)
            return None, "status %s" % doc.get("status")
        except ValueError:
            return None, "exit %d" % p.returncode
    t = json.loads(p.stdout)["timings"]
    return (sum(t.values()) if stage == "total" else t[stage]), "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--baseline", help="another anndata-exportd build (bench/build_baseline.sh)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", type=int, default=1, help="keys in units of 100,000")
    a = ap.parse_args()
    bins = [("this build", a.bin)] + ([("baseline", a.baseline)] if a.baseline else [])
    print("medians of %d runs, load average %s" % (a.runs, open("/proc/loadavg").read()[:14]))
    with tempfile.TemporaryDirectory(prefix="adx-bench-names-") as tmp:
        for name, stage, req in cases(a.scale):
            path = os.path.join(tmp, "req.json")
            with open(path, "w") as f:
                json.dump({**req, "compression": "none"}, f)
            res = {b: [] for b, _ in bins}
            for _ in range(a.runs):
                for b, exe in bins:  # interleaved
                    res[b].append(run(exe, path, os.path.join(tmp, "out.h5ad"), stage))
            print(name)
            med = {}
            for b, _ in bins:
                ts = [t for t, _ in res[b] if t is not None]
                med[b] = statistics.median(ts) if ts else None
                what = "%s %.3f s" % (stage.replace("_s", ""), med[b]) if ts else res[b][0][1]
                print("   %-11s %s" % (b, what))
            if a.baseline and med["this build"] and med["baseline"]:
                print("   ratio       %.1fx faster than the baseline"
                      % (med["baseline"] / med["this build"]))


if __name__ == "__main__":
    main()
