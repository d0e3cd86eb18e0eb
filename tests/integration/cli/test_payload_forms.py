"""Every payload form of payload.md, exported to h5ad by the CLI and read back
with anndata and h5py: values, dtypes, encodings, categories, missing
values."""

import base64
import json
import math
import os
import random
import struct
import unittest

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase


def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()


def enc(h5obj):
    v = h5obj.attrs.get("encoding-type")
    return v.decode() if isinstance(v, bytes) else v


class DenseTyped(CliCase):
    def test_base64_and_data_forms(self):
        x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
        lay_i = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
        lay_u = np.arange(12, dtype=np.uint16).reshape(3, 4)
        emb = np.linspace(-1, 1, 6).reshape(3, 2)
        req = {"adata": {
            "X": {"encoding-type": "array", "dtype": "float32", "shape": [3, 4], "base64": b64(x)},
            "layers": {
                "ints": {"encoding-type": "array", "dtype": "int32", "shape": [3, 4],
                         "data": lay_i.tolist()},
                "flat": {"encoding-type": "array", "dtype": "uint16", "shape": [3, 4],
                         "data": lay_u.ravel().tolist()},
                "i8": {"encoding-type": "array", "dtype": "int8", "shape": [3, 4],
                       "base64": b64(lay_i.astype(np.int8))},
                "b": {"encoding-type": "array", "dtype": "bool", "shape": [3, 4],
                      "data": (lay_i > 0).tolist()},
            },
            "obsm": {"X_emb": {"encoding-type": "array", "dtype": "float64", "shape": [3, 2],
                               "base64": b64(emb)},
                     "nested": [[1, 2], [3, 4], [5, 6]]},
            "varm": {"loadings": [[0.5], [1.5], [2.5], ["NaN"]]},
        }}
        res = self.export(req)
        job = self.assert_ok(res)
        self.assertEqual(job["summary"]["X"], {"encoding": "array", "dtype": "float32",
                                               "shape": [3, 4]})
        a = anndata.read_h5ad(res.path)
        self.assertEqual(a.X.dtype, np.float32)
        np.testing.assert_array_equal(a.X, x)
        np.testing.assert_array_equal(a.layers["ints"], lay_i)
        self.assertEqual(a.layers["ints"].dtype, np.int32)
        np.testing.assert_array_equal(a.layers["flat"], lay_u)
        self.assertEqual(a.layers["flat"].dtype, np.uint16)
        self.assertEqual(a.layers["i8"].dtype, np.int8)
        self.assertEqual(a.layers["b"].dtype, np.bool_)
        np.testing.assert_array_equal(a.layers["b"], lay_i > 0)
        np.testing.assert_array_equal(a.obsm["X_emb"], emb)
        self.assertEqual(a.obsm["nested"].dtype, np.int64)
        v = a.varm["loadings"]
        self.assertEqual(v.dtype, np.float64)
        self.assertTrue(np.isnan(v[3, 0]))
        np.testing.assert_array_equal(v[:3, 0], [0.5, 1.5, 2.5])
        with h5py.File(res.path, "r") as f:
            self.assertEqual(enc(f), "anndata")
            self.assertEqual(enc(f["X"]), "array")
            self.assertEqual(f["X"].dtype, np.float32)
            self.assertEqual(enc(f["layers"]), "dict")

    def test_nested_inference_and_float_spellings(self):
        req = {"adata": {
            "X": [[1, -1, None], [0, 1, 1]],
            "layers": {"i": [[1, 2, 3], [4, 5, 6]], "b": [[True, False, True], [False] * 3],
                       "f": [["NaN", "Infinity", "-Infinity"], ["inf", "-inf", 2.5]]},
        }}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        self.assertEqual(a.X.dtype, np.float64)
        np.testing.assert_array_equal(a.X, [[1, -1, np.nan], [0, 1, 1]])
        self.assertEqual(a.layers["i"].dtype, np.int64)
        self.assertEqual(a.layers["b"].dtype, np.bool_)
        f = a.layers["f"]
        self.assertTrue(np.isnan(f[0, 0]))
        self.assertEqual(list(f[0, 1:]), [np.inf, -np.inf])
        self.assertEqual(list(f[1]), [np.inf, -np.inf, 2.5])


class Sparse(CliCase):
    def test_csr_and_csc(self):
        m = sp.random(5, 4, density=0.4, format="csr", random_state=1, dtype=np.float64)
        c = sp.random(5, 4, density=0.5, format="csc", random_state=2, dtype=np.float32)
        p = sp.random(5, 5, density=0.3, format="csr", random_state=3)
        req = {"adata": {
            "X": {"encoding-type": "csr_matrix", "shape": [5, 4], "data": m.data.tolist(),
                  "indices": {"dtype": "int32", "base64": b64(m.indices.astype(np.int32))},
                  "indptr": m.indptr.tolist()},
            "layers": {"c": {"encoding-type": "csc_matrix", "shape": [5, 4],
                             "data": {"dtype": "float32", "data": c.data.tolist()},
                             "indices": c.indices.tolist(),
                             "indptr": {"dtype": "int64", "base64": b64(c.indptr.astype(np.int64))}}},
            "obsp": {"distances": {"encoding-type": "csr_matrix", "shape": [5, 5],
                                   "data": p.data.tolist(), "indices": p.indices.tolist(),
                                   "indptr": p.indptr.tolist()}},
            "varp": {"corr": np.eye(4).tolist()},
        }}
        res = self.export(req)
        job = self.assert_ok(res)
        self.assertEqual(job["summary"]["X"]["encoding"], "csr_matrix")
        self.assertEqual(job["summary"]["obsp"], ["distances"])
        self.assertEqual(job["summary"]["varp"], ["corr"])
        a = anndata.read_h5ad(res.path)
        self.assertTrue(sp.isspmatrix_csr(a.X))
        np.testing.assert_array_equal(a.X.toarray(), m.toarray())
        lc = a.layers["c"]
        self.assertTrue(sp.isspmatrix_csc(lc))
        self.assertEqual(lc.dtype, np.float32)
        np.testing.assert_array_equal(lc.toarray(), c.toarray())
        np.testing.assert_allclose(a.obsp["distances"].toarray(), p.toarray())
        np.testing.assert_array_equal(a.varp["corr"], np.eye(4))
        with h5py.File(res.path, "r") as f:
            self.assertEqual(enc(f["X"]), "csr_matrix")
            self.assertEqual(list(f["X"].attrs["shape"]), [5, 4])
            self.assertEqual(enc(f["layers/c"]), "csc_matrix")


    def test_uint64_index_blocks_become_signed(self):
        # scipy cannot compute with uint64 index arrays (toarray, sum fail)
        req = {"adata": {"X": {"encoding-type": "csr_matrix", "shape": [2, 3],
                               "data": [1.0, 2.0, 3.0],
                               "indices": {"dtype": "uint64", "data": [0, 2, 1]},
                               "indptr": {"dtype": "uint64", "data": [0, 2, 3]}}}}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        self.assertEqual(a.X.indices.dtype, np.int64)
        self.assertEqual(a.X.indptr.dtype, np.int64)
        np.testing.assert_array_equal(a.X.toarray(), [[1, 0, 2], [0, 3, 0]])


class Frames(CliCase):
    def test_columnar_typed_columns(self):
        codes = [0, 2, -1, 1]
        req = {"adata": {
            "shape": [4, 2],
            "obs": {"index": ["a", "b", "c", "d"], "index_name": "cell", "columns": {
                "ints": [1, 2, 3, 4],
                "floats_null": [1, None, 2, 3],
                "bools": [True, False, True, True],
                "bools_null": [True, None, False, True],
                "strs": ["x", "y", "z", "w"],
                "cat_codes": {"encoding-type": "categorical", "categories": [0, 1, -1],
                              "codes": codes, "ordered": False},
                "cat_values": {"encoding-type": "categorical", "values": ["b", None, "a", "b"],
                               "ordered": True},
                "nint": {"encoding-type": "nullable-integer", "dtype": "int64",
                         "values": [1, None, 3, None]},
                "nbool": {"encoding-type": "nullable-boolean", "values": [True, None, False, None]},
                "sarr": {"encoding-type": "string-array", "values": ["p", "q", "r", "s"]},
                "f32": {"encoding-type": "array", "dtype": "float32",
                        "base64": b64(np.array([0.5, 1, 2, 4], dtype=np.float32))},
                "kmeans_k": [-1, None, 0, 1],
            }},
        }}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        o = a.obs
        self.assertEqual(list(o.index), ["a", "b", "c", "d"])
        self.assertEqual(o.index.name, "cell")
        self.assertEqual(o["ints"].dtype, np.int64)
        self.assertEqual(o["floats_null"].dtype, np.float64)
        self.assertTrue(np.isnan(o["floats_null"][1]))
        self.assertEqual(o["bools"].dtype, np.bool_)
        self.assertEqual(str(o["bools_null"].dtype), "boolean")
        self.assertEqual(o["bools_null"].isna().tolist(), [False, True, False, False])
        self.assertEqual(list(o["strs"].astype(str)), ["x", "y", "z", "w"])
        cc = o["cat_codes"]
        self.assertEqual(list(cc.cat.categories), [0, 1, -1])
        self.assertEqual(cc.cat.codes.tolist(), codes)
        self.assertFalse(cc.cat.ordered)
        cv = o["cat_values"]
        self.assertEqual(list(cv.cat.categories), ["a", "b"])
        self.assertTrue(cv.cat.ordered)
        self.assertEqual(cv.isna().tolist(), [False, True, False, False])
        self.assertEqual(str(o["nint"].dtype), "Int64")
        self.assertEqual(o["nint"].isna().tolist(), [False, True, False, True])
        self.assertEqual(int(o["nint"][2]), 3)
        self.assertEqual(str(o["nbool"].dtype), "boolean")
        self.assertEqual(list(o["sarr"].astype(str)), ["p", "q", "r", "s"])
        self.assertEqual(o["f32"].dtype, np.float32)
        km = o["kmeans_k"]
        self.assertEqual(list(km.cat.categories), [-1, 0, 1])
        self.assertEqual(km.cat.categories.dtype, np.int64)
        self.assertEqual(km.isna().tolist(), [False, True, False, False])
        self.assertEqual((km == -1).tolist(), [True, False, False, False])
        with h5py.File(res.path, "r") as f:
            self.assertEqual(enc(f["obs"]), "dataframe")
            self.assertEqual(enc(f["obs/cat_codes"]), "categorical")
            self.assertEqual(enc(f["obs/nint"]), "nullable-integer")
            self.assertEqual(enc(f["obs/nbool"]), "nullable-boolean")
            self.assertEqual(f["obs/bools"].dtype, np.bool_)  # HDF5 enum, as h5py writes

    def test_split_and_records(self):
        req = {"adata": {
            "obs": {"index": ["c1", "c2", "c3"], "columns": ["n", "label"],
                    "data": [[1, "x"], [2, "y"], [3, "x"]]},
            "var": [{"_index": "g1", "len": 1.5, "ok": True},
                    {"_index": "g2", "len": 2.5, "ok": False}],
            "uns": {"recs": {"encoding-type": "dataframe", "index": ["r0", "r1"],
                             "columns": {"v": [1, 2]}}},
        }}
        res = self.export(req, extra=())
        job = self.assert_ok(res)
        self.assertEqual((job["summary"]["n_obs"], job["summary"]["n_vars"]), (3, 2))
        a = anndata.read_h5ad(res.path)
        self.assertEqual(list(a.obs_names), ["c1", "c2", "c3"])
        self.assertEqual(a.obs["n"].tolist(), [1, 2, 3])
        self.assertEqual(a.obs["label"].astype(str).tolist(), ["x", "y", "x"])
        # Fewer distinct values than rows: categorical, as anndata's writer does.
        self.assertEqual(str(a.obs["label"].dtype), "category")
        self.assertEqual(list(a.var_names), ["g1", "g2"])
        self.assertEqual(a.var["len"].tolist(), [1.5, 2.5])
        self.assertEqual(a.var["ok"].dtype, np.bool_)
        self.assertEqual(list(a.uns["recs"].index), ["r0", "r1"])
        self.assertEqual(a.uns["recs"]["v"].tolist(), [1, 2])

    def test_default_index_and_no_string_categoricals(self):
        req = {"adata": {"X": [[1.0], [2.0], [3.0]],
                         "obs": [{"label": "x"}, {"label": "y"}, {"label": "x"}]},
               "strings_to_categoricals": False}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        self.assertEqual(list(a.obs_names), ["0", "1", "2"])
        self.assertEqual(list(a.var_names), ["0"])
        self.assertEqual(a.obs["label"].dtype, object)

    def test_frames_in_obsm_and_varm_follow_the_axis_names(self):
        # anndata reads a DataFrame in obsm/varm back only under obs_names /
        # var_names: a frame without an index takes them; a given index that
        # differs is a 400 at its pointer, not a file anndata refuses
        req = {"adata": {
            "obs": {"index": ["p", "q"]}, "var": {"index": ["g1"]},
            "obsm": {"recs": [{"a": 1}, {"a": 2}],
                     "cols": {"columns": {"c": ["x", "y"]}},
                     "named": {"index": ["p", "q"], "columns": {"b": [1.5, 2.5]}}},
            "varm": {"split": {"columns": ["s"], "data": [[7]]}},
            "raw": {"X": [[1, 2], [3, 4]], "var": {"index": ["r1", "r2"]},
                    "varm": {"f": [{"z": 1}, {"z": 2}]}},
        }}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        for k in ("recs", "cols", "named"):
            self.assertEqual(list(a.obsm[k].index), ["p", "q"], k)
        self.assertEqual(a.obsm["recs"]["a"].tolist(), [1, 2])
        self.assertEqual(list(a.varm["split"].index), ["g1"])
        self.assertEqual(list(a.raw.varm["f"].index), ["r1", "r2"])
        os.unlink(res.path)
        for where, frame, ptr in (
                ("obsm", {"index": ["q", "p"], "columns": {}}, "/adata/obsm/d/index"),
                ("obsm", [{"_index": "0", "v": 1}, {"_index": "1", "v": 2}], "/adata/obsm/d/index"),
                ("varm", {"index": ["x"], "columns": {}}, "/adata/varm/d/index")):
            bad = {"adata": {"obs": {"index": ["p", "q"]}, "var": {"index": ["g1"]},
                             where: {"d": frame}}}
            res = self.export(bad)
            p = self.assert_problem(res, ptr)
            self.assertIn("obs_names" if where == "obsm" else "var_names", p["detail"])

    def test_names_h5ad_cannot_hold_are_400s_at_the_request_pointer(self):
        # HDF5 link names hold no "/" and are not empty or "."; the pointer
        # names the request's member, not the stored object's path
        cases = [({"obs": {"index": ["a"], "columns": {"a/b": [1]}}}, "/adata/obs/columns/a~1b"),
                 ({"uns": {"x": {"y/z": 1}}}, "/adata/uns/x/y~1z"),
                 ({"obsm": {".": [[1]]}, "obs": {"index": ["a"]}}, "/adata/obsm/."),
                 ({"obs": {"index": ["a"], "index_name": "id/1", "columns": {}}},
                  "/adata/obs/index_name"),
                 ({"var": [{"": 1}]}, "/adata/var")]
        for adata, ptr in cases:
            with self.subTest(ptr):
                p = self.assert_problem(self.export({"adata": adata}), ptr)
                self.assertIn("cannot be stored in h5ad", p["detail"])
        # npz escapes such names instead (obs/a~1b)
        res = self.export({"adata": cases[0][0], "format": "npz"}, out="out.npz")
        self.assert_ok(res)
        with np.load(res.path, allow_pickle=False) as z:
            self.assertIn("obs/a~1b", z.files)


class Uns(CliCase):
    def test_nested_values(self):
        req = {"adata": {"uns": {
            "i": 3, "f": 2.5, "b": True, "s": "text",
            "arr": [1, 2, 3], "farr": [1.5, None], "strs": ["a", "b"],
            "grid": [[1, 2], [3, 4]],
            "d": {"e": {"f": {"deep": "yes", "n": [True, False]}}},
            "typed": {"encoding-type": "array", "dtype": "uint8", "shape": [2],
                      "data": [7, 8]},
            "sparse": {"encoding-type": "csr_matrix", "shape": [2, 2], "data": [1.0],
                       "indices": [1], "indptr": [0, 1, 1]},
            "nint": {"encoding-type": "nullable-integer", "dtype": "int32", "values": [1, None]},
        }}}
        res = self.export(req)
        job = self.assert_ok(res)
        self.assertEqual(job["summary"]["uns"],
                         ["i", "f", "b", "s", "arr", "farr", "strs", "grid", "d", "typed",
                          "sparse", "nint"])
        u = anndata.read_h5ad(res.path).uns
        self.assertEqual(int(u["i"]), 3)
        self.assertEqual(float(u["f"]), 2.5)
        self.assertTrue(bool(u["b"]))
        self.assertEqual(u["s"], "text")
        np.testing.assert_array_equal(u["arr"], [1, 2, 3])
        self.assertEqual(u["arr"].dtype, np.int64)
        self.assertTrue(np.isnan(u["farr"][1]))
        self.assertEqual(list(u["strs"]), ["a", "b"])
        np.testing.assert_array_equal(u["grid"], [[1, 2], [3, 4]])
        self.assertEqual(u["d"]["e"]["f"]["deep"], "yes")
        np.testing.assert_array_equal(u["d"]["e"]["f"]["n"], [True, False])
        self.assertEqual(u["typed"].dtype, np.uint8)
        np.testing.assert_array_equal(u["sparse"].toarray(), [[0, 1], [0, 0]])
        with h5py.File(res.path, "r") as f:
            self.assertEqual(enc(f["uns/i"]), "numeric-scalar")
            self.assertEqual(enc(f["uns/s"]), "string")
            self.assertEqual(enc(f["uns/strs"]), "string-array")
            self.assertEqual(enc(f["uns/d/e"]), "dict")
            self.assertEqual(enc(f["uns/nint"]), "nullable-integer")
            self.assertEqual(f["uns/nint/values"].dtype, np.int32)

    def test_sanitized_uns(self):
        req = {"adata": {"uns": {
            "gone": None,
            "ragged": [[1, 2], [3]],
            "objs": [{"a": 1}, {"b": 2}],
            "df": {"encoding-type": "dataframe", "columns": {
                "mix": [1, "a", True, None], "nested": [[1], {"k": "v"}, None, "s"]}},
        }}}
        res = self.export(req)
        job = self.assert_ok(res)
        rep = {(e["path"], e["action"]) for e in job["report"]}
        self.assertIn(("/uns/gone", "dropped_null"), rep)
        self.assertIn(("/uns/ragged", "nested_to_json_string"), rep)
        self.assertIn(("/uns/objs", "nested_to_json_string"), rep)
        self.assertIn(("/uns/df/mix", "mixed_to_string"), rep)
        self.assertIn(("/uns/df/nested", "nested_to_json_string"), rep)
        u = anndata.read_h5ad(res.path).uns
        self.assertNotIn("gone", u)
        self.assertEqual(u["ragged"], "[[1,2],[3]]")
        self.assertEqual(u["objs"], '[{"a":1},{"b":2}]')
        self.assertEqual(u["df"]["mix"].astype(str).tolist(), ["1", "a", "True", ""])
        self.assertEqual(u["df"]["nested"].astype(str).tolist()[:2], ["[1]", '{"k":"v"}'])


class NumberText(CliCase):
    """Numbers turned into text: integers above 2**63 - 1 (uint64 tokens) keep
    every digit wherever they become strings, and JSON text of nested values
    spells reals as Python's json.dumps does, so json.loads reads it back."""

    BIG = 12345678901234567890
    MAX = 18446744073709551615

    def test_big_integers_keep_their_digits(self):
        big, mx = self.BIG, self.MAX
        req = {"adata": {
            "obs": {"index": [big, "a"],
                    "columns": {"c": [big, "x"], "kmeans_k": [mx, "x"],
                                "cat": {"encoding-type": "categorical",
                                        "values": [mx, "z"]}}},
            "var": [{"_index": mx, "r": 2**63}, {"_index": "v", "r": "y"}],
            "uns": {"l": [mx, "x"], "d": {"l": [2**63, "t"]},
                    "df": {"encoding-type": "dataframe", "index": [1, 2], "columns": ["s"],
                           "data": [[big], ["q"]]},
                    "objs": [{"b": mx}, {"b": [2**63, -2**63]}]},
        }}
        res = self.export(req)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        self.assertEqual(list(a.obs_names), [str(big), "a"])
        self.assertEqual(list(a.obs["c"]), [str(big), "x"])
        self.assertEqual(list(a.obs["kmeans_k"]), [str(mx), "x"])
        self.assertEqual(list(a.obs["cat"].cat.categories), [str(mx), "z"])
        self.assertEqual(list(a.var_names), [str(mx), "v"])
        self.assertEqual(list(a.var["r"]), [str(2**63), "y"])
        u = a.uns
        self.assertEqual(list(u["l"]), [str(mx), "x"])
        self.assertEqual(list(u["d"]["l"]), [str(2**63), "t"])
        self.assertEqual(list(u["df"]["s"]), [str(big), "q"])
        self.assertEqual(json.loads(u["objs"]), [{"b": mx}, {"b": [2**63, -2**63]}])

    def test_big_integer_in_an_int_categorical_is_refused(self):
        # All integers: the categories would be int64, which cannot hold it
        # (a plain int64 column refuses it the same way).
        res = self.export({"adata": {"obs": {"columns": {"kmeans_j": [1, self.BIG]}}}})
        p = self.assert_problem(res, "/adata/obs/columns/kmeans_j/1")
        self.assertIn(str(self.BIG), p["detail"])

    def test_json_text_reals_as_python_writes_them(self):
        rng = random.Random(20240611)
        toks = ["1e400", "-1e400", "1E+400", "0.1", "0.10000000000000001", "1e16",
                "1e+16", "1e-05", "0.0001", "0.00001", "100.0", "100", "-0.0", "0.0",
                "1e22", "1e21", "9999999999999998.0", "1.7976931348623157e308",
                "5e-324", "2.2250738585072014e-308", "123456789.123456789", "1.5",
                "3.4", "9007199254740993.0", "1e-7", str(self.MAX), "-9223372036854775808"]
        for _ in range(3000):
            k = rng.random()
            if k < 0.4:  # any finite double, by its bits
                x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
                if math.isfinite(x):
                    toks.append(rng.choice([repr(x), "%.17g" % x, "%.20e" % x]))
            elif k < 0.8:  # short decimals at every scale
                toks.append("%d.%de%d" % (rng.randrange(10), rng.randrange(1000),
                                          rng.randrange(-30, 30)))
            else:
                toks.append(repr(rng.uniform(-1e6, 1e6)))
        text = "[" + ",".join(toks) + "]"
        raw = ('{"adata": {"uns": {"l": [{"v": %s}, {"w": [1e400, -1e400]}]},'
               ' "obs": {"columns": {"c": [%s, "x"]}}}}' % (text, text))
        res = self.export(None, raw_text=raw)
        self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        want = json.loads('[{"v": %s}, {"w": [1e400, -1e400]}]' % text)
        self.assertEqual(a.uns["l"], json.dumps(want, separators=(",", ":")))
        self.assertIn('"w":[Infinity,-Infinity]', a.uns["l"])
        self.assertEqual(a.obs["c"][0], json.dumps(json.loads(text), separators=(",", ":")))
        # what Python reads back is the very same doubles, bit for bit
        back = json.loads(a.obs["c"][0])
        self.assertEqual([struct.pack("<d", float(x)) for x in back],
                         [struct.pack("<d", float(x)) for x in json.loads(text)])


class Raw(CliCase):
    def test_raw_kept(self):
        req = {"adata": {"X": [[1.0, 2.0], [3.0, 4.0]],
                         "raw": {"X": [[1, 2, 3], [4, 5, 6]],
                                 "var": {"index": ["a", "b", "c"],
                                         "columns": {"w": [0.1, 0.2, 0.3]}},
                                 "varm": {"pcs": [[1.0], [2.0], [3.0]]}}}}
        res = self.export(req)
        job = self.assert_ok(res)
        self.assertTrue(job["summary"]["raw"])
        a = anndata.read_h5ad(res.path)
        np.testing.assert_array_equal(a.raw.X, [[1, 2, 3], [4, 5, 6]])
        self.assertEqual(list(a.raw.var_names), ["a", "b", "c"])
        np.testing.assert_allclose(a.raw.var["w"], [0.1, 0.2, 0.3])
        np.testing.assert_array_equal(a.raw.varm["pcs"][:, 0], [1.0, 2.0, 3.0])
        with h5py.File(res.path, "r") as f:
            self.assertEqual(enc(f["raw"]), "raw")


if __name__ == "__main__":
    unittest.main()
