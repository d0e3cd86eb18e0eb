"""npz and csv/txt bundle writers against numpy, scipy and anndata 0.8.

fmt_driver (argv[1]) writes a hand-built model; expected() builds the same
object with anndata. npz: every member read with allow_pickle=False, its
bytes compared with what numpy itself writes for the loaded array, and the
object rebuilt with the code in README.md's npz section. csv/txt: every file compared
byte for byte with anndata's own write_csvs(skip_data=False).
"""
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import unittest
import warnings
import zipfile

import numpy as np
import pandas as pd
import scipy.sparse as sp
import anndata as ad

DRIVER = None
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("ADX_SRC") or os.path.join(HERE, "..", "..", "..")
NAN = float("nan")


def readme_npz_code():
    """The Python block of README.md's "### npz" section: the tests run
    exactly the lines a reader copies."""
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    sec = re.search(r"(?ms)^### npz\n(.*?)(?=^##|\Z)", text).group(1)
    return re.search(r"```python\n(.*?)```", sec, re.S).group(1)


def expected(xkind):
    """The object fmt_driver.c builds, made with anndata."""
    X = None
    dense = np.array([[1.5, 0, 0], [0, 0, -2], [0, 3.25, NAN], [0, 0, 0]])
    if xkind == "csr":
        X = sp.csr_matrix((np.array([1.5, -2, 3.25, NAN]), np.array([0, 2, 1, 2], "i4"),
                           np.array([0, 1, 2, 4, 4], "i4")), shape=(4, 3))
    elif xkind == "csc":
        X = sp.csc_matrix((np.array([1.5, 3.25, -2, NAN], "f4"), np.array([0, 2, 1, 2], "i8"),
                           np.array([0, 1, 2, 4], "i8")), shape=(4, 3))
    elif xkind == "dense":
        X = dense
    obs = pd.DataFrame(
        {
            "b": np.array([1, 0, 1, 1], bool),
            "i8": np.array([-1, 2, 3, -128], "i1"),
            "i16": np.array([-300, 0, 1, 32767], "i2"),
            "i32": np.array([-70000, 1, 2, 3], "i4"),
            "i64": np.array([-5000000000, 0, 1, 9007199254740993], "i8"),
            "u8": np.array([0, 1, 200, 255], "u1"),
            "u16": np.array([0, 1, 60000, 65535], "u2"),
            "u32": np.array([0, 1, 4000000000, 7], "u4"),
            "u64": np.array([0, 1, 18446744073709551615, 42], "u8"),
            "f32": np.array([0.1, NAN, 1e20, -2.5], "f4"),
            "f64": np.array([0.1, NAN, -math.inf, 1e-5]),
            "s": np.array(["a", "b,c", 'q"r', "日本\nx"], dtype=object),
            "kmeans": pd.Categorical.from_codes(np.array([0, 2, -1, 1], "i1"),
                                                pd.Index(np.array([0, 1, -1], "i8"))),
            "cat_s": pd.Categorical.from_codes(np.array([1, 0, -1, 1], "i4"),
                                               pd.Index(["x", "yé"], dtype=object), ordered=True),
            "ni": pd.arrays.IntegerArray(np.array([1, 0, 3, -4], "i8"),
                                         np.array([0, 1, 0, 0], bool)),
            "nb": pd.arrays.BooleanArray(np.array([1, 0, 0, 1], bool),
                                         np.array([0, 0, 1, 0], bool)),
            "a/b~c": np.array([1.0, 2, 3, 4]),
            "_private": np.array([1.0, 2, 3, 4]),
        },
        index=pd.Index(["c1", "c2", "ç3", "c,4"], name="cell-id", dtype=object),
    )
    var = pd.DataFrame({"hv": np.array([1, 0, 1], bool), "mean": np.array([0.5, 1e16, -0.0])},
                       index=pd.Index(["g1", "g2", "g3"], dtype=object))
    statements = pd.DataFrame(
        {"txt": np.array(["first, statement", "zweite Äußerung", ""], dtype=object),
         "is-seed": np.array([1, 0, 0], bool), "moderated": np.array([1, -1, 0], "i8")},
        index=pd.Index(["0", "1", "2"], dtype=object))
    uns = {
        "title": np.str_("héllo, world"),
        "n": np.int64(42),
        "pi": np.float64(3.14),
        "flag": np.bool_(True),
        "vec": np.array([1, 2, 3], "i8"),
        "mat": np.array([[0.1, 2], [NAN, -4]], "f4"),
        "names": np.array(["a", "", "ü"]),
        "cube": np.arange(1.0, 9.0).reshape(2, 2, 2),
        "params": {"a/b": np.int64(1), "inner": {"x": np.str_("y")}, "empty": {}},
        "statements": statements,
        "sp": sp.csc_matrix((np.array([1.0, 2]), np.array([1, 0], "i4"),
                             np.array([0, 0, 1, 2], "i4")), shape=(2, 3)),
        "ucat": pd.Categorical.from_codes(np.array([1, -1, 0], "i1"),
                                          pd.Index(["lo", "hi"], dtype=object)),
        "unl": pd.arrays.IntegerArray(np.array([7, 0], "i4"), np.array([0, 1], bool)),
    }
    st, b32, b64 = 7, [], []
    for _ in range(3000):
        st = (st * 6364136223846793005 + 1442695040888963407) % 2**64
        b32.append(st >> 32)
        b64.append(st)
    uns["f32many"] = np.array(b32, "u4").view("f4")
    uns["f64many"] = np.array(b64, "u8").view("f8")
    raw_var = pd.DataFrame({"rank": np.array([5, 4, 3, 2, 1], "i8")},
                           index=pd.Index(["r1", "r2", "r3", "r4", "r5"], dtype=object))
    raw = {"X": np.arange(20.0).reshape(4, 5) * 0.5, "var": raw_var,
           "varm": {"loadings": np.arange(1.0, 6.0).reshape(5, 1)}}
    meta = pd.DataFrame(
        {"score": np.array([0.5, -1, NAN, 2]),
         "grp": pd.Categorical.from_codes(np.array([0, 1, 1, -1], "i1"),
                                          pd.Index(["g/1", "g2"], dtype=object))},
        index=pd.Index(["c1", "c2", "ç3", "c,4"], dtype=object))
    dist = sp.csr_matrix((np.array([0.5, 0.5, 1]), np.array([1, 0, 3], "i4"),
                          np.array([0, 1, 2, 2, 3], "i4")), shape=(4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ad.AnnData(
            X=X, dtype=None if X is None else X.dtype, obs=obs, var=var,
            obsm={"X_pca": np.array([[1.0, 2], [3, 4], [5, 6], [7, 8.5]]),
                  "X_umap": np.arange(1, 9, dtype="f4").reshape(4, 2) / np.float32(10),
                  "meta": meta,
                  "sp_emb": sp.csc_matrix((np.array([0.25, -1, 3], "f4"), np.array([2, 0, 3], "i8"),
                                           np.array([0, 1, 3], "i8")), shape=(4, 2))},
            varm={"PCs": np.array([[-1.0, 1], [0.25, 0.5], [2, 3]])},
            layers={"counts": np.array([[1, 0, 0], [0, 0, 2], [0, 3, 4], [0, 0, 0]], "i4")},
            obsp={"dist": dist}, uns=uns, raw=raw)
    return a


def run_driver(xkind, fmt, out):
    p = subprocess.run([DRIVER, xkind, fmt, out], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"fmt_driver failed: {p.stderr}")
    return json.loads(p.stdout)


def load_readme_reader():
    code = readme_npz_code()
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    return ns["read_npz_anndata"]


class Cmp(unittest.TestCase):
    def assert_array(self, got, exp, what):
        got, exp = np.asarray(got), np.asarray(exp)
        if exp.dtype.kind in "UO" or got.dtype.kind in "UO":
            self.assertIn(got.dtype.kind, "UO", what)  # frames hold strings as objects
            self.assertEqual(got.shape, exp.shape, what)
            self.assertEqual(got.tolist(), exp.astype(str).tolist(), what)
            return
        self.assertEqual(got.dtype, exp.dtype, what)
        self.assertEqual(got.shape, exp.shape, what)
        np.testing.assert_array_equal(got, exp, err_msg=what)

    def assert_elem(self, got, exp, what):
        if isinstance(exp, dict):
            self.assertIsInstance(got, dict, what)
            self.assertEqual(list(got), list(exp), what)
            for k in exp:
                self.assert_elem(got[k], exp[k], f"{what}/{k}")
        elif sp.issparse(exp):
            self.assertEqual(type(got), type(exp), what)
            self.assertEqual(got.shape, exp.shape, what)
            for part in ("data", "indices", "indptr"):
                self.assert_array(getattr(got, part), getattr(exp, part), f"{what}.{part}")
        elif isinstance(exp, pd.DataFrame):
            self.assert_frame(got, exp, what)
        elif isinstance(exp, pd.Categorical):
            self.assertIsInstance(got, pd.Categorical, what)
            self.assertEqual(got.ordered, exp.ordered, what)
            self.assert_array(got.codes, exp.codes, what + " codes")
            self.assert_array(np.asarray(got.categories), np.asarray(exp.categories), what)
        elif isinstance(exp, pd.api.extensions.ExtensionArray):
            self.assertEqual(got.dtype, exp.dtype, what)
            self.assertTrue(got.equals(exp), what)
        else:
            self.assert_array(got, exp, what)

    def assert_frame(self, got, exp, what):
        self.assertEqual(list(got.columns), list(exp.columns), what)
        self.assertEqual(list(got.index), list(exp.index), what)
        self.assertEqual(got.index.name, exp.index.name, what)
        for c in exp.columns:
            g, e = got[c], exp[c]
            if isinstance(e.dtype, pd.CategoricalDtype):
                self.assert_elem(g.values, e.values, f"{what}/{c}")
            elif isinstance(e.dtype, pd.api.extensions.ExtensionDtype):
                self.assert_elem(g.array, e.array, f"{what}/{c}")
            else:
                self.assert_array(g.to_numpy(), e.to_numpy(), f"{what}/{c}")


class TestEmpty(Cmp):
    """AnnData() — no rows, no columns, no X — in both formats."""

    def test_npz(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "e.npz")
            self.assertEqual(run_driver("empty", "npz-gzip", out), [])
            with np.load(out, allow_pickle=False) as z:
                self.assertEqual(z["obs/_index"].dtype, np.dtype("<U1"))
                self.assertEqual(z["obs/_index"].shape, (0,))
            got = load_readme_reader()(out)
        self.assertEqual(got.shape, (0, 0))
        self.assertIsNone(got.X)
        self.assertEqual(dict(got.uns), {})

    def test_csv(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "e.zip")
            self.assertEqual(run_driver("empty", "csv", out), [])
            with zipfile.ZipFile(out) as zf:
                ours = {i.filename: zf.read(i).decode() for i in zf.infolist() if not i.is_dir()}
        self.assertEqual(ours, {k: v.decode() for k, v in anndata_csvs(ad.AnnData(), ",").items()})


class TestNpz(Cmp):
    def check(self, xkind, fmt):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.npz")
            report = run_driver(xkind, fmt, out)
            self.assertEqual(report, [])  # npz holds everything
            with zipfile.ZipFile(out) as zf:
                for info in zf.infolist():
                    want = zipfile.ZIP_DEFLATED if fmt == "npz-gzip" else zipfile.ZIP_STORED
                    self.assertEqual(info.compress_type, want, info.filename)
                    raw = zf.read(info)
                    arr = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, arr, allow_pickle=False)
                    self.assertEqual(raw, buf.getvalue(), f"{info.filename} differs from np.save")
            z = np.load(out, allow_pickle=False)
            names = set(z.files)
            if xkind in ("csr", "csc"):
                self.assertEqual(z["X/format"].dtype, np.dtype("<U3"))
                self.assertEqual(z["X/format"].shape, ())
                self.assertEqual(str(z["X/format"]), xkind)
                self.assertEqual(z["X/shape"].dtype, np.dtype("<i8"))
                self.assertEqual(z["X/shape"].tolist(), [4, 3])
            elif xkind == "dense":
                self.assertIn("X", names)
            else:
                self.assertFalse(any(n == "X" or n.startswith("X/") for n in names))
            # escaping: a key with '/' or '~' stays one segment, '_' is reserved
            self.assertIn("obs/a~1b~0c", names)
            self.assertIn("obs/~4private", names)
            self.assertIn("uns/params/a~1b", names)
            self.assertEqual(z["obs/_index"].dtype, np.dtype("<U3"))
            self.assertEqual(z["obs/s"].dtype, np.dtype("<U4"))
            self.assertEqual(z["uns/names"].dtype, np.dtype("<U1"))
            self.assertEqual(z["uns/title"].shape, ())
            self.assertEqual(z["obs/kmeans/codes"].tolist(), [0, 2, -1, 1])
            self.assertEqual(z["obs/kmeans/categories"].tolist(), [0, 1, -1])
            self.assertEqual(z["obs/ni/mask"].tolist(), [False, True, False, False])
            z.close()

            got = load_readme_reader()(out)
            exp = expected(xkind)
            self.assertEqual(got.shape, exp.shape)
            if exp.X is None:
                self.assertIsNone(got.X)
            else:
                self.assert_elem(got.X, exp.X, "X")
            self.assert_frame(got.obs, exp.obs, "obs")
            self.assert_frame(got.var, exp.var, "var")
            for ns in ("obsm", "varm", "layers", "obsp", "varp"):
                self.assert_elem(dict(getattr(got, ns)), dict(getattr(exp, ns)), ns)
            self.assert_elem(dict(got.uns), dict(exp.uns), "uns")
            self.assert_elem(got.raw.X, exp.raw.X, "raw/X")
            self.assert_frame(got.raw.var, exp.raw.var, "raw/var")
            self.assert_elem(dict(got.raw.varm), dict(exp.raw.varm), "raw/varm")

    def test_csr_gzip(self):
        self.check("csr", "npz-gzip")

    def test_csc_stored(self):
        self.check("csc", "npz-store")

    def test_dense_gzip(self):
        self.check("dense", "npz-gzip")

    def test_no_x_stored(self):
        self.check("none", "npz-store")


def anndata_csvs(adata, sep):
    """write_csvs' files, except that DataFrames in obsm/varm (which
    AxisArrays.to_df turns into columns of repeated obs names) are written
    as the bundle documents it: column j of frame `key` as `key<j+1>`, and
    sparse ones (which to_df cannot take) densified."""
    adata = adata.copy()
    axis_dfs = {}
    for ns in ("obsm", "varm"):
        m = getattr(adata, ns)
        frames = [k for k in m if isinstance(m[k], pd.DataFrame) or sp.issparse(m[k])]
        order = list(m)
        parts = {k: m[k] for k in order}
        for k in frames:
            del m[k]
        cols = {}
        for k in order:
            v = parts[k]
            if isinstance(v, pd.DataFrame):
                for j, c in enumerate(v.columns):
                    cols[f"{k}{j + 1}"] = v[c].values
            else:
                v = v.toarray() if sp.issparse(v) else v
                for j in range(v.shape[1]):
                    cols[f"{k}{j + 1}"] = v[:, j]
        if frames:
            axis_dfs[ns] = pd.DataFrame(cols, index=m.dim_names)
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad._io.write.write_csvs(d, adata, skip_data=False, sep=sep)
        for ns, df in axis_dfs.items():
            df.to_csv(os.path.join(d, f"{ns}.csv"), sep=sep, header=True, index=False)
        files = {}
        for root, _, names in os.walk(d):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    files[os.path.relpath(p, d)] = f.read()
        return files


class TestCsv(Cmp):
    # What write_csvs writes that the bundle deliberately reports instead.
    REPORTED = {"/uns/cube", "/uns/params", "/uns/sp", "/layers/counts", "/obsp/dist", "/raw"}

    def check(self, xkind, fmt):
        sep = "," if fmt == "csv" else "\t"
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.zip")
            report = run_driver(xkind, fmt, out)
            with zipfile.ZipFile(out) as zf:
                for info in zf.infolist():
                    if not info.is_dir():
                        self.assertEqual(info.compress_type, zipfile.ZIP_DEFLATED)
                ours = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
                self.assertIn("uns/", zf.namelist())
        self.assertEqual({r["path"] for r in report}, self.REPORTED)
        self.assertTrue(all(r["action"] == "not_written" and r["count"] == 1 for r in report))
        theirs = anndata_csvs(expected(xkind), sep)
        # write_csvs writes a dict's Python repr; the bundle reports it instead.
        self.assertIn("uns/params.csv", theirs)
        del theirs["uns/params.csv"]
        self.assertEqual(sorted(ours), sorted(theirs))
        for name in theirs:
            self.assertEqual(ours[name].decode(), theirs[name].decode(), name)
            # and cell by cell, through the csv module, for a readable failure
            rows_o = list(csv.reader(io.StringIO(ours[name].decode()), delimiter=sep))
            rows_t = list(csv.reader(io.StringIO(theirs[name].decode()), delimiter=sep))
            self.assertEqual(rows_o, rows_t, name)

    def test_csv_csr(self):
        self.check("csr", "csv")

    def test_csv_csc(self):
        self.check("csc", "csv")

    def test_txt_dense(self):
        self.check("dense", "txt")

    def test_csv_no_x(self):
        self.check("none", "csv")


if __name__ == "__main__":
    DRIVER = sys.argv.pop(1)
    unittest.main(verbosity=2)
