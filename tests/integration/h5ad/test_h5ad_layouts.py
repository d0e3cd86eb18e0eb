"""Files of other anndata versions through the CLI: the layouts anndata
0.5–0.7 wrote (built by h5builders.py as their writers laid them out, plus
anndata's own v0.7 test archives) must export to what anndata 0.8's
read_h5ad makes of them, read-time moves included; the encodings of anndata
0.11/0.12 are converted as payload.md says and reported; awkward-array is a
400 unless include leaves it out (then it is never read, also for a stored
dataset); fuzzed variants of each kind are 400s (exit 2) with no output.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import anndata as ad
import numpy as np
from anndata.tests.helpers import assert_equal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5builders as hb  # noqa: E402

warnings.simplefilter("ignore")
BIN = os.environ["ADX_BIN"]
ARCHIVES = os.path.join(os.path.dirname(ad.__file__), "tests", "data", "archives")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)


class Layouts(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def export_ok(self, src, *opts, out="out.h5ad"):
        out = os.path.join(self.d, out)
        p = run("export", src, "-o", out, *opts)
        self.assertEqual(p.returncode, 0, p.stderr)
        return out, json.loads(p.stdout)

    def actions(self, job):
        return {(r["path"], r["action"]) for r in job["report"]}

    def test_v06_as_anndata_reads_it(self):
        for legacy_obsm in (True, False):
            with self.subTest(legacy_obsm=legacy_obsm):
                o = hb.v06_objects(seed=3)
                src = os.path.join(self.d, f"v06_{legacy_obsm}.h5ad")
                hb.write_v06(src, o, legacy_obsm=legacy_obsm)
                out, job = self.export_ok(src)
                want = ad.read_h5ad(src)
                got = ad.read_h5ad(out)
                assert_equal(got, want)
                # the read-time moves anndata makes, and that they are reported
                self.assertEqual(list(got.obsp.keys()), ["distances", "connectivities"])
                self.assertNotIn("connectivities", got.uns["neighbors"])
                self.assertEqual(list(got.obs["grp"].cat.categories), ["A", "B", "C"])
                self.assertNotIn("grp_categories", got.uns)
                np.testing.assert_array_equal(got.obsm["X_pca"], o["X_pca"])
                self.assertEqual(got.obsm["X_pca"].dtype, np.float32)
                self.assertEqual(got.uns["title"], "hello")
                names = got.uns["rank_genes_groups"]["names"]
                self.assertEqual(names.dtype.names, ("0", "1"))
                self.assertEqual([tuple(r) for r in names.tolist()], o["names"])
                acts = self.actions(job)
                self.assertIn(("/obs/grp", "legacy_categories_folded"), acts)
                self.assertIn(("/uns/neighbors/connectivities", "legacy_graph_moved"), acts)
                self.assertIn(("/uns/neighbors/distances", "legacy_graph_moved"), acts)
                self.assertIn(("/raw.cat", "skipped_unknown_element"), acts)

    def test_v06_compound_raw_varm(self):
        # anndata 0.8 itself fails on this one; the exporter reads it as it
        # reads a compound obsm
        o = hb.v06_objects(seed=4)
        src = os.path.join(self.d, "rawvarm.h5ad")
        hb.write_v06(src, o, compound_raw_varm=True)
        out, _ = self.export_ok(src)
        got = ad.read_h5ad(out)
        np.testing.assert_array_equal(got.raw.varm["PCs"], o["raw_PCs"])
        self.assertEqual(list(got.raw.var_names), o["raw_var_names"])

    def test_v07_recarray_and_archives(self):
        srcs = [os.path.join(self.d, "v07.h5ad")]
        hb.write_v07_recarray(srcs[0])
        srcs += sorted(glob.glob(os.path.join(ARCHIVES, "v0.7*", "adata.h5ad")))
        self.assertGreaterEqual(len(srcs), 2, "anndata's v0.7 archives are missing")
        for i, src in enumerate(srcs):
            with self.subTest(src=os.path.relpath(src, ARCHIVES) if i else "built"):
                out, job = self.export_ok(src, out=f"o{i}.h5ad")
                want, got = ad.read_h5ad(src), ad.read_h5ad(out)
                assert_equal(got, want)
                key = "rank" if i == 0 else "O_recarray"
                self.assertEqual(got.uns[key].dtype.names, want.uns[key].dtype.names)
                self.assertEqual(got.uns[key].tolist(), want.uns[key].tolist())
                # written back as anndata 0.8 writes a recarray
                import h5py
                with h5py.File(out) as f:
                    self.assertEqual(f["uns"][key].attrs["encoding-type"], "rec-array")
                    self.assertEqual(f["uns"][key].dtype.kind, "V")

    def test_new_encodings(self):
        src = os.path.join(self.d, "new.h5ad")
        hb.write_new_encodings(src, with_awkward=False)
        out, job = self.export_ok(src)
        got = ad.read_h5ad(out)
        self.assertEqual(list(got.obs["label"]), ["x", "", "zé", ""])
        self.assertEqual(got.obs["label"].isna().sum(), 0)  # missing is "", not NaN
        self.assertNotIn("nothing", got.uns)
        self.assertEqual(dict(got.uns["nested"]), {})
        self.assertEqual(got.uns["raw_bytes"], "abc")
        self.assertEqual(got.uns["s"], "text")
        self.assertEqual(got.uns["k"], 5)
        rep = {(r["path"], r["action"]): r["count"] for r in job["report"]}
        self.assertEqual(rep[("/obs/label", "null_to_empty_string")], 1)
        self.assertEqual(rep[("/uns/nothing", "dropped_null")], 1)
        self.assertEqual(rep[("/uns/nested/none", "dropped_null")], 1)
        # npz too: the nullable strings as '<U', or (strings_to_categoricals,
        # 3 values in 4 rows) codes into natsorted categories
        npz, _ = self.export_ok(src, "--format", "npz", "--no-strings-to-categoricals", out="o.npz")
        with np.load(npz, allow_pickle=False) as z:
            self.assertEqual(z["obs/label"].tolist(), ["x", "", "zé", ""])
        npz, _ = self.export_ok(src, "--format", "npz", out="c.npz")
        with np.load(npz, allow_pickle=False) as z:
            cats = z["obs/label/categories"].tolist()
            self.assertEqual([cats[c] for c in z["obs/label/codes"]], ["x", "", "zé", ""])

    def test_awkward_is_400_unless_left_out(self):
        src = os.path.join(self.d, "awk.h5ad")
        hb.write_new_encodings(src, with_awkward=True)
        out = os.path.join(self.d, "awk_out.h5ad")
        p = run("export", src, "-o", out)
        self.assertEqual(p.returncode, 2, p.stderr)
        prob = json.loads(p.stderr)
        self.assertEqual(prob["status"], 400)
        self.assertEqual(prob["errors"][0]["pointer"], "/uns/awk")
        self.assertIn("awkward-array", prob["errors"][0]["message"])
        self.assertFalse(os.path.exists(out))
        out, _ = self.export_ok(src, "--include", "uns/[!a]*", "--include", "obs/*")
        got = ad.read_h5ad(out)
        self.assertEqual(sorted(got.uns.keys()), ["k", "nested", "raw_bytes", "s"])

    def test_stored_dataset_reads_only_included(self):
        data = os.path.join(self.d, "data")
        os.mkdir(data)
        hb.write_new_encodings(os.path.join(data, "enc.h5ad"), with_awkward=True)
        for include, rc in ((None, 2), (["obs/*", "uns/s"], 0)):
            with self.subTest(include=include):
                req = {"dataset": "enc", "format": "h5ad"}
                if include is not None:
                    req["include"] = include
                rp = os.path.join(self.d, "req.json")
                with open(rp, "w") as f:
                    json.dump(req, f)
                out = os.path.join(self.d, "ds.h5ad")
                p = run("export", rp, "-o", out, "--data-dir", data)
                self.assertEqual(p.returncode, rc, p.stderr)
                if rc == 0:
                    got = ad.read_h5ad(out)
                    self.assertEqual(list(got.uns.keys()), ["s"])
                    self.assertEqual(list(got.obs.columns), ["label"])
                else:
                    self.assertIn("/uns/awk", p.stderr)

    def test_h5ad_body_reads_only_included(self):
        # the daemon checks an uploaded body in the adx-h5check helper first:
        # the helper must read only what include keeps, too
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
        from srvharness import Daemon
        src = os.path.join(self.d, "body.h5ad")
        hb.write_new_encodings(src, with_awkward=True)
        with open(src, "rb") as f:
            data = f.read()
        d = Daemon(self.d)
        d.start()
        try:
            hdr = {"Content-Type": "application/x-hdf5"}
            st, _, body = d.request("POST", "/v1/exports?format=h5ad&wait=60", data, hdr)
            self.assertEqual(st, 400, body[:300])
            self.assertEqual(json.loads(body)["errors"][0]["pointer"], "/uns/awk")
            st, _, body = d.request("POST", "/v1/exports?format=h5ad&include=uns/s&wait=60",
                                    data, hdr)
            self.assertEqual(st, 200, body[:300])
            p = os.path.join(self.d, "body_out.h5ad")
            with open(p, "wb") as f:
                f.write(body)
            self.assertEqual(dict(ad.read_h5ad(p).uns), {"s": "text"})
        finally:
            d.stop()

    def test_include_keeps_what_read_time_moves_need(self):
        o = hb.v06_objects(seed=5)
        src = os.path.join(self.d, "v06.h5ad")
        hb.write_v06(src, o)
        out, job = self.export_ok(src, "--include", "obsp/connectivities", "--include", "obs/grp")
        got = ad.read_h5ad(out)
        want = ad.read_h5ad(src)
        self.assertEqual(list(got.obsp.keys()), ["connectivities"])
        self.assertEqual((got.obsp["connectivities"] != want.obsp["connectivities"]).nnz, 0)
        self.assertEqual(list(got.obs.columns), ["grp"])
        self.assertEqual(list(got.obs["grp"].cat.categories), ["A", "B", "C"])
        self.assertEqual(len(got.uns), 0)

    def test_many_legacy_categories_fold_as_anndata_does(self):
        # Hundreds of "<col>_categories" in uns (found through a map of the
        # column names, folded entries leaving uns in one pass): some fold,
        # some do not (a code past the categories, no such column), and what
        # stays in uns keeps its order.
        rng = np.random.default_rng(7)
        n, m = 300, 12
        obs = {f"c{i}": rng.integers(0, 3, m).astype(np.int64) for i in range(n)}
        obs["c5"][0] = 3  # one past its three categories: stays codes
        uns = {f"c{i}_categories": np.array(["a", "b", "c"], dtype=object) for i in range(n)}
        uns["nothere_categories"] = np.array(["x"], dtype=object)
        uns["plain"] = np.arange(3)
        a = ad.AnnData(np.zeros((m, 2)), obs=__import__("pandas").DataFrame(
            obs, index=[f"o{i}" for i in range(m)]), uns=uns)
        src = os.path.join(self.d, "legacy_many.h5ad")
        a.write_h5ad(src)
        out, job = self.export_ok(src)
        want, got = ad.read_h5ad(src), ad.read_h5ad(out)
        assert_equal(got, want)
        self.assertEqual(list(got.uns.keys()), list(want.uns.keys()))
        self.assertEqual(got.obs["c0"].dtype.name, "category")
        self.assertNotEqual(got.obs["c5"].dtype.name, "category")
        self.assertIn("c5_categories", got.uns)
        folded = [r["path"] for r in job["report"] if r["action"] == "legacy_categories_folded"]
        self.assertEqual(len(folded), n - 1)

    def test_column_order_naming_a_column_twice_is_400(self):
        import h5py
        a = ad.AnnData(np.zeros((2, 1)), obs={"k": [1, 2], "j": [3, 4]})
        src = os.path.join(self.d, "twice.h5ad")
        a.write_h5ad(src)
        with h5py.File(src, "r+") as f:
            f["obs"].attrs["column-order"] = np.array(["k", "j", "k"], dtype=object).astype(
                h5py.string_dtype())
        out = os.path.join(self.d, "twice.out.h5ad")
        p = run("export", src, "-o", out)
        self.assertEqual(p.returncode, 2, p.stderr)
        prob = json.loads(p.stderr)
        self.assertEqual(prob["status"], 400)
        self.assertIn("names k twice", prob["errors"][0]["message"])
        self.assertTrue(prob["errors"][0]["pointer"].startswith("/obs"), prob)
        self.assertFalse(os.path.exists(out))

    def test_fuzzed_variants_are_400(self):
        cases = hb.fuzz_cases()
        self.assertGreaterEqual(len(cases), 15)
        for name, writer in cases:
            with self.subTest(case=name):
                src = os.path.join(self.d, f"fz_{name}.h5ad")
                hb.write_fuzz(src, writer)
                out = os.path.join(self.d, f"fz_{name}.out.h5ad")
                p = run("export", src, "-o", out)
                self.assertEqual(p.returncode, 2, f"{name}: rc {p.returncode}: {p.stderr}")
                prob = json.loads(p.stderr)
                self.assertEqual(prob["status"], 400)
                self.assertTrue(prob["errors"][0]["pointer"].startswith("/"), prob)
                self.assertFalse(os.path.exists(out))
                self.assertEqual([f for f in os.listdir(self.d) if ".out." in f], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
