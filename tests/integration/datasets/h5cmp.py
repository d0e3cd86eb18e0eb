"""Compare model_dump's JSON with what anndata / pandas / numpy hold.

Every mismatch is collected with its element path so one run lists all of
them; compare() raises AssertionError at the end if there were any.
"""
import json
import math
import subprocess

import numpy as np
import pandas as pd
import scipy.sparse as sp


def run_dump(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    if p.returncode not in (0, 1):
        raise AssertionError(f"model_dump {args} crashed (status {p.returncode}):\n{p.stderr}")
    if p.stderr.strip():
        raise AssertionError(f"model_dump {args} wrote to stderr:\n{p.stderr}")
    return json.loads(p.stdout)


def decode_scalar(v):
    if v == "NaN":
        return math.nan
    if v == "Infinity":
        return math.inf
    if v == "-Infinity":
        return -math.inf
    return v


def json_array(j):
    """typed JSON array -> numpy array of the same dtype and shape."""
    dt = j["dtype"]
    data = [decode_scalar(v) for v in j["data"]]
    if dt == "str":
        arr = np.array(data, dtype=object)
    else:
        arr = np.array([int(v) if isinstance(v, str) and dt == "uint64" else v for v in data], dtype=dt)
    return arr.reshape(j["shape"])


def same_values(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        a = a.astype(float)
        b = b.astype(float)
        return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return bool(np.all(a.astype(object) == b.astype(object)))


class Cmp:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append(f"{path}: {msg}")

    def array(self, j, v, path):
        if j.get("encoding-type") not in ("array", "string-array"):
            return self.err(path, f"expected an array, model has {j.get('encoding-type')}")
        got = json_array(j)
        if isinstance(v, (str, bytes)) or np.isscalar(v):
            want = np.asarray(v)
        else:
            want = np.asarray(v)
        if want.dtype.kind in "OUS":
            want = np.array([x.decode() if isinstance(x, bytes) else x for x in want.ravel()],
                            dtype=object).reshape(want.shape)
            if j["dtype"] != "str":
                return self.err(path, f"dtype {j['dtype']}, expected strings")
        elif j["dtype"] != want.dtype.name:
            return self.err(path, f"dtype {j['dtype']}, expected {want.dtype.name}")
        if not same_values(got, want):
            self.err(path, f"values differ: model {got.ravel()[:8]} vs {want.ravel()[:8]} "
                           f"(shapes {got.shape} {want.shape})")

    def sparse(self, j, v, path):
        fmt = "csr_matrix" if sp.isspmatrix_csr(v) else "csc_matrix"
        if j.get("encoding-type") != fmt:
            return self.err(path, f"model has {j.get('encoding-type')}, expected {fmt}")
        if tuple(j["shape"]) != v.shape:
            self.err(path, f"shape {j['shape']} vs {v.shape}")
        self.array(j["data"], v.data, path + "/data")
        self.array(j["indices"], v.indices, path + "/indices")
        self.array(j["indptr"], v.indptr, path + "/indptr")

    def column(self, j, s, path):
        enc = j.get("encoding-type")
        if isinstance(s.dtype, pd.CategoricalDtype):
            if enc != "categorical":
                return self.err(path, f"model has {enc}, expected categorical")
            self.array(j["codes"], s.cat.codes.values, path + "/codes")
            self.array(j["categories"], s.cat.categories.values, path + "/categories")
            if j["ordered"] != bool(s.cat.ordered):
                self.err(path, "ordered differs")
            return None
        if isinstance(s.dtype, (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype,
                                pd.UInt8Dtype, pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype,
                                pd.BooleanDtype)):
            want_enc = "nullable-boolean" if isinstance(s.dtype, pd.BooleanDtype) else "nullable-integer"
            if enc != want_enc:
                return self.err(path, f"model has {enc}, expected {want_enc}")
            mask = s.isna().values
            self.array(j["mask"], mask, path + "/mask")
            vals = json_array(j["values"])
            want = s.values._data
            if j["values"]["dtype"] != want.dtype.name:
                self.err(path, f"values dtype {j['values']['dtype']} vs {want.dtype.name}")
            if not same_values(vals[~mask], want[~mask]):
                self.err(path, "unmasked values differ")
            return None
        self.array(j, s.values, path)
        return None

    def frame(self, j, df, path):
        if j.get("encoding-type") != "dataframe":
            return self.err(path, f"model has {j.get('encoding-type')}, expected dataframe")
        if j["index"] != [str(x) for x in df.index]:
            self.err(path, f"index differs: {j['index'][:5]} vs {list(df.index[:5])}")
        if j["index_name"] != df.index.name:
            self.err(path, f"index_name {j['index_name']!r} vs {df.index.name!r}")
        if j["column_order"] != list(df.columns):
            return self.err(path, f"columns {j['column_order']} vs {list(df.columns)}")
        for c in df.columns:
            self.column(j["columns"][c], df[c], f"{path}/{c}")
        return None

    def elem(self, j, v, path):
        if isinstance(v, pd.DataFrame):
            return self.frame(j, v, path)
        if sp.issparse(v):
            return self.sparse(j, v, path)
        if isinstance(v, dict):
            return self.mapping(j, v, path)
        if isinstance(v, (pd.Categorical, pd.Series)):
            return self.column(j, pd.Series(v), path)
        if isinstance(v, pd.api.extensions.ExtensionArray):
            return self.column(j, pd.Series(v), path)
        return self.array(j, v, path)

    def mapping(self, j, d, path):
        if j.get("encoding-type") == "dict":
            j = j["items"]
        if sorted(j) != sorted(d):
            return self.err(path, f"keys {sorted(j)} vs {sorted(d)}")
        for k in d:
            self.elem(j[k], d[k], f"{path}/{k}")
        return None

    def anndata(self, j, ad):
        if (j["n_obs"], j["n_vars"]) != ad.shape:
            self.err("", f"shape {(j['n_obs'], j['n_vars'])} vs {ad.shape}")
        if ad.X is None:
            if j["X"] is not None:
                self.err("/X", "model has X, file has none")
        else:
            self.elem(j["X"], ad.X, "/X")
        self.frame(j["obs"], ad.obs, "/obs")
        self.frame(j["var"], ad.var, "/var")
        for ns in ("obsm", "varm", "layers", "obsp", "varp"):
            self.mapping(j[ns], dict(getattr(ad, ns)), "/" + ns)
        self.mapping(j["uns"], dict(ad.uns), "/uns")
        if ad.raw is None:
            if j["raw"] is not None:
                self.err("/raw", "model has raw, file has none")
        elif j["raw"] is None:
            self.err("/raw", "model lacks raw")
        else:
            self.elem(j["raw"]["X"], ad.raw.X, "/raw/X")
            self.frame(j["raw"]["var"], ad.raw.var, "/raw/var")
            self.mapping(j["raw"]["varm"], dict(ad.raw.varm), "/raw/varm")


def compare_anndata(j, ad, label):
    c = Cmp()
    c.anndata(j, ad)
    if c.errors:
        raise AssertionError(f"{label}: {len(c.errors)} mismatches:\n  " + "\n  ".join(c.errors[:40]))
