"""The real Polis conversation: export the fixture request with the CLI and
compare what anndata reads back with the file anndata 0.8 itself wrote for it
(polis_real.expected.h5ad). What the expected file lacks (uns dicts, raw) is
checked against the request JSON instead."""

import json
import os
import unittest

import anndata
import numpy as np
import pandas as pd

import sys
sys.dont_write_bytecode = True
from adxcli import SHARED, CliCase, report_index

FIX = os.path.join(SHARED, "fixtures")


def as_strings(series):
    """String column values as plain str, whether stored categorical or not."""
    return [str(v) for v in series.astype(object).tolist()]


class PolisReal(CliCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(FIX, "polis_real.json")) as f:
            cls.req = json.load(f)
        cls.src = cls.req["adata"]
        cls.expected = anndata.read_h5ad(os.path.join(FIX, "polis_real.expected.h5ad"))

    def setUp(self):
        super().setUp()
        res = self.run_cli(["export", os.path.join(FIX, "polis_real.json"), "-o", "out.h5ad"])
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        self.job = json.loads(res.stdout)
        self.out = os.path.join(self.dir, "out.h5ad")
        self.ours = anndata.read_h5ad(self.out)

    def test_job_json(self):
        j = self.job
        self.assertEqual(j["format"], "h5ad")
        self.assertEqual(j["filename"], "conversation.h5ad")
        self.assertEqual(j["compression"], "gzip")
        self.assertEqual(j["content_type"], "application/x-hdf5")
        self.assertEqual(j["size_bytes"], os.path.getsize(self.out))
        import hashlib
        with open(self.out, "rb") as f:
            self.assertEqual(j["sha256"], hashlib.sha256(f.read()).hexdigest())
        s = j["summary"]
        self.assertEqual((s["n_obs"], s["n_vars"]), (138, 46))
        self.assertEqual(s["X"]["shape"], [138, 46])
        self.assertEqual(s["X"]["dtype"], "float64")
        self.assertEqual(s["X"]["encoding"], "array")
        self.assertEqual(s["obs"], list(self.src["obs"]["columns"]))
        self.assertEqual(s["var"], list(self.src["var"]["columns"]))
        self.assertEqual(s["obsm"], list(self.src["obsm"]))
        self.assertEqual(s["layers"], ["X_masked_imputed_mean"])
        self.assertEqual(s["obsp"], [])
        self.assertTrue(s["raw"])
        self.assertEqual(j["output"], "out.h5ad")
        # Nothing but the output is left in the directory.
        self.assertEqual(sorted(os.listdir(self.dir)), ["out.h5ad"])

    def test_shape_and_X(self):
        a, e = self.ours, self.expected
        self.assertEqual(a.shape, e.shape)
        self.assertEqual(list(a.obs_names), list(e.obs_names))
        self.assertEqual(list(a.var_names), list(e.var_names))
        x = np.asarray(a.X)
        self.assertEqual(x.dtype, np.float64)
        self.assertTrue(np.allclose(x, np.asarray(e.X, dtype=np.float64), equal_nan=True))
        # And exactly the JSON: null is NaN, every other value bit-equal.
        want = np.array([[np.nan if v is None else v for v in row] for row in self.src["X"]])
        np.testing.assert_array_equal(x, want)
        self.assertGreater(np.isnan(x).sum(), 0)

    def test_obs(self):
        a, e = self.ours.obs, self.expected.obs
        self.assertEqual(list(a.columns), list(e.columns))
        for col in ["n_votes", "n_agree", "n_disagree", "pct_agree", "cluster_mask"]:
            self.assertEqual(a[col].dtype, e[col].dtype, col)
            np.testing.assert_array_equal(a[col].to_numpy(), e[col].to_numpy(), col)

    def test_kmeans_labels_keep_both_absences(self):
        lab, exp = self.ours.obs["kmeans_polis"], self.expected.obs["kmeans_polis"]
        self.assertEqual(str(lab.dtype), "category")
        self.assertEqual(lab.cat.categories.dtype, np.int64)
        self.assertEqual(list(lab.cat.categories), [-1, 0, 1, 2, 3])
        self.assertEqual(list(lab.cat.categories), list(exp.cat.categories))
        np.testing.assert_array_equal((lab == -1).to_numpy(), (exp == -1).to_numpy())
        np.testing.assert_array_equal(lab.isna().to_numpy(), exp.isna().to_numpy())
        self.assertGreater(int((lab == -1).sum()), 0)
        self.assertGreater(int(lab.isna().sum()), 0)
        src = self.src["obs"]["columns"]["kmeans_polis"]
        self.assertEqual([v is None for v in src], lab.isna().tolist())

    def test_var(self):
        a, e = self.ours.var, self.expected.var
        self.assertEqual(list(a.columns), list(e.columns))
        for col in e.columns:
            if str(e[col].dtype) in ("category", "object") or str(a[col].dtype) in (
                    "category", "object"):
                self.assertEqual(as_strings(a[col]), as_strings(e[col]), col)
            else:
                self.assertEqual(a[col].dtype, e[col].dtype, col)
                np.testing.assert_array_equal(a[col].to_numpy(), e[col].to_numpy(), col)
        # All-null optional columns became empty strings.
        self.assertEqual(set(as_strings(a["is_seed"])), {""})

    def test_embeddings_and_layers(self):
        a, e = self.ours, self.expected
        for ns in ("obsm", "varm", "layers"):
            ours, exp = getattr(a, ns), getattr(e, ns)
            self.assertEqual(sorted(ours.keys()), sorted(exp.keys()), ns)
            for k in exp.keys():
                x, y = np.asarray(ours[k]), np.asarray(exp[k])
                self.assertEqual(x.shape, y.shape, k)
                # The fixture sends the layer as plain JSON numbers, which
                # payload.md infers as float64; the reference held float32.
                self.assertEqual(x.dtype.kind, y.dtype.kind, k)
                self.assertTrue(np.allclose(x, y, equal_nan=True), k)

    def test_uns_frames(self):
        for name in ("statements", "votes"):
            a, e = self.ours.uns[name], self.expected.uns[name]
            self.assertIsInstance(a, pd.DataFrame)
            self.assertEqual(list(a.columns), list(e.columns), name)
            # The reference kept a RangeIndex; anndata indexes are strings.
            self.assertEqual(list(a.index), [str(i) for i in e.index], name)
            for col in e.columns:
                if e[col].dtype == object:
                    self.assertEqual(as_strings(a[col]), as_strings(e[col]), (name, col))
                else:
                    self.assertEqual(a[col].dtype, e[col].dtype, (name, col))
                    np.testing.assert_array_equal(a[col].to_numpy(), e[col].to_numpy())
        st = self.ours.uns["statements"]
        self.assertEqual(as_strings(st["mixed"])[:4], ["s0", "1", "s2", "3"])
        self.assertEqual(set(as_strings(st["is-seed"])), {""})

    def test_uns_dicts_from_json(self):
        uns = self.ours.uns
        self.assertEqual(uns["votes_meta"]["via"], "local_csv")
        self.assertEqual(int(uns["votes_meta"]["n_votes"]), 1917)
        self.assertEqual(uns["source"]["kind"], "local")
        self.assertEqual(uns["source"]["conversation_id"], "34rdajkfxk")
        self.assertNotIn("base_url", uns["source"])  # a null is dropped
        self.assertEqual(uns["schema"]["X"], self.src["uns"]["schema"]["X"])
        km = uns["kmeans_polis"]
        self.assertEqual(int(km["best_k"]), 4)
        np.testing.assert_array_equal(np.asarray(km["k_bounds"]), [2, 5])
        self.assertEqual(np.asarray(km["k_bounds"]).dtype, np.int64)
        self.assertAlmostEqual(float(km["best_score"]), 0.41)

    def test_raw_from_json(self):
        raw = self.ours.raw
        self.assertIsNotNone(raw)
        want = np.array([[np.nan if v is None else v for v in row]
                         for row in self.src["raw"]["X"]])
        np.testing.assert_array_equal(np.asarray(raw.X), want)
        self.assertEqual(list(raw.var_names), self.src["raw"]["var"]["index"])

    def test_report_lists_every_sanitization(self):
        rep = report_index(self.job)
        self.assertEqual(rep.get(("/uns/statements/is-seed", "null_to_empty_string")), 46)
        self.assertIn(("/uns/statements/mixed", "mixed_to_string"), rep)
        self.assertEqual(rep.get(("/uns/source/base_url", "dropped_null")), 1)
        self.assertIn(("/uns/statements/lang", "null_to_empty_string"), rep)
        var_paths = {p for p, _ in rep if p.startswith("/var/")}
        self.assertIn("/var/is_seed", var_paths)
        self.assertIn("/var/is_meta", var_paths)
        for e in self.job["report"]:
            self.assertGreater(e["count"], 0, e)


if __name__ == "__main__":
    unittest.main()
