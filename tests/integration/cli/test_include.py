"""The include filter through the CLI: exact keys, globs, several namespaces,
unmentioned namespaces emptied, X and raw always kept, unmatched patterns
reported."""

import json
import os
import shutil
import tempfile
import unittest

import anndata
import h5py
import numpy as np

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase


def request(include):
    return {
        "adata": {
            "X": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            "obs": {"index": ["a", "b", "c"], "columns": {
                "kmeans_polis": [0, 1, None], "kmeans_alt": [1, 1, 0],
                "n_votes": [3, 4, 5], "pct": [0.1, 0.2, 0.3]}},
            "var": {"index": ["s1", "s2"], "columns": {"content": ["x", "y"], "is_meta": [True, False]}},
            "obsm": {"X_pca": [[1, 2], [3, 4], [5, 6]], "X_umap": [[0.1], [0.2], [0.3]],
                     "other": [[9], [9], [9]]},
            "varm": {"PCs": [[1.0], [2.0]]},
            "layers": {"counts": [[1, 2], [3, 4], [5, 6]], "norm": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]},
            "obsp": {"distances": [[0, 1, 2], [1, 0, 1], [2, 1, 0]]},
            "uns": {"statements": {"encoding-type": "dataframe", "columns": {"t": ["p", "q"]}},
                    "meta": {"k": 1}, "x": 2},
            "raw": {"X": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]},
        },
        "include": include,
    }


class Include(CliCase):
    def export_read(self, include):
        res = self.export(request(include))
        job = self.assert_ok(res)
        return job, anndata.read_h5ad(res.path), res.path

    def test_absent_keeps_everything(self):
        job, a, _ = self.export_read(None)
        self.assertEqual(list(a.obs.columns), ["kmeans_polis", "kmeans_alt", "n_votes", "pct"])
        self.assertEqual(sorted(a.obsm.keys()), ["X_pca", "X_umap", "other"])
        self.assertEqual(sorted(a.uns.keys()), ["meta", "statements", "x"])
        self.assertEqual(sorted(a.layers.keys()), ["counts", "norm"])

    def test_globs_several_namespaces(self):
        job, a, path = self.export_read(["obsm/X_*", "obs/kmeans_*", "uns/*"])
        s = job["summary"]
        self.assertEqual(s["obs"], ["kmeans_polis", "kmeans_alt"])
        self.assertEqual(s["obsm"], ["X_pca", "X_umap"])
        self.assertEqual(s["var"], [])
        self.assertEqual(s["layers"], [])
        self.assertEqual(s["obsp"], [])
        self.assertEqual(s["varm"], [])
        self.assertEqual(sorted(s["uns"]), ["meta", "statements", "x"])
        self.assertEqual(list(a.obs.columns), ["kmeans_polis", "kmeans_alt"])
        self.assertEqual(list(a.obs_names), ["a", "b", "c"])  # the index stays
        self.assertEqual(list(a.var.columns), [])
        self.assertEqual(list(a.var_names), ["s1", "s2"])
        self.assertEqual(sorted(a.obsm.keys()), ["X_pca", "X_umap"])
        self.assertEqual(len(a.layers.keys()), 0)
        self.assertEqual(len(a.varm.keys()), 0)
        self.assertEqual(len(a.obsp.keys()), 0)
        # X and raw are always kept.
        np.testing.assert_array_equal(a.X, [[1, 2], [3, 4], [5, 6]])
        self.assertIsNotNone(a.raw)
        self.assertTrue(s["raw"])
        with h5py.File(path, "r") as f:
            self.assertIn("X", f)
            self.assertIn("raw", f)

    def test_exact_keys(self):
        job, a, _ = self.export_read(["obs/n_votes", "layers/counts", "uns/x", "obsp/distances"])
        self.assertEqual(list(a.obs.columns), ["n_votes"])
        self.assertEqual(list(a.layers.keys()), ["counts"])
        self.assertEqual(list(a.uns.keys()), ["x"])
        self.assertEqual(list(a.obsp.keys()), ["distances"])
        self.assertEqual(len(a.obsm.keys()), 0)

    def test_character_classes(self):
        job, a, _ = self.export_read(["obs/[kp]*", "obsm/X_?ca", "var/[!c]*"])
        self.assertEqual(list(a.obs.columns), ["kmeans_polis", "kmeans_alt", "pct"])
        self.assertEqual(list(a.obsm.keys()), ["X_pca"])
        self.assertEqual(list(a.var.columns), ["is_meta"])

    def test_case_sensitive_and_unmatched_reported(self):
        job, a, _ = self.export_read(["obsm/x_*", "obs/n_votes", "uns/nothing*"])
        self.assertEqual(len(a.obsm.keys()), 0)
        unmatched = [e for e in job["report"] if e["action"] == "include_matched_nothing"]
        paths = {e["path"] for e in unmatched}
        self.assertIn("/include/0", paths)
        self.assertIn("/include/2", paths)
        self.assertNotIn("/include/1", paths)

    def test_many_patterns_on_many_keys(self):
        # 4096 patterns (the max_patterns default) on 100,000 uns keys:
        # literal, prefix and suffix patterns are found by lookup (a scan of
        # every pattern per key took ~25 s here); patterns no literal text
        # decides are glob matches, past max_include_tests a 413 at /include.
        uns = {"k%d" % i: i for i in range(100000)}
        pats = (["uns/k%d" % i for i in range(0, 3000, 3)] + ["uns/k99*", "uns/*777"]
                + ["uns/zz%d*" % i for i in range(3094)])
        res = self.export({"adata": {"X": [[1.0]], "uns": uns}, "include": pats})
        job = self.assert_ok(res)
        kept = set(anndata.read_h5ad(res.path).uns.keys())
        want = ({"k%d" % i for i in range(0, 3000, 3)} | {k for k in uns if k.startswith("k99")}
                | {k for k in uns if k.endswith("777")})
        self.assertEqual(kept, want)
        unmatched = {e["path"] for e in job["report"] if e["action"] == "include_matched_nothing"}
        self.assertEqual(unmatched, {"/include/%d" % i for i in range(1002, 4096)})
        dear = ["uns/*z%d*" % i for i in range(4096)]
        os.unlink(res.path)
        res = self.export({"adata": {"X": [[1.0]], "uns": uns}, "include": dear})
        p = self.assert_problem(res, "/include", status=413)
        self.assertIn("max_include_tests", p["detail"])

    def test_many_categorical_patterns(self):
        # categorical_columns goes through the same arrangement of patterns,
        # for a JSON request (while decoding) and for an h5ad input (after
        # reading), with the same bound.
        n = 10000
        cols = {"c%d" % i: [i % 3, 1] for i in range(n)}
        req = {"adata": {"X": [[1.0], [2.0]], "obs": {"columns": cols}},
               "categorical_columns": ["c1*", "*99"] + ["zz%d*" % i for i in range(4000)]}
        res = self.export(req)
        self.assert_ok(res)
        got = anndata.read_h5ad(res.path).obs
        cat = {c for c in got.columns if got[c].dtype.name == "category"}
        self.assertEqual(cat, {c for c in cols if c.startswith("c1") or c.endswith("99")})
        src_dir = tempfile.mkdtemp(prefix="adx-cat-")
        self.addCleanup(shutil.rmtree, src_dir, True)
        src = os.path.join(src_dir, "in.h5ad")
        shutil.move(res.path, src)
        p = self.run_cli(["export", src, "-o", "again.h5ad", "--categorical-columns", "c2*"])
        self.assertEqual(p.returncode, 0, p.stderr)
        again = anndata.read_h5ad(os.path.join(self.dir, "again.h5ad")).obs
        self.assertTrue(all(again[c].dtype.name == "category"
                            for c in again.columns if c.startswith("c2")))
        os.unlink(os.path.join(self.dir, "again.h5ad"))
        dear = ["*z%d*" % i for i in range(4096)]
        res = self.export(dict(req, categorical_columns=dear))
        p = self.assert_problem(res, "/categorical_columns", status=413)
        self.assertIn("max_include_tests", p["detail"])
        args = ["export", src, "-o", "dear.h5ad"]
        for g in dear:
            args += ["--categorical-columns", g]
        p = self.run_cli(args)
        self.assertEqual(p.returncode, 2, p.stderr)
        prob = json.loads(p.stderr)
        self.assertEqual((prob["status"], prob["errors"][0]["pointer"]),
                         (413, "/categorical_columns"))

    def test_empty_include_empties_all_but_x_and_raw(self):
        job, a, _ = self.export_read([])
        s = job["summary"]
        for ns in ("obs", "var", "obsm", "varm", "layers", "obsp", "varp", "uns"):
            self.assertEqual(s[ns], [], ns)
        self.assertEqual(a.shape, (3, 2))
        self.assertIsNotNone(a.raw)

    def test_bad_paths(self):
        for inc, ptr in ((["obs/*", "nope/x"], "/include/1"), (["obs"], "/include/0"),
                         (["obs/"], "/include/0"), (["X/*"], "/include/0"),
                         ("obs/*", "/include"), ([3], "/include/0")):
            with self.subTest(include=inc):
                p = self.assert_problem(self.export(request(inc)), ptr)
                self.assertTrue(p["type"].endswith("/bad-include"), p["type"])


if __name__ == "__main__":
    unittest.main()
