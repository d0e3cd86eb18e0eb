"""Reads files written by the h5ad writer (via h5w_driver and the sample
model in sample_model.c) with anndata.read_h5ad and h5py, for gzip, lzf and
no compression, and checks values, dtypes, missing values and filters.

Usage: test_h5w_anndata.py PATH/TO/h5w_driver
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

import anndata
import h5py
import numpy as np
import pandas as pd

warnings.simplefilter("ignore", FutureWarning)

DRIVER = sys.argv[1]
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what)


def write(tmp, comp, level=None):
    path = os.path.join(tmp, f"sample_{comp}_{level}.h5ad")
    args = [DRIVER, path, comp] + ([str(level)] if level is not None else [])
    out = subprocess.run(args, capture_output=True, text=True)
    check(out.returncode == 0, f"driver {comp} {level}: {out.stderr}")
    check(json.loads(out.stdout) == [], f"empty report for the sample: {out.stdout}")
    return path


def check_anndata(path, tag):
    a = anndata.read_h5ad(path)
    check(a.shape == (5, 4), f"{tag}: shape {a.shape}")
    x = np.array([-1, 0, 1, np.nan, 0.5, 2, -3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                 dtype=np.float64).reshape(5, 4)
    check(a.X.dtype == np.float64, f"{tag}: X dtype {a.X.dtype}")
    check(np.array_equal(a.X, x, equal_nan=True), f"{tag}: X values")

    obs = a.obs
    check(list(obs.index) == ["p0", "p1", "p2", "pé", "日"], f"{tag}: obs index {list(obs.index)}")
    check(list(obs.columns) == ["n_i8", "n_i16", "n_i32", "n_i64", "n_u8", "n_u16", "n_u32",
                                "n_u64", "n_f32", "n_f64", "flag", "label", "kmeans", "group",
                                "nint", "nbool"], f"{tag}: column order")
    for col, dt in [("n_i8", "int8"), ("n_i16", "int16"), ("n_i32", "int32"), ("n_i64", "int64"),
                    ("n_u8", "uint8"), ("n_u16", "uint16"), ("n_u32", "uint32"),
                    ("n_u64", "uint64"), ("n_f32", "float32"), ("n_f64", "float64")]:
        check(obs[col].dtype == np.dtype(dt), f"{tag}: {col} dtype {obs[col].dtype}")
    check(list(obs["n_i16"]) == [1, -2, 3, 4, 5], f"{tag}: n_i16 values")
    check(obs["flag"].dtype == np.bool_, f"{tag}: bool column dtype {obs['flag'].dtype}")
    check(list(obs["flag"]) == [True, False, True, True, False], f"{tag}: bool values")
    check(list(obs["label"]) == ["a", "bü", "", "d", "😀"], f"{tag}: label values")

    km = obs["kmeans"]
    check(isinstance(km.dtype, pd.CategoricalDtype), f"{tag}: kmeans categorical")
    check(km.cat.categories.dtype == np.int64, f"{tag}: int categories stay int "
          f"({km.cat.categories.dtype})")
    check(list(km.cat.categories) == [-1, 10, 20], f"{tag}: kmeans categories")
    # -1 as a category (Polis noise) differs from a missing code (never clustered)
    check(list(km.isna()) == [False, False, True, False, False], f"{tag}: kmeans isna")
    check(list(km == -1) == [False, False, False, True, False], f"{tag}: kmeans == -1")
    check(list(km.cat.codes) == [1, 2, -1, 0, 2], f"{tag}: kmeans codes incl. -1")
    check(not km.cat.ordered, f"{tag}: kmeans unordered")
    grp = obs["group"]
    check(grp.cat.ordered, f"{tag}: group ordered")
    check(list(grp.cat.categories) == ["x", "yé"], f"{tag}: group categories")
    check(list(grp.isna()) == [False, False, False, True, False], f"{tag}: group isna")

    check(str(obs["nint"].dtype) == "Int64", f"{tag}: nullable int dtype {obs['nint'].dtype}")
    check(list(obs["nint"].isna()) == [False, True, False, False, True], f"{tag}: nint mask")
    check(obs["nint"][0] == 1 and obs["nint"][3] == 4, f"{tag}: nint values")
    check(str(obs["nbool"].dtype) == "boolean", f"{tag}: nullable bool dtype")
    check(list(obs["nbool"].isna()) == [False, True, False, False, True], f"{tag}: nbool mask")
    check(obs["nbool"][0] is True or obs["nbool"][0] == True, f"{tag}: nbool value")  # noqa: E712

    check(list(a.var.index) == ["g0", "g1", "g2", "g3"], f"{tag}: var index")
    check(a.var.index.name == "gene", f"{tag}: var index name {a.var.index.name}")
    check(len(a.var.columns) == 0, f"{tag}: var has no columns")

    check(a.obsm["X_pca"].dtype == np.float32, f"{tag}: X_pca float32")
    check(np.allclose(a.obsm["X_pca"][:, 1], [-0.5, 2.5, 4, 6.125, 8]), f"{tag}: X_pca values")
    sp = a.obsm["sp"]
    check(sp.format == "csr" and sp.shape == (5, 4), f"{tag}: csr {sp.format} {sp.shape}")
    dense = np.zeros((5, 4), dtype=np.float32)
    dense[0, 0], dense[2, 1], dense[3, 3] = 1, 2, 3
    check(np.array_equal(sp.toarray(), dense), f"{tag}: csr values")
    df = a.obsm["df"]
    check(isinstance(df, pd.DataFrame) and list(df.columns) == ["n_i8"]
          and list(df.index) == list(obs.index), f"{tag}: obsm frame")
    e = a.obsm["sp_empty"]
    check(e.format == "csr" and e.shape == (5, 4) and e.nnz == 0, f"{tag}: empty csr")
    check(a.obsp["conn"].format == "csc" and a.obsp["conn"].shape == (5, 5), f"{tag}: csc")
    check(a.layers["counts"].dtype == np.int32, f"{tag}: layer dtype")
    check(len(a.varm.keys()) == 0, f"{tag}: empty varm")

    u = a.uns
    check(list(u.keys()) == ["s_str", "s_f64", "s_i64", "s_bool", "cube", "grid", "empty",
                             "nested", "frame", "big"],
          f"{tag}: uns insertion order {list(u.keys())}")
    big = np.arange(3000 * 200, dtype=np.int64).reshape(3000, 200) % 7
    check(u["big"].dtype == np.int32 and np.array_equal(u["big"], big), f"{tag}: uns big")
    check(u["s_str"] == "héllo", f"{tag}: uns string")
    check(u["s_f64"] == 1.5 and u["s_i64"] == 42, f"{tag}: uns numbers")
    check(isinstance(u["s_bool"], (bool, np.bool_)) and bool(u["s_bool"]), f"{tag}: uns bool")
    check(u["cube"].shape == (2, 2, 2) and u["cube"].dtype == np.int16, f"{tag}: uns cube")
    check(u["grid"].shape == (2, 2) and u["grid"][1, 0] == "c", f"{tag}: uns grid")
    check(u["empty"].shape == (0,), f"{tag}: uns empty")
    check(u["nested"]["inner"]["deep"] == 42, f"{tag}: nested dict")
    check(isinstance(u["frame"], pd.DataFrame) and list(u["frame"]["v"]) == [1.5, 1.5],
          f"{tag}: uns frame")

    check(a.raw is not None and a.raw.X.dtype == np.float32, f"{tag}: raw X")
    check(list(a.raw.var.index) == ["g0", "g1", "g2", "g3"], f"{tag}: raw var")


def check_h5py(path, comp, level, tag):
    with h5py.File(path, "r") as f:
        check(f["obs/flag"].dtype == np.bool_, f"{tag}: h5py bool dtype {f['obs/flag'].dtype}")
        check(f["obs/nint/mask"].dtype == np.bool_, f"{tag}: h5py mask dtype")
        check(f["obs/group"].attrs["ordered"] is np.bool_(True) or
              f["obs/group"].attrs["ordered"] == True, f"{tag}: ordered attr")  # noqa: E712
        check(type(f["obs/group"].attrs["ordered"]) is np.bool_, f"{tag}: ordered is bool")
        check(f.attrs["encoding-type"] == "anndata", f"{tag}: root encoding")
        check(list(f["obsp/conn"].attrs["shape"]) == [5, 5], f"{tag}: sparse shape attr")
        co = f["var"].attrs["column-order"]
        check(co.dtype == np.float64 and co.shape == (0,), f"{tag}: empty column-order")
        for name in ["obsm/sp/data", "obsm/sp/indices", "obsp/conn/indptr"]:
            # anndata makes sparse parts resizable so they can be appended to
            check(f[name].maxshape == (None,), f"{tag}: {name} maxshape {f[name].maxshape}")
            if comp == "none":
                check(f[name].compression is None and f[name].chunks is not None,
                      f"{tag}: {name} chunked without a filter")
        for name in ["X", "obs/_index", "obs/n_i32", "obsm/sp/data", "uns/cube", "layers/counts"]:
            d = f[name]
            if comp == "none" and name.startswith("obsm/sp"):
                pass
            elif comp == "none":
                check(d.compression is None and d.chunks is None,
                      f"{tag}: {name} uncompressed contiguous")
            else:
                check(d.compression == comp, f"{tag}: {name} compression {d.compression}")
                check(d.chunks is not None, f"{tag}: {name} chunked")
                if comp == "gzip":
                    check(d.compression_opts == level,
                          f"{tag}: {name} level {d.compression_opts} != {level}")
        if comp != "none":
            # h5py's own decompressor must see compressed chunks (mask 0) and
            # raw ones only where compression did not help
            big = f["uns/big"]
            masks = [big.id.read_direct_chunk((r, c))[0]
                     for r in range(0, 3000, big.chunks[0]) for c in range(0, 200, big.chunks[1])]
            if comp == "gzip" and level == 0:
                check(all(m == 1 for m in masks), f"{tag}: gzip 0 stores chunks raw")
            else:
                check(all(m == 0 for m in masks), f"{tag}: compressed chunks {masks[:5]}")
        for name in ["uns/s_f64", "uns/s_str", "uns/empty"]:
            check(f[name].compression is None and f[name].chunks is None,
                  f"{tag}: {name} never compressed")


def check_reads_h5py_lzf(tmp):
    """Chunks compressed by h5py's own lzf filter decode with ours."""
    path = os.path.join(tmp, "h5py_lzf.h5")
    data = np.arange(200000, dtype=np.int64) % 11
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=data, compression="lzf")
        check(f["v"].id.read_direct_chunk((0,))[0] == 0, "h5py compressed its chunk")
    out = subprocess.run([DRIVER, "--read-sum", path, "v"], capture_output=True, text=True)
    check(out.returncode == 0 and int(out.stdout) == int(data.sum()),
          f"our lzf decoder on h5py data: {out.stdout} {out.stderr}")


def check_empty(tmp):
    """No X, three observations, no variables: anndata reads X as None."""
    path = os.path.join(tmp, "empty.h5ad")
    out = subprocess.run([DRIVER, path, "gzip", "4", "--empty"], capture_output=True, text=True)
    check(out.returncode == 0, f"driver --empty: {out.stderr}")
    a = anndata.read_h5ad(path)
    check(a.X is None and a.shape == (3, 0), f"empty: X {a.X} shape {a.shape}")
    check(list(a.obs.index) == ["0", "1", "2"], f"empty: obs index {list(a.obs.index)}")
    check(len(a.uns) == 0 and len(a.obsm) == 0, "empty: mappings empty")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_reads_h5py_lzf(tmp)
        check_empty(tmp)
        for comp, level in [("gzip", 4), ("gzip", 9), ("gzip", 0), ("lzf", None), ("none", None)]:
            tag = f"{comp}{level if level is not None else ''}"
            path = write(tmp, comp, level)
            if not os.path.exists(path):
                continue
            check_anndata(path, tag)
            check_h5py(path, comp, level if level is not None else 4, tag)
    if FAILED:
        print(f"{len(FAILED)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
