"""Malformed requests: each one exits 2 with an RFC 9457 problem on stderr
whose first error points at the offending member, and leaves no output or
temporary file behind. A pointer ending in "*" is matched as a prefix (where
the exact depth of the report is the decoder's choice)."""

import base64
import json
import unittest

import numpy as np

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase


def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()


def ad(**members):
    """A request around a small valid 2 x 3 AnnData with some members replaced."""
    adata = {"X": [[1.0, 0.0, -1.0], [0.0, 1.0, None]]}
    adata.update(members)
    return {"adata": adata}


def csr(**over):
    m = {"encoding-type": "csr_matrix", "shape": [2, 3], "data": [1.0, 2.0, 3.0],
         "indices": [0, 2, 1], "indptr": [0, 2, 3]}
    m.update(over)
    return m


def deep(n):
    d = {"leaf": 1}
    for _ in range(n):
        d = {"a": d}
    return d


# (name, request dict or raw text, expected pointer, expected status)
CASES = [
    # JSON syntax
    # syntax errors point at the element being read
    ("truncated", '{"adata": {"X": [[1, 2', "/adata/X/0/2", 400),
    ("empty document", "", "", 400),
    ("trailing garbage", '{"adata": {}} x', "", 400),
    ("single quotes", "{'adata': {}}", "", 400),
    ("invalid utf-8", b'{"adata": {"uns": {"s": "\xff\xfe"}}}', "/adata/uns/s", 400),
    ("bare NaN token", '{"adata": {"X": [[NaN]]}}', "/adata/X/0/0", 400),
    # request members
    ("not an object", "[1, 2]", "", 400),
    ("unknown member", {"adata": {}, "bogus": 1}, "/bogus", 400),
    ("neither input", {"format": "h5ad"}, "", 400),
    ("both inputs", {"adata": {}, "dataset": "x"}, "/dataset", 400),
    ("adata is a list", {"adata": [1]}, "/adata", 400),
    ("stored dataset", {"dataset": "polis_real"}, "/dataset", 400),
    ("bad format", dict(ad(), format="xlsx"), "/format", 400),
    ("format vs filename", dict(ad(), format="npz", filename="a.h5ad"), "/filename", 400),
    ("filename with slash", dict(ad(), filename="../a.h5ad"), "/filename", 400),
    ("filename control char", dict(ad(), filename="a\tb.h5ad"), "/filename", 400),
    ("bad compression", dict(ad(), compression="zstd"), "/compression", 400),
    ("level out of range", dict(ad(), compression_opts=10), "/compression_opts", 400),
    ("level with lzf", dict(ad(), compression="lzf", compression_opts=3), "/compression_opts",
     400),
    ("lzf with csv", dict(ad(), compression="lzf", format="csv"), "/compression", 400),
    ("include not a list", dict(ad(), include="obs/*"), "/include", 400),
    ("include unknown namespace", dict(ad(), include=["obs/*", "cells/*"]), "/include/1", 400),
    ("include without slash", dict(ad(), include=["obsm"]), "/include/0", 400),
    ("include empty pattern", dict(ad(), include=["uns/"]), "/include/0", 400),
    ("categorical_columns type", dict(ad(), categorical_columns="kmeans_*"),
     "/categorical_columns", 400),
    ("strings_to_categoricals type", dict(ad(), strings_to_categoricals="yes"),
     "/strings_to_categoricals", 400),
    # matrices
    ("ragged X", ad(X=[[1, 2, 3], [4, 5]]), "/adata/X/1", 400),
    ("X string element", ad(X=[[1, "a", 3], [4, 5, 6]]), "/adata/X/0/1", 400),
    ("X is a string", ad(X="matrix"), "/adata/X", 400),
    ("unknown dtype", ad(X={"encoding-type": "array", "dtype": "float128", "shape": [2, 3],
                            "data": [1, 2, 3, 4, 5, 6]}), "/adata/X/dtype", 400),
    ("base64 wrong length", ad(X={"encoding-type": "array", "dtype": "float32", "shape": [2, 3],
                                  "base64": b64(np.zeros(5, np.float32))}), "/adata/X/base64", 400),
    ("base64 invalid characters", ad(X={"encoding-type": "array", "dtype": "float32",
                                        "shape": [2, 3], "base64": "!!!!" * 6}), "/adata/X/base64", 400),
    ("typed data count", ad(X={"encoding-type": "array", "dtype": "int32", "shape": [2, 3],
                               "data": [1, 2, 3]}), "/adata/X/data", 400),
    ("null in int array", ad(X={"encoding-type": "array", "dtype": "int64", "shape": [2, 3],
                                "data": [[1, 2, 3], [4, None, 6]]}), "/adata/X/data/1/1", 400),
    ("huge declared shape", ad(X={"encoding-type": "array", "dtype": "float64",
                                  "shape": [2 ** 40, 2 ** 40], "base64": ""}), "/adata/X/shape/0", 413),
    ("negative shape", ad(X={"encoding-type": "array", "dtype": "float64", "shape": [-2, 3],
                             "data": [1, 2, 3, 4, 5, 6]}), "/adata/X/shape/0", 400),
    ("csr indptr length", ad(X=csr(indptr=[0, 3])), "/adata/X/indptr", 400),
    ("csr indptr decreasing", ad(X=csr(indptr=[0, 2, 1], data=[1.0], indices=[0])),
     "/adata/X/indptr/2", 400),
    ("csr indptr start", ad(X=csr(indptr=[1, 2, 3])), "/adata/X/indptr/0", 400),
    ("csr indptr end != nnz", ad(X=csr(indptr=[0, 1, 2])), "/adata/X/indptr/2", 400),
    ("csr index out of range", ad(X=csr(indices=[0, 3, 1])), "/adata/X/indices/1", 400),
    ("csr data/indices length", ad(X=csr(data=[1.0, 2.0])), "/adata/X/indices", 400),
    ("csc indptr length", ad(layers={"c": csr(**{"encoding-type": "csc_matrix"})}),
     "/adata/layers/c/indptr", 400),
    ("unknown encoding", ad(X={"encoding-type": "coo_matrix", "shape": [2, 3]}), "/adata/X", 400),
    # shapes in every namespace
    ("obs index length", ad(obs={"index": ["a", "b", "c"]}), "/adata/obs/index", 400),
    ("obs column length", ad(obs={"columns": {"n": [1, 2, 3]}}), "/adata/obs/columns/n", 400),
    ("var column length", ad(var={"columns": {"g": ["x"]}}), "/adata/var/columns/g", 400),
    ("obsm rows", ad(obsm={"X_pca": [[1, 2]]}), "/adata/obsm/X_pca", 400),
    ("varm rows", ad(varm={"PCs": [[1], [2]]}), "/adata/varm/PCs", 400),
    ("layers shape", ad(layers={"counts": [[1, 2], [3, 4]]}), "/adata/layers/counts", 400),
    ("obsp shape", ad(obsp={"d": [[1, 2, 3], [4, 5, 6]]}), "/adata/obsp/d", 400),
    ("varp shape", ad(varp={"d": [[1, 2], [3, 4]]}), "/adata/varp/d", 400),
    ("raw X rows", ad(raw={"X": [[1.0]]}), "/adata/raw/X", 400),
    ("raw var rows", ad(raw={"X": [[1.0, 2.0], [3.0, 4.0]], "var": {"index": ["a", "b", "c"]}}),
     "/adata/raw/var/index", 400),
    ("shape disagrees", ad(shape=[3, 3]), "/adata/shape/0", 400),
    ("shape not a pair", ad(shape="2x3"), "/adata/shape", 400),
    # frames and columns
    ("split row length", ad(obs={"index": ["a", "b"], "columns": ["p", "q"],
                                 "data": [[1, 2], [3]]}), "/adata/obs/data/1", 400),
    ("records not objects", ad(obs=[{"a": 1}, 2]), "/adata/obs/1", 400),
    ("index holds an object", ad(obs={"index": ["a", {"x": 1}]}), "/adata/obs/index/1", 400),
    ("categorical code out of range",
     ad(obs={"columns": {"c": {"encoding-type": "categorical", "categories": ["x", "y"],
                               "codes": [0, 2]}}}), "/adata/obs/columns/c/codes/1", 400),
    ("categorical duplicate categories",
     ad(obs={"columns": {"c": {"encoding-type": "categorical", "categories": ["x", "x"],
                               "codes": [0, 1]}}}), "/adata/obs/columns/c/categories", 400),
    ("nullable-integer dtype",
     ad(obs={"columns": {"n": {"encoding-type": "nullable-integer", "dtype": "float64",
                               "values": [1, None]}}}), "/adata/obs/columns/n/dtype", 400),
    ("typed column base64 length",
     ad(var={"columns": {"f": {"encoding-type": "array", "dtype": "float64",
                               "base64": b64(np.zeros(2))}}}), "/adata/var/columns/f", 400),
    # uns
    ("uns unknown encoding", ad(uns={"t": {"encoding-type": "tensor", "data": [1]}}),
     "/adata/uns/t/encoding-type", 400),
    ("uns too deep", ad(uns={"d": deep(200)}), "/adata/uns/d/a*", 413),
    ("uns dataframe columns", ad(uns={"df": {"encoding-type": "dataframe", "columns": 5}}),
     "/adata/uns/df/columns", 400),
]


class Malformed(CliCase):
    def test_cases_are_plenty(self):
        self.assertGreaterEqual(len(CASES), 45)

    def test_each_case(self):
        for name, req, pointer, status in CASES:
            with self.subTest(name):
                if isinstance(req, (str, bytes)):
                    res = self.export(None, raw_text=req)
                else:
                    res = self.export(req)
                err = res.stderr.decode(errors="replace")
                self.assertEqual(res.rc, 2, "%s: exit %d, stderr %s" % (name, res.rc, err[:400]))
                p = res.problem()
                self.assertEqual(p["status"], status, err)
                self.assertTrue(p["type"].startswith("https://"), p["type"])
                self.assertTrue(p["detail"], err)
                got = p["errors"][0]["pointer"]
                if pointer.endswith("*"):
                    self.assertTrue(got.startswith(pointer[:-1]),
                                    "%s: pointer %r, expected %r" % (name, got, pointer))
                else:
                    self.assertEqual(got, pointer, "%s: %s" % (name, err))
                self.assertEqual(res.leftovers(), [], name)
                self.assertEqual(res.stdout, b"", name)

    def test_existing_output_untouched(self):
        import os
        out = os.path.join(self.dir, "out.h5ad")
        with open(out, "wb") as f:
            f.write(b"previous result")
        res = self.export(ad(X="matrix"))
        self.assertEqual(res.rc, 2)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"previous result")
        self.assertEqual(sorted(os.listdir(self.dir)), ["out.h5ad", "request.json"])

    def test_record_arrays_wider_than_the_format_holds(self):
        # h5ad keeps a dataset's type in one 64 KiB header message (h5py
        # fails alike); numpy.load reads .npy headers of at most 10,000 bytes
        # without allow_pickle. Wider record arrays are 413s at the element,
        # refused before libhdf5 sees thousands of fields; narrower ones
        # export and read back.
        def rec(n):
            return ad(uns={"r": {"encoding-type": "rec-array",
                                 "fields": {"field%d" % i: [i, i + 1] for i in range(n)}}})
        for n, fmt, out in ((3000, "h5ad", "out.h5ad"), (20000, "h5ad", "out.h5ad"),
                            (1000, "npz", "out.npz")):
            with self.subTest(fields=n, format=fmt):
                p = self.assert_problem(self.export(dict(rec(n), format=fmt), out=out),
                                        "/uns/r", status=413)
                self.assertIn("%d fields" % n, p["detail"])
        import anndata
        res = self.export(rec(500))
        self.assert_ok(res)
        r = anndata.read_h5ad(res.path).uns["r"]
        self.assertEqual(len(r.dtype.names), 500)
        self.assertEqual(r["field499"].tolist(), [499, 500])
        res = self.export(dict(rec(300), format="npz"), out="out.npz")
        self.assert_ok(res)
        with np.load(res.path, allow_pickle=False) as z:
            self.assertEqual(z["uns/r"]["field299"].tolist(), [299, 300])

    def test_h5ad_files_that_crash_libhdf5_are_400s(self):
        # byte flips of files anndata wrote (an audit's fuzzing): libhdf5
        # dies reading them (SIGSEGV, SIGABRT), or leaves objects it cannot
        # close and prints lines of its own at exit; the helper reads them
        # first, and stderr stays one problem+json document
        import os
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
        for name in ("corrupt_free_invalid.h5ad", "corrupt_conv_struct.h5ad",
                     "corrupt_close_noise.h5ad"):
            with self.subTest(name):
                out = os.path.join(self.dir, "out.h5ad")
                proc = self.run_cli(["export", os.path.join(here, name), "-o", out])
                err = proc.stderr.decode(errors="replace")
                self.assertEqual(proc.returncode, 2, err[-500:])
                p = json.loads(proc.stderr)  # the document alone
                self.assertEqual(p["status"], 400, p)
                self.assertEqual(os.listdir(self.dir), [])

    def test_problem_names_the_kind(self):
        p = self.export(None, raw_text='{"adata": ').problem()
        self.assertTrue(p["type"].endswith("/invalid-json"), p)
        p = self.export(ad(obsm={"X_pca": [[1, 2]]})).problem()
        self.assertTrue(p["type"].endswith("/shape-mismatch"), p)
        p = self.export(dict(ad(), format="xlsx")).problem()
        self.assertTrue(p["type"].endswith("/bad-option"), p)
        p = self.export(ad(X={"encoding-type": "array", "dtype": "float64",
                              "shape": [2 ** 40, 2 ** 40], "base64": ""})).problem()
        self.assertTrue(p["type"].endswith("/limit-exceeded"), p)


if __name__ == "__main__":
    unittest.main()
