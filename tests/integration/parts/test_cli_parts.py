"""`anndata-exportd export REQ.json --part NAME=FILE`: binary parts written by
numpy (np.save / np.lib.format.write_array: every dtype payload.md allows,
format versions 1.0-3.0, Fortran order, big-endian, fixed-width strings,
structured dtypes), raw little-endian parts, a gzip request, each read back
with anndata / h5py; and each bad part a 400 naming it, with no file left."""

import gzip
import json
import os
import shutil
import sys
import tempfile
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from adxcli import CliCase  # noqa: E402

import anndata as ad  # noqa: E402

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]


class Parts(CliCase):
    def setUp(self):
        super().setUp()
        # Outside the output directory, which must stay empty on failures.
        self.inp = tempfile.mkdtemp(prefix="adx-parts-in-")
        self.addCleanup(shutil.rmtree, self.inp, True)
        self.rng = np.random.default_rng(11)

    def save(self, name, arr, version=None, raw=False):
        path = os.path.join(self.inp, name)
        with open(path, "wb") as f:
            if raw:
                f.write(arr.tobytes())
            elif version:
                np.lib.format.write_array(f, arr, version=version, allow_pickle=False)
            else:
                np.save(f, arr, allow_pickle=False)
        return path

    def run_parts(self, request, parts, out="out.h5ad", gz=False):
        extra = []
        for name, path in parts.items():
            extra += ["--part", "%s=%s" % (name, path)]
        if gz:
            raw = gzip.compress(json.dumps(request).encode())
            return self.export(None, out=out, raw_text=raw, extra=extra)
        return self.export(request, out=out, extra=extra)

    def test_every_dtype_as_layers(self):
        X = self.rng.normal(size=(6, 4))
        parts = {"X": self.save("X.npy", X)}
        layers = {}
        want = {}
        for dt in DTYPES:
            v = (self.rng.integers(0, 2, size=(6, 4)) if dt == "bool"
                 else self.rng.integers(0, 100, size=(6, 4))).astype(dt)
            if dt.startswith("float"):
                v = (self.rng.normal(size=(6, 4)) * 1e3).astype(dt)
            want[dt] = v
            parts[dt] = self.save(dt + ".npy", v)
            layers[dt] = {"encoding-type": "array", "part": dt}
        res = self.run_parts({"adata": {"X": {"encoding-type": "array", "part": "X"},
                                        "layers": layers}}, parts)
        job = self.assert_ok(res)
        self.assertEqual(job["summary"]["n_obs"], 6)
        a = ad.read_h5ad(res.path)
        np.testing.assert_array_equal(a.X, X)
        self.assertEqual(a.X.dtype, np.float64)
        for dt, v in want.items():
            self.assertEqual(a.layers[dt].dtype, np.dtype(dt), dt)
            np.testing.assert_array_equal(a.layers[dt], v)

    def test_versions_fortran_big_endian_raw(self):
        X = self.rng.normal(size=(5, 3))
        parts = {
            "X": self.save("X.npy", np.asfortranarray(X)),
            "v2": self.save("v2.npy", X.astype(np.float32), version=(2, 0)),
            "v3": self.save("v3.npy", X.astype(">f8"), version=(3, 0)),
            "be": self.save("be.npy", (X * 100).astype(">i4")),
            "f3": self.save("f3.npy", np.asfortranarray(np.arange(5 * 3 * 2).reshape(5, 3, 2))),
            "raw": self.save("raw.bin", X.astype("<f4"), raw=True),
        }
        self.assertTrue(np.load(parts["X"], mmap_mode="r").flags.f_contiguous)
        req = {"adata": {
            "X": {"encoding-type": "array", "part": "X", "dtype": "float64", "shape": [5, 3]},
            "layers": {"v2": {"encoding-type": "array", "part": "v2"},
                       "v3": {"encoding-type": "array", "part": "v3"},
                       "be": {"encoding-type": "array", "part": "be"},
                       "raw": {"encoding-type": "array", "part": "raw", "dtype": "float32",
                               "shape": [5, 3]},
                       "again": {"encoding-type": "array", "part": "X"}},
            "obsm": {"f3": {"encoding-type": "array", "part": "f3"}}}}
        res = self.run_parts(req, parts)
        self.assert_ok(res)
        a = ad.read_h5ad(res.path)
        np.testing.assert_array_equal(a.X, X)
        np.testing.assert_array_equal(a.layers["again"], X)
        np.testing.assert_array_equal(a.layers["v2"], X.astype(np.float32))
        np.testing.assert_array_equal(a.layers["v3"], X)
        self.assertEqual(a.layers["v3"].dtype, np.dtype("<f8"))
        np.testing.assert_array_equal(a.layers["be"], (X * 100).astype(np.int32))
        np.testing.assert_array_equal(a.layers["raw"], X.astype(np.float32))
        np.testing.assert_array_equal(a.obsm["f3"], np.arange(30).reshape(5, 3, 2))

    def test_strings_records_sparse(self):
        import scipy.sparse as sp
        m = sp.random(4, 5, density=0.4, format="csr", random_state=3, dtype=np.float32)
        names = np.array(["alpha", "βeta", "", "😀"])
        parts = {"d": self.save("d.npy", m.data), "i": self.save("i.npy", m.indices),
                 "p": self.save("p.npy", m.indptr), "names": self.save("names.npy", names)}
        req = {"adata": {
            "X": {"encoding-type": "csr_matrix", "shape": [4, 5],
                  "data": {"part": "d"}, "indices": {"part": "i"}, "indptr": {"part": "p"}},
            "uns": {"names": {"encoding-type": "array", "part": "names"}}}}
        res = self.run_parts(req, parts)
        self.assert_ok(res)
        a = ad.read_h5ad(res.path)
        np.testing.assert_array_equal(a.X.toarray(), m.toarray())
        self.assertEqual(list(a.uns["names"]), list(names))

    def test_recarray_part(self):
        rec = np.rec.fromarrays([np.array(["g1", "g22", "g333"]),
                                 np.array([0.5, -1.0, 2.25], dtype=np.float32),
                                 np.array([3, 4, 5], dtype=np.int64)],
                                names=["names", "scores", "n"])
        parts = {"rg": self.save("rg.npy", np.asarray(rec))}
        req = {"adata": {"uns": {"rank_genes_groups": {
            "names_rec": {"encoding-type": "rec-array", "part": "rg"}}}}}
        res = self.run_parts(req, parts)
        self.assert_ok(res)
        a = ad.read_h5ad(res.path)
        r = a.uns["rank_genes_groups"]["names_rec"]
        self.assertEqual(list(r.dtype.names), ["names", "scores", "n"])
        self.assertEqual([str(x) for x in r["names"]], ["g1", "g22", "g333"])
        np.testing.assert_array_equal(r["scores"], rec["scores"])
        np.testing.assert_array_equal(r["n"], rec["n"])

    def test_gzip_request_and_npz(self):
        X = self.rng.normal(size=(3, 2))
        parts = {"X": self.save("X.npy", X)}
        res = self.run_parts({"adata": {"X": {"encoding-type": "array", "part": "X"}},
                              "format": "npz"}, parts, out="out.npz", gz=True)
        self.assert_ok(res)
        with np.load(res.path, allow_pickle=False) as z:
            np.testing.assert_array_equal(z["X"], X)

    # ---- refusals: a 400 naming the part, nothing written ----

    def refused(self, req, parts, pointer, needle, status=400):
        res = self.run_parts(req, parts)
        p = self.assert_problem(res, pointer, status=status)
        self.assertIn(needle, p["detail"])
        return p

    def test_missing_and_unreferenced(self):
        X = self.rng.normal(size=(3, 2))
        x = self.save("X.npy", X)
        req = {"adata": {"X": {"encoding-type": "array", "part": "X"}}}
        self.refused(req, {}, "/adata/X", 'part "X": referenced here but')
        self.refused(req, {"Y": x}, "/adata/X", 'part "X": referenced here but')
        p = self.refused(req, {"X": x, "extra": x}, "", 'part "extra" is not referenced')
        self.assertIn("extra", p["errors"][0]["message"])

    def test_bad_parts(self):
        X = self.rng.normal(size=(3, 2))
        req = {"adata": {"X": {"encoding-type": "array", "part": "X"}}}
        # object dtype: np.save with pickles
        obj = os.path.join(self.inp, "obj.npy")
        np.save(obj, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
        self.refused(req, {"X": obj}, "/adata/X", "object dtype")
        # a header that lies: the data is cut short
        good = self.save("good.npy", X)
        short = os.path.join(self.inp, "short.npy")
        with open(good, "rb") as f, open(short, "wb") as g:
            g.write(f.read()[:-8])
        self.refused(req, {"X": short}, "/adata/X", "needs 48")
        longer = os.path.join(self.inp, "long.npy")
        with open(good, "rb") as f, open(longer, "wb") as g:
            g.write(f.read() + b"\0" * 8)
        self.refused(req, {"X": longer}, "/adata/X", "needs 48")
        # JSON dtype/shape disagree with the header
        self.refused({"adata": {"X": {"encoding-type": "array", "part": "X", "dtype": "float32"}}},
                     {"X": good}, "/adata/X", "float64")
        self.refused({"adata": {"X": {"encoding-type": "array", "part": "X", "shape": [2, 3]}}},
                     {"X": good}, "/adata/X", "[3, 2]")
        # a raw part needs dtype and shape, and its size must match
        raw = self.save("raw.bin", X, raw=True)
        self.refused(req, {"X": raw}, "/adata/X", '"dtype" and "shape"')
        self.refused({"adata": {"X": {"encoding-type": "array", "part": "X", "dtype": "float64",
                                      "shape": [4, 2]}}}, {"X": raw}, "/adata/X",
                     "needs 64")
        # complex numbers are not a payload dtype
        cplx = self.save("c.npy", X.astype(np.complex64))
        self.refused(req, {"X": cplx}, "/adata/X", "<c8")

    def test_bad_part_option(self):
        res = self.run_cli(["export", "request.json", "--part", "noequals"])
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"NAME=FILE", res.stderr)


if __name__ == "__main__":
    unittest.main()
