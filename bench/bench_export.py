#!/usr/bin/python3
"""Benchmark the one-shot export against anndata's own writer.

Generates a Polis-shaped export request (participants x statements votes with
~40% unseen, a float32 layer as typed base64, obs/var columns including
kmeans_* labels, uns frames), runs `anndata-exportd export` several times per
format and compression (h5ad gzip/lzf/none, npz deflated/stored) and prints the median wall time, CPU time (user + sys, steadier
than wall time on a shared machine) and peak RSS of the child. The
baseline is anndata 0.8 writing the same object from Python (write_h5ad only,
the object already in memory) plus json.load of the request, which is what a
Python service would do; for npz it is numpy's savez_compressed / savez of
the same arrays. The "parse only" row is anndata-exportd itself stopped
right after the request has been parsed (before the model is decoded), to
show what parsing costs compared with the whole job.

Run with Debian's python3 (it needs anndata, numpy, pandas):
    /usr/bin/python3 bench/bench_export.py --bin build/anndata-exportd
"""

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.simplefilter("ignore")


def make_request(n_obs, n_vars, seed=0, max_vote_rows=200_000):
    rng = np.random.default_rng(seed)
    votes = rng.choice([-1.0, 0.0, 1.0], size=(n_obs, n_vars), p=[0.3, 0.2, 0.5])
    unseen = rng.random((n_obs, n_vars)) < 0.4
    X = np.where(unseen, np.nan, votes)
    imputed = np.where(unseen, np.nanmean(X, axis=0, keepdims=True), X).astype(np.float32)
    n_votes = (~unseen).sum(axis=1)
    n_agree = ((X == 1) & ~unseen).sum(axis=1)
    n_dis = ((X == -1) & ~unseen).sum(axis=1)
    labels = rng.integers(-1, 4, size=n_obs).tolist()
    for i in rng.choice(n_obs, size=n_obs // 10, replace=False):
        labels[i] = None  # never clustered
    pca = rng.normal(size=(n_obs, 2))
    varm = rng.normal(size=(n_vars, 2))

    vi, vj = np.nonzero(~unseen)
    keep = min(len(vi), max_vote_rows)
    vote_rows = {
        "timestamp": (1632834136 + np.arange(keep)).tolist(),
        "comment-id": vj[:keep].tolist(),
        "voter-id": vi[:keep].tolist(),
        "vote": X[vi[:keep], vj[:keep]].astype(int).tolist(),
    }
    statements = {
        "comment-id": list(range(n_vars)),
        "comment-body": ["Statement %d about the proposal" % j for j in range(n_vars)],
        "is-seed": [None] * n_vars,
        "lang": ["en" if j % 2 else None for j in range(n_vars)],
    }

    def nested(a):
        return [[None if v != v else v for v in row] for row in a.tolist()]

    adata = {
        "X": nested(X),
        "obs": {"index": [str(i) for i in range(n_obs)], "index_name": "voter-id", "columns": {
            "n_votes": n_votes.tolist(), "n_agree": n_agree.tolist(),
            "n_disagree": n_dis.tolist(),
            "pct_agree": (n_agree / np.maximum(n_votes, 1)).tolist(),
            "cluster_mask": (n_votes >= 7).tolist(),
            "kmeans_polis": labels}},
        "var": {"index": [str(j) for j in range(n_vars)], "index_name": "comment-id", "columns": {
            "content": ["Statement %d about the proposal" % j for j in range(n_vars)],
            "participant_id_authored": rng.integers(0, n_obs, size=n_vars).tolist(),
            "created_date": (1632834136 + np.arange(n_vars) * 60).tolist(),
            "moderation_state": rng.choice([-1, 0, 1], size=n_vars).tolist(),
            "is_seed": [None] * n_vars,
            "is_meta": [False] * n_vars}},
        "obsm": {"X_pca_polis": pca.tolist()},
        "varm": {"X_pca_masked_unscaled": varm.tolist()},
        "layers": {"X_masked_imputed_mean": {
            "encoding-type": "array", "dtype": "float32", "shape": [n_obs, n_vars],
            "base64": base64.b64encode(imputed.tobytes()).decode()}},
        "uns": {
            "votes": {"encoding-type": "dataframe", "columns": vote_rows},
            "statements": {"encoding-type": "dataframe", "columns": statements},
            "kmeans_polis": {"best_k": 4, "k_bounds": [2, 5], "best_score": 0.41},
        },
    }
    arrays = dict(X=X, imputed=imputed, n_votes=n_votes, n_agree=n_agree, n_dis=n_dis,
                  labels=labels, pca=pca, varm=varm, vote_rows=vote_rows,
                  statements=statements, adata_json=adata)
    return {"adata": adata, "filename": "bench.h5ad"}, arrays


def build_anndata(arr, n_obs, n_vars):
    """The same object as anndata would hold it after the reference
    sanitization (null strings → "", labels categorical)."""
    import anndata
    import pandas as pd

    a = arr["adata_json"]
    obs = pd.DataFrame({k: v for k, v in a["obs"]["columns"].items() if k != "kmeans_polis"},
                       index=pd.Index(a["obs"]["index"]))
    obs["kmeans_polis"] = pd.Categorical(arr["labels"])
    var = pd.DataFrame(a["var"]["columns"], index=pd.Index(a["var"]["index"]))
    var["is_seed"] = ""
    # dtype: anndata 0.8 would otherwise store X as float32.
    ad = anndata.AnnData(X=arr["X"], obs=obs, var=var, dtype=arr["X"].dtype,
                         obsm={"X_pca_polis": arr["pca"]},
                         varm={"X_pca_masked_unscaled": arr["varm"]},
                         layers={"X_masked_imputed_mean": arr["imputed"]})
    st = pd.DataFrame(arr["statements"]).fillna("")
    votes = pd.DataFrame(arr["vote_rows"])
    votes.index = votes.index.astype(str)  # as the service stores indexes
    ad.uns["votes"] = votes
    ad.uns["statements"] = st
    ad.uns["kmeans_polis"] = {"best_k": 4, "k_bounds": np.array([2, 5]), "best_score": 0.41}
    return ad


TIME = "/usr/bin/time"  # Debian package "time"


def spawn(cmd, ok_codes=(0,), stdout_path=None):
    """Run cmd; return (wall s, cpu s = user + sys, peak RSS MiB, stderr).
    stdout_path: a file that receives the child's stdout (else discarded).

    RSS and CPU come from /usr/bin/time, not from wait4() here: Linux carries
    a child's RSS high-water mark over from the parent at fork, so a child of
    this (large) Python process would report at least our own size."""
    stat_file = tempfile.NamedTemporaryFile(prefix="adx-rss-", delete=False)
    stat_file.close()
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    t0 = time.perf_counter()
    p = subprocess.run([TIME, "-f", "%M %U %S", "-o", stat_file.name] + cmd,
                       stdout=out, stderr=subprocess.PIPE)
    if stdout_path:
        out.close()
    wall = time.perf_counter() - t0
    with open(stat_file.name) as f:
        rss_kib, user, sys_ = f.read().split()[-3:]
    os.unlink(stat_file.name)
    if p.returncode not in ok_codes:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), p.stderr.decode(errors="replace")[:2000]))
    return wall, float(user) + float(sys_), int(rss_kib) / 1024.0, p.stderr


JSON_CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
with open(sys.argv[1]) as f:
    json.load(f)
sys.stderr.write("%.6f %.6f\n" % (time.perf_counter() - t0, time.process_time() - c0))
"""


VARIANTS = (("h5ad", "gzip"), ("h5ad", "lzf"), ("h5ad", None), ("npz", "gzip"), ("npz", None))


def npz_arrays(a):
    """The arrays of AnnData `a` as numpy would save them without pickles."""
    import pandas as pd

    def plain(v):
        v = np.asarray(v)
        return v.astype(str) if v.dtype == object else v

    out = {"X": plain(a.X)}

    def frame(ns, f):
        out[ns + "/_index"] = plain(f.index)
        for col in f.columns:
            v = f[col]
            if isinstance(v.dtype, pd.CategoricalDtype):
                out["%s/%s/codes" % (ns, col)] = v.cat.codes.to_numpy()
                out["%s/%s/categories" % (ns, col)] = plain(v.cat.categories)
            else:
                out["%s/%s" % (ns, col)] = plain(v.to_numpy())

    def uns(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                uns(prefix + k + "/", v)
            elif isinstance(v, pd.DataFrame):
                frame(prefix + k, v)
            else:
                out[prefix + k] = plain(v)

    frame("obs", a.obs)
    frame("var", a.var)
    for ns in ("obsm", "varm", "layers"):
        for k, v in getattr(a, ns).items():
            out["%s/%s" % (ns, k)] = plain(v)
    uns("uns/", a.uns)
    return out


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("ADX_BIN", "build/anndata-exportd"))
    ap.add_argument("--obs", type=int, default=4000, help="participants")
    ap.add_argument("--vars", type=int, default=1000, help="statements")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if not os.path.exists(TIME):
        raise SystemExit("needs %s (apt-get install time)" % TIME)

    work = tempfile.mkdtemp(prefix="adx-bench-")
    try:
        t0 = time.perf_counter()
        req, arr = make_request(args.obs, args.vars)
        req_path = os.path.join(work, "request.json")
        with open(req_path, "w") as f:
            json.dump(req, f, allow_nan=False, separators=(",", ":"))
        size_mb = os.path.getsize(req_path) / 1e6
        print("request: %d x %d, %.1f MB JSON (generated in %.1f s); load average %s" %
              (args.obs, args.vars, size_mb, time.perf_counter() - t0,
               " ".join("%.1f" % x for x in os.getloadavg())))

        ours = {}
        for fmt, comp in VARIANTS:
            r = dict(req)
            r["compression"] = comp
            r["format"] = fmt
            r["filename"] = "bench." + fmt
            p = os.path.join(work, "req-%s-%s.json" % (fmt, comp))
            with open(p, "w") as f:
                json.dump(r, f, allow_nan=False, separators=(",", ":"))
            runs, stages = [], []
            out = os.path.join(work, "out." + fmt)
            job = os.path.join(work, "job.json")
            for _ in range(args.runs):
                w, c, m, _ = spawn(["/bin/sh", "-c",
                                    'exec "$0" export "$1" -o "$2" --timings > "$3"',
                                    args.bin, p, out, job])
                runs.append((w, c, m))
                with open(job) as f:
                    stages.append(json.load(f)["timings"])
            ours[fmt, comp] = (med(r[0] for r in runs), med(r[1] for r in runs),
                          med(r[2] for r in runs), os.path.getsize(out) / 1e6,
                          {k: med(s[k] for s in stages) for k in stages[0]})
            os.unlink(p)

        # The binary itself, stopped right after parsing: an unknown member
        # makes req_parse fail before anything is decoded, so this is the
        # file read + parse exactly as the export job pays it.
        r = dict(req)
        r["x-stop-after-parse"] = True
        p = os.path.join(work, "req-parse.json")
        with open(p, "w") as f:
            json.dump(r, f, allow_nan=False, separators=(",", ":"))
        jn = [spawn([args.bin, "export", p, "-o", os.path.join(work, "never.h5ad")],
                    ok_codes=(2,)) for _ in range(args.runs)]
        parse = (med(x[0] for x in jn), med(x[1] for x in jn), med(x[2] for x in jn))

        jl = []
        for _ in range(args.runs):
            _, _, rss, err = spawn([sys.executable, "-c", JSON_CHILD, req_path])
            w, c = (float(x) for x in err.decode().split()[-2:])
            jl.append((w, c, rss))
        _, _, rss_empty, _ = spawn([sys.executable, "-c", "pass"])
        json_load = (med(x[0] for x in jl), med(x[1] for x in jl),
                     med(x[2] for x in jl) - rss_empty)

        import anndata  # noqa: F401  (import cost excluded from the timings)
        ad = build_anndata(arr, args.obs, args.vars)
        base = {}
        for comp in ("gzip", "lzf", None):
            runs = []
            out = os.path.join(work, "ref.h5ad")
            for _ in range(args.runs):
                t, c = time.perf_counter(), time.process_time()
                ad.write_h5ad(out, compression=comp)
                runs.append((time.perf_counter() - t, time.process_time() - c))
            base["h5ad", comp] = (med(r[0] for r in runs), med(r[1] for r in runs),
                                  os.path.getsize(out) / 1e6)
        # npz baseline: numpy writing the same arrays (strings as fixed-width
        # unicode, categoricals as codes + categories, as the npz output has
        # them) with savez_compressed / savez.
        arrays = npz_arrays(ad)
        for comp, save in (("gzip", np.savez_compressed), (None, np.savez)):
            runs = []
            out = os.path.join(work, "ref.npz")
            for _ in range(args.runs):
                t, c = time.perf_counter(), time.process_time()
                save(out, **arrays)
                runs.append((time.perf_counter() - t, time.process_time() - c))
            base["npz", comp] = (med(r[0] for r in runs), med(r[1] for r in runs),
                                 os.path.getsize(out) / 1e6)

        print("\nmedians of %d runs; ratio = (anndata write_h5ad or numpy savez + json.load) / "
              "anndata-exportd, > 1 means faster" % args.runs)
        hdr = "%-24s %8s %8s %9s %8s %11s %11s"
        print(hdr % ("", "wall s", "cpu s", "peak MiB", "file MB", "ratio wall", "ratio cpu"))
        row = "%-24s %8.2f %8.2f %9s %8.1f %11s %11s"
        for fmt, comp in VARIANTS:
            name = "%s %s" % (fmt, comp or "none")
            w, c, m, mb, st = ours[fmt, comp]
            bw, bc, bmb = base[fmt, comp]
            print(row % ("anndata-exportd " + name, w, c, "%.0f" % m, mb,
                         "%.2fx" % ((bw + json_load[0]) / w), "%.2fx" % ((bc + json_load[1]) / c)))
            ref = "  anndata write " if fmt == "h5ad" else \
                ("  numpy savez_compressed" if comp else "  numpy savez")
            print(row % (ref if fmt == "npz" else ref + (comp or "none"), bw, bc, "", bmb, "", ""))
            print("    stages (wall): load %.2f s (parse + decode), prepare %.2f s, write %.2f s" %
                  (st["load_s"], st["prepare_s"], st["write_s"]))
        print(row.replace("%8.1f", "%8s") % ("python json.load", json_load[0], json_load[1],
                                              "%.0f" % json_load[2], "", "", ""))
        print(row.replace("%8.1f", "%8s") % ("exportd parse only", parse[0], parse[1],
                                              "%.0f" % parse[2], "", "", ""))
        g = ours["h5ad", "gzip"]
        print("\nparse (file read + parse, whole process) = %.0f%% of the gzip job's cpu time "
              "and %.0f%% of its wall time; its peak RSS %.0f MiB = %.0f%% of the job's %.0f MiB" %
              (100 * parse[1] / g[1], 100 * parse[0] / g[0], parse[2], 100 * parse[2] / g[2], g[2]))
    finally:
        if args.keep:
            print("work directory:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
