#!/usr/bin/python3
"""Benchmark the binary-part form of the export request against Python.

The request of bench_export.py (Polis-shaped, participants x statements)
with its two big arrays moved out of the JSON into .npy parts: X (float64,
~40% NaN) and the float32 layer. anndata-exportd runs
`export REQ.json --part X=X.npy --part imputed=imputed.npy` (and, with
--daemon, the same as a multipart POST to a running daemon); the baseline
is what a Python service does with the same inputs: json.load of the small
request, np.load of both parts, building the AnnData object, write_h5ad.
Both sides write h5ad with the same compression. Medians of --runs, wall
time, CPU time (user + sys) and peak RSS of each process (/usr/bin/time).

    /usr/bin/python3 bench/bench_parts.py --bin build/anndata-exportd
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_export import TIME, make_request, med, spawn  # noqa: E402

PY_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import numpy as np
import anndata  # import cost excluded: a service has it loaded
from bench_export import build_anndata
req_path, x_path, l_path, out, comp = sys.argv[2:7]
t0, c0 = time.perf_counter(), time.process_time()
with open(req_path) as f:
    req = json.load(f)
X = np.load(x_path)
imputed = np.load(l_path)
a = req["adata"]
arr = {"adata_json": a, "X": X, "imputed": imputed,
       "labels": a["obs"]["columns"]["kmeans_polis"],
       "pca": np.asarray(a["obsm"]["X_pca_polis"]),
       "varm": np.asarray(a["varm"]["X_pca_masked_unscaled"]),
       "statements": a["uns"]["statements"]["columns"],
       "vote_rows": a["uns"]["votes"]["columns"]}
ad = build_anndata(arr, X.shape[0], X.shape[1])
ad.write_h5ad(out, compression=None if comp == "none" else comp)
sys.stderr.write("%.6f %.6f\n" % (time.perf_counter() - t0, time.process_time() - c0))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--obs", type=int, default=4000)
    ap.add_argument("--vars", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--daemon", help="base URL of a running daemon to POST multipart to")
    args = ap.parse_args()
    if not os.path.exists(TIME):
        raise SystemExit("needs %s (apt-get install time)" % TIME)
    here = os.path.dirname(os.path.abspath(__file__))
    work = tempfile.mkdtemp(prefix="adx-bench-parts-")
    try:
        req, arr = make_request(args.obs, args.vars)
        a = req["adata"]
        a["X"] = {"encoding-type": "array", "part": "X"}
        a["layers"]["X_masked_imputed_mean"] = {"encoding-type": "array", "part": "imputed"}
        x_path = os.path.join(work, "X.npy")
        l_path = os.path.join(work, "imputed.npy")
        np.save(x_path, arr["X"])
        np.save(l_path, arr["imputed"])
        print("request: %d x %d; X.npy %.1f MB, imputed.npy %.1f MB; load average %s" %
              (args.obs, args.vars, os.path.getsize(x_path) / 1e6, os.path.getsize(l_path) / 1e6,
               " ".join("%.1f" % x for x in os.getloadavg())))
        print("medians of %d runs; ratio = Python / anndata-exportd (> 1: faster)" % args.runs)
        print("%-34s %8s %8s %9s %8s %8s" % ("", "wall s", "cpu s", "peak MiB", "ratio", "file MB"))
        for comp in ("gzip", "lzf", "none"):
            r = dict(req)
            r["compression"] = None if comp == "none" else comp
            req_path = os.path.join(work, "req-%s.json" % comp)
            with open(req_path, "w") as f:
                json.dump(r, f, allow_nan=False, separators=(",", ":"))
            out = os.path.join(work, "out.h5ad")
            ours = [spawn([args.bin, "export", req_path, "-o", out, "--part", "X=" + x_path,
                           "--part", "imputed=" + l_path]) for _ in range(args.runs)]
            ours_mb = os.path.getsize(out) / 1e6
            py = []
            ref = os.path.join(work, "ref.h5ad")
            for _ in range(args.runs):
                _, _, rss, err = spawn([sys.executable, "-c", PY_CHILD, here, req_path, x_path,
                                        l_path, ref, comp])
                w, c = (float(x) for x in err.decode().split()[-2:])
                py.append((w, c, rss))
            ow, oc, om = (med(x[i] for x in ours) for i in range(3))
            pw, pc, pm = (med(x[i] for x in py) for i in range(3))
            print("%-34s %8.2f %8.2f %9.0f %7.1fx %8.1f" %
                  ("anndata-exportd --part, " + comp, ow, oc, om, pw / ow, ours_mb))
            print("%-34s %8.2f %8.2f %9.0f %8s %8.1f" %
                  ("  np.load + anndata write, " + comp, pw, pc, pm, "",
                   os.path.getsize(ref) / 1e6))
            if args.daemon and comp == "gzip":
                import subprocess
                import time
                runs = []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    p = subprocess.run(
                        ["curl", "-sS", "-o", out, "-w", "%{http_code}",
                         "-F", "request=@%s;type=application/json" % req_path,
                         "-F", "X=@" + x_path, "-F", "imputed=@" + l_path,
                         args.daemon.rstrip("/") + "/v1/exports?wait=600"],
                        capture_output=True)
                    runs.append(time.perf_counter() - t)
                    if p.stdout != b"200":
                        raise SystemExit("daemon: %s %s" % (p.stdout, p.stderr))
                print("%-34s %8.2f %8s %9s %7.1fx" %
                      ("  daemon multipart POST ?wait", med(runs), "", "", pw / med(runs)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
