#!/usr/bin/python3
"""Benchmark the binary-part form of the export request against Python.

The request of bench_export.py (Polis-shaped, participants x statements)
with its two big arrays moved out of the JSON into .npy parts: X (float64,
~40% NaN) and the float32 layer. anndata-exportd runs
`export REQ.json --part X=X.npy --part imputed=imputed.npy --timings` (and,
with --daemon, the same as a multipart POST to a running daemon); the
baseline is what a Python service does with the same inputs: json.load of
the small request, np.load of both parts, building the AnnData object,
write_h5ad. Both sides write h5ad with the same compression. Medians of
--runs, wall time, CPU time (user + sys) and peak RSS of each process
(/usr/bin/time), and the stages of each side.

What each side's time covers: ours is the whole process (exec, dynamic
linking, the export, the fsyncs, sha256 of the file, exit); Python's is
measured inside an interpreter that has anndata imported already (a
service's state), from json.load to the end of write_h5ad. Our export also
does what write_h5ad does not: the file's sha256, fsync of the file and its
directory, an atomic rename. The "+ sha256 + fsync" row adds those two to
Python's time for an equal-work comparison; the ratio column is against
the plain Python time (the issue's definition). With --baseline, another
build (bench/build_baseline.sh) runs the same exports, interleaved.

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
import hashlib, json, os, sys, time, warnings
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
t1 = time.perf_counter()
ad.write_h5ad(out, compression=None if comp == "none" else comp)
t2, c2 = time.perf_counter(), time.process_time()
# What our export guarantees on top: the file's sha256, file + directory fsync.
h = hashlib.sha256()
with open(out, "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
    os.fsync(f.fileno())
d = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
os.fsync(d)
os.close(d)
t3, c3 = time.perf_counter(), time.process_time()
sys.stderr.write("%.6f %.6f %.6f %.6f %.6f %.6f\n" %
                 (t2 - t0, c2 - c0, t1 - t0, t2 - t1, t3 - t2, c3 - c2))
"""


def loadavg():
    return " ".join("%.1f" % x for x in os.getloadavg())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--obs", type=int, default=4000)
    ap.add_argument("--vars", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--daemon", help="base URL of a running daemon to POST multipart to")
    ap.add_argument("--baseline", help="another anndata-exportd build (bench/build_baseline.sh)"
                    " run interleaved with this one and Python")
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
        print("request: %d x %d; X.npy %.1f MB, imputed.npy %.1f MB" %
              (args.obs, args.vars, os.path.getsize(x_path) / 1e6, os.path.getsize(l_path) / 1e6))
        print("medians of %d runs; ratio = Python / anndata-exportd (> 1: faster)" % args.runs)
        print("%-36s %7s %7s %9s %8s %8s %8s" % ("", "wall s", "cpu s", "peak MiB", "ratio",
                                                 "cpu rat", "file MB"))
        for comp in ("gzip", "lzf", "none"):
            la0 = loadavg()
            r = dict(req)
            r["compression"] = None if comp == "none" else comp
            req_path = os.path.join(work, "req-%s.json" % comp)
            with open(req_path, "w") as f:
                json.dump(r, f, allow_nan=False, separators=(",", ":"))
            out = os.path.join(work, "out.h5ad")
            job_json = os.path.join(work, "job.json")
            parts = ["--part", "X=" + x_path, "--part", "imputed=" + l_path]
            ours, stages, base, py = [], [], [], []
            ref = os.path.join(work, "ref.h5ad")
            # interleaved, so a change of the machine's load hits every side alike
            for _ in range(args.runs):
                ours.append(spawn([args.bin, "export", req_path, "-o", out, "--timings"] + parts,
                                  stdout_path=job_json))
                with open(job_json) as f:
                    t = json.load(f)["timings"]
                stages.append((t["load_s"], t["prepare_s"], t["write_s"],
                               ours[-1][0] - t["load_s"] - t["prepare_s"] - t["write_s"]))
                ours_mb = os.path.getsize(out) / 1e6
                if args.baseline:
                    base.append(spawn([args.baseline, "export", req_path, "-o", out] + parts))
                _, _, rss, err = spawn([sys.executable, "-c", PY_CHILD, here, req_path, x_path,
                                        l_path, ref, comp])
                v = [float(x) for x in err.decode().split()[-6:]]
                py.append((v[0], v[1], rss, v[2], v[3], v[4], v[5]))
            ow, oc, om = (med(x[i] for x in ours) for i in range(3))
            sl, sp, sw, sr = (med(x[i] for x in stages) for i in range(4))
            pw, pc, pm, pl, pwr, gw, gc = (med(x[i] for x in py) for i in range(7))
            print("%-36s %7.2f %7.2f %9.0f %7.1fx %7.1fx %8.1f" %
                  ("anndata-exportd --part, " + comp, ow, oc, om, pw / ow, pc / oc, ours_mb))
            print("    stages (wall): load %.3f s, prepare %.3f s, write %.3f s (incl. sha256,"
                  " fsyncs), rest (exec, start-up, exit) %.3f s" % (sl, sp, sw, sr))
            if args.baseline:
                bw, bc, bm = (med(x[i] for x in base) for i in range(3))
                print("%-36s %7.2f %7.2f %9.0f %7.1fx %7.1fx" %
                      ("  baseline build", bw, bc, bm, pw / bw, pc / bc))
                print("    this build against the baseline: %.2fx wall, %.2fx cpu faster,"
                      " %.2fx its memory" % (bw / ow, bc / oc, om / bm))
            print("%-36s %7.2f %7.2f %9.0f %8s %8s %8.1f" %
                  ("  np.load + anndata write, " + comp, pw, pc, pm, "", "",
                   os.path.getsize(ref) / 1e6))
            print("    stages (wall): json.load + np.load + AnnData %.3f s, write_h5ad %.3f s" %
                  (pl, pwr))
            print("%-36s %7.2f %7.2f %9s %7.1fx %7.1fx" %
                  ("  + sha256 + fsync (equal work)", pw + gw, pc + gc, "", (pw + gw) / ow,
                   (pc + gc) / oc))
            print("    load average before / after: %s / %s" % (la0, loadavg()))
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
                print("%-36s %7.2f %7s %9s %7.1fx" %
                      ("  daemon multipart POST ?wait", med(runs), "", "", pw / med(runs)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
