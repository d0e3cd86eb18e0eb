#!/usr/bin/python3
"""What `include` saves on a large h5ad: the h5ad reader opens only the
elements the filter keeps (plus X and raw), so a filtered export of a big
file does not pay for what it drops.

Writes one h5ad of about --gb GB with anndata (a small sparse X, two dense
float32 layers that hold almost all the bytes, obsm X_pca / X_umap, obs
columns, uns), then runs `anndata-exportd export` --runs times each:
  full      everything, h5ad uncompressed
  include   --include obsm/X_pca, h5ad uncompressed
and prints the median wall time, the load stage (`--timings`) and peak RSS
(wait4's ru_maxrss), and the output size.

usage: /usr/bin/python3 bench/bench_include.py --bin build/anndata-exportd
       [--gb 1.0] [--runs 3] [--dir /var/tmp]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.simplefilter("ignore")


def make(path, gb):
    import anndata as ad

    n_vars = 1000
    # two float32 layers of n_obs x n_vars carry the size
    n_obs = max(1000, int(gb * (1 << 30) / (2 * 4 * n_vars)))
    rng = np.random.default_rng(0)
    X = sp.random(n_obs, n_vars, density=0.01, format="csr", dtype=np.float32, random_state=0)
    a = ad.AnnData(X=X, dtype=np.float32)
    a.obs["kmeans"] = pd.Categorical(rng.integers(0, 8, n_obs).astype(str))
    a.obs["n_genes"] = rng.integers(0, 5000, n_obs)
    for k in ("counts", "spliced"):
        a.layers[k] = rng.random((n_obs, n_vars), dtype=np.float32)
    a.obsm["X_pca"] = rng.random((n_obs, 50), dtype=np.float32)
    a.obsm["X_umap"] = rng.random((n_obs, 2))
    a.uns["note"] = "bench"
    a.write_h5ad(path)  # uncompressed: the read, not inflate, is measured
    return n_obs, n_vars


def run_rss(binary, src, out, extra):
    """Wall time, load stage, peak RSS (MiB) of one export."""
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "export", src, "-o", out, "--compression", "none",
                          "--timings", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = p.stdout.read()
    p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit("export failed")
    job = json.loads(stdout)
    load = job.get("timings", {}).get("load_s")
    return wall, load, ru.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/anndata-exportd")
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--make", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make:
        print(*make(args.make, args.gb))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        src = os.path.join(d, "big.h5ad")
        # Built in a child: Linux carries a parent's peak RSS over fork and
        # exec into the child's ru_maxrss, so this process must stay small.
        made = subprocess.run([sys.executable, __file__, "--gb", str(args.gb), "--make", src],
                              capture_output=True, text=True, check=True)
        n_obs, n_vars = map(int, made.stdout.split())
        size = os.path.getsize(src) / 1e6
        print(f"input: {n_obs} x {n_vars}, {size:.0f} MB on disk")
        print(f"medians of {args.runs} runs")
        print(f"{'':28s}{'wall s':>8s}{'load s':>8s}{'peak MiB':>10s}{'out MB':>8s}")
        for name, extra in (("full", []), ("include obsm/X_pca", ["--include", "obsm/X_pca"])):
            out = os.path.join(d, "out.h5ad")
            rows = [run_rss(args.bin, src, out, extra) for _ in range(args.runs)]
            wall = statistics.median(r[0] for r in rows)
            loads = [r[1] for r in rows if r[1] is not None]
            load = statistics.median(loads) if loads else float("nan")
            rss = statistics.median(r[2] for r in rows)
            print(f"{name:28s}{wall:8.2f}{load:8.2f}{rss:10.0f}{os.path.getsize(out) / 1e6:8.1f}")
            os.unlink(out)


if __name__ == "__main__":
    main()
