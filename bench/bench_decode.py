#!/usr/bin/python3
"""The input path against Python, side by side in one run.

1. A Polis-shaped request (bench_export.py's: votes with ~40% unseen as
   nested JSON numbers, obs/var columns, uns frames, a float32 layer) in two
   forms: "plain" (every matrix as nested JSON, the layer too) and "base64"
   (X and the layer as typed base64 blocks). For each, `anndata-exportd
   export` (h5ad, gzip) against what a Python service does with the same
   file: json.load, numpy/pandas to build the AnnData, anndata 0.8's
   write_h5ad with gzip. Wall and CPU time (user + sys) and peak RSS of each
   child from /usr/bin/time; medians of --runs.
2. The decoder alone (bench_jdec: parse + decode, CPU time) in MB/s of
   request text, on both forms and on a document that is one large base64
   string (the base64 decoder's own speed).
3. Scaling: uns with 25k, 50k and 100k keys, and a list of 300k empty
   objects; CPU time and peak RSS of the whole export.

With --baseline BIN (another build, e.g. round 1's from
bench/build_baseline.sh 01c03cc DIR) sections 1 and 3 print it beside
this build, run interleaved with it, and section 2 too when that build
has a bench_jdec next to it (round 2's trees do).

Run with Debian's python3 (anndata, numpy, pandas):
    /usr/bin/python3 bench/bench_decode.py --bin build/anndata-exportd
"""

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_export import make_request, spawn  # noqa: E402

PY_CHILD = r"""
import base64, json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd, anndata

def matrix(v):
    if isinstance(v, dict):
        dt = np.dtype(v.get("dtype", "float64"))
        if "base64" in v:
            return np.frombuffer(base64.b64decode(v["base64"]), dtype=dt).reshape(v["shape"])
        return np.array(v["data"], dtype=dt)
    return np.array([[np.nan if x is None else x for x in row] for row in v], dtype=float)

def frame(f):
    cols = f["columns"]
    df = pd.DataFrame({k: v for k, v in cols.items()}, index=f.get("index"))
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].fillna("")
    return df

with open(sys.argv[1]) as fh:
    req = json.load(fh)
a = req["adata"]
obs = frame(a["obs"])
obs["kmeans_polis"] = pd.Categorical(obs["kmeans_polis"].replace("", np.nan))
ad = anndata.AnnData(X=matrix(a["X"]), obs=obs, var=frame(a["var"]), dtype="float64",
                     obsm={k: matrix(v) for k, v in a["obsm"].items()},
                     varm={k: matrix(v) for k, v in a["varm"].items()},
                     layers={k: matrix(v) for k, v in a["layers"].items()})
for k, v in a["uns"].items():
    if v.get("encoding-type") == "dataframe":
        df = frame(v)
        df.index = df.index.astype(str)
        ad.uns[k] = df
    else:
        ad.uns[k] = v
ad.write_h5ad(sys.argv[2], compression="gzip")
"""


def med(xs):
    return statistics.median(xs)


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, allow_nan=False, separators=(",", ":"))
    return os.path.getsize(path) / 1e6


def bench_jdec(binary, path, runs):
    """CPU seconds of parse + decode, median."""
    out = subprocess.run([binary, path, str(runs)], capture_output=True, text=True, check=True)
    ts = [float(m.group(1)) + float(m.group(2))
          for m in re.finditer(r"parse ([0-9.]+) s, decode ([0-9.]+) s", out.stdout)]
    return med(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--jdec", default=None, help="bench_jdec (default: next to --bin)")
    ap.add_argument("--obs", type=int, default=4000)
    ap.add_argument("--vars", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", help="another anndata-exportd build to compare with "
                    "(bench/build_baseline.sh); sections 1 and 3")
    args = ap.parse_args()
    jdec = args.jdec or os.path.join(os.path.dirname(args.bin), "tests/unit/jdec/bench_jdec")
    work = tempfile.mkdtemp(prefix="adx-bench-dec-")
    try:
        req, arr = make_request(args.obs, args.vars)
        req["compression"] = "gzip"
        plain = json.loads(json.dumps(req))
        lay = plain["adata"]["layers"]["X_masked_imputed_mean"]
        plain["adata"]["layers"]["X_masked_imputed_mean"] = arr["imputed"].astype(float).tolist()
        b64 = json.loads(json.dumps(req))
        b64["adata"]["X"] = {"encoding-type": "array", "dtype": "float64",
                             "shape": [args.obs, args.vars],
                             "base64": base64.b64encode(arr["X"].tobytes()).decode()}
        b64["adata"]["layers"]["X_masked_imputed_mean"] = lay
        forms = {}
        for name, doc in (("plain", plain), ("base64", b64)):
            p = os.path.join(work, name + ".json")
            forms[name] = (p, write(p, doc))
        print("request %d x %d: plain %.1f MB, base64 %.1f MB; load average %s" %
              (args.obs, args.vars, forms["plain"][1], forms["base64"][1],
               " ".join("%.1f" % x for x in os.getloadavg())))

        print("\n1. export to h5ad (gzip), medians of %d runs" % args.runs)
        hdr = "%-8s %-16s %8s %8s %9s"
        print(hdr % ("form", "", "wall s", "cpu s", "peak MiB"))
        for name, (p, mb) in forms.items():
            out = os.path.join(work, "out.h5ad")
            ours, base, py = [], [], []
            # interleaved, so a change of the machine's load hits every side alike
            for _ in range(args.runs):
                ours.append(spawn([args.bin, "export", p, "-o", out]))
                if args.baseline:
                    base.append(spawn([args.baseline, "export", p, "-o", out]))
                py.append(spawn([sys.executable, "-c", PY_CHILD, p, os.path.join(work, "py.h5ad")]))
            o = [med(x[i] for x in ours) for i in range(3)]
            q = [med(x[i] for x in py) for i in range(3)]
            print(hdr % (name, "anndata-exportd", "%.2f" % o[0], "%.2f" % o[1], "%.0f" % o[2]))
            if args.baseline:
                b = [med(x[i] for x in base) for i in range(3)]
                print(hdr % ("", "baseline", "%.2f" % b[0], "%.2f" % b[1], "%.0f" % b[2]))
            print(hdr % ("", "python", "%.2f" % q[0], "%.2f" % q[1], "%.0f" % q[2]))
            print("%-8s speed-up wall %.1fx, cpu %.1fx; peak RSS %.2fx of Python's" %
                  ("", q[0] / o[0], q[1] / o[1], o[2] / q[2]))
            if args.baseline:
                print("%-8s baseline: %.1fx / %.1fx faster than Python; now %.1fx / %.1fx"
                      " faster than the baseline (wall / cpu), %.2fx its memory" %
                      ("", q[0] / b[0], q[1] / b[1], b[0] / o[0], b[1] / o[1], o[2] / b[2]))

        print("\n2. the decoder alone (bench_jdec: parse + decode, CPU time)")
        s = os.path.join(work, "b64only.json")
        raw = np.random.default_rng(1).bytes(192 << 20)
        mb = write(s, {"adata": {"uns": {"b": {"encoding-type": "array", "dtype": "uint8",
                                               "base64": base64.b64encode(raw).decode()}}}})
        del raw
        base_jdec = args.baseline and os.path.join(os.path.dirname(args.baseline),
                                                   "tests/unit/jdec/bench_jdec")
        if base_jdec and not os.path.exists(base_jdec):
            base_jdec = None  # round 1 had no bench_jdec
        for name, (p, size) in list(forms.items()) + [("one base64 string", (s, mb))]:
            t = bench_jdec(jdec, p, args.runs)
            print("  %-18s %7.1f MB in %.3f s = %6.0f MB/s" % (name, size, t, size / t))
            if base_jdec:
                b = bench_jdec(base_jdec, p, args.runs)
                print("  %-18s baseline %.3f s = %6.0f MB/s; this build %.2fx faster" %
                      ("", b, size / b, b / t))
        os.unlink(s)

        print("\n3. scaling (whole export, h5ad without compression)")
        for n in (25000, 50000, 100000):
            p = os.path.join(work, "keys.json")
            size = write(p, {"adata": {"X": [[1]], "uns": {"k%d" % i: i for i in range(n)}},
                             "compression": None})
            r = [spawn([args.bin, "export", p, "-o", os.path.join(work, "k.h5ad")])
                 for _ in range(args.runs)]
            print("  uns with %6d keys (%.1f MB): cpu %.2f s, wall %.2f s, peak %.0f MiB" %
                  (n, size, med(x[1] for x in r), med(x[0] for x in r), med(x[2] for x in r)))
            if args.baseline:
                r = spawn([args.baseline, "export", p, "-o", os.path.join(work, "k.h5ad")])
                print("  %27s baseline: cpu %.2f s, wall %.2f s, peak %.0f MiB (one run)" %
                      ("", r[1], r[0], r[2]))
        p = os.path.join(work, "objs.json")
        k = 3_000_000
        with open(p, "w") as f:
            f.write('{"adata":{"X":[[1]],"uns":{"a":[' + ",".join(["{}"] * k) + "]}}}")
        size = os.path.getsize(p) / 1e6
        r = [spawn([args.bin, "export", p, "-o", os.path.join(work, "o.h5ad")])
             for _ in range(args.runs)]
        print("  uns list of %d empty objects (%.1f MB): cpu %.2f s, peak %.0f MiB" %
              (k, size, med(x[1] for x in r), med(x[2] for x in r)))
        if args.baseline:
            r = spawn([args.baseline, "export", p, "-o", os.path.join(work, "o.h5ad")])
            print("  %41s baseline: cpu %.2f s, peak %.0f MiB (one run)" % ("", r[1], r[2]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
