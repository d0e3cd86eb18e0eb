"""The CLI writing npz and csv/txt bundles for the real Polis fixture,
compared with polis_real.expected.h5ad (what anndata 0.8 wrote) and with
anndata's own write_csvs of that object. Needs ADX_BIN and ADX_SHARED."""
import csv
import io
import json
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
import anndata as ad

BIN = os.environ.get("ADX_BIN", "")
SHARED = os.environ.get("ADX_SHARED", "")
FIX = os.path.join(SHARED, "fixtures")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_formats import readme_npz_code  # noqa: E402  (one extractor for both tests)


def expected():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(os.path.join(FIX, "polis_real.expected.h5ad"))


def export(d, fmt, **opts):
    with open(os.path.join(FIX, "polis_real.json"), encoding="utf-8") as f:
        req = json.load(f)
    ext = {"npz": "npz", "csv": "zip", "txt": "zip"}[fmt]
    req.update(format=fmt, filename=f"conversation.{ext}", **opts)
    rp = os.path.join(d, "req.json")
    with open(rp, "w", encoding="utf-8") as f:
        json.dump(req, f)
    out = os.path.join(d, f"out.{ext}")
    p = subprocess.run([BIN, "export", rp, "-o", out], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"export failed ({p.returncode}): {p.stderr}")
    return out, json.loads(p.stdout)


def values(s):
    """A column as a plain list, missing values as None, for comparison."""
    s = pd.Series(s)
    return s.astype(object).where(s.notna(), None).tolist()


def read_npz_anndata(path):
    code = readme_npz_code()
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns["read_npz_anndata"](path)


@unittest.skipUnless(os.access(BIN, os.X_OK) and os.path.isdir(FIX), "needs ADX_BIN and ADX_SHARED")
class TestCliNpz(unittest.TestCase):
    def check_frame(self, got, exp, what):
        self.assertEqual(list(got.columns), list(exp.columns), what)
        self.assertEqual([str(i) for i in got.index], [str(i) for i in exp.index], what)
        for c in exp.columns:
            self.assertEqual(values(got[c]), values(exp[c]), f"{what}/{c}")

    def test_polis_npz_gzip(self):
        with tempfile.TemporaryDirectory() as d:
            out, job = export(d, "npz")
            self.assertEqual(job["format"], "npz")
            self.assertFalse([r for r in job["report"] if r["action"] == "not_written"])
            with zipfile.ZipFile(out) as zf:
                self.assertTrue(all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist()))
            with np.load(out, allow_pickle=False) as z:
                for name in z.files:  # every member loads without pickle
                    self.assertNotEqual(z[name].dtype.kind, "O", name)
            g, e = read_npz_anndata(out), expected()
        self.assertEqual(g.shape, e.shape)
        # X arrives as JSON numbers (float64); anndata 0.8 cast its copy to float32
        self.assertEqual(g.X.dtype, np.float64)
        self.assertTrue(np.array_equal(g.X.astype(e.X.dtype), e.X, equal_nan=True))
        self.check_frame(g.obs, e.obs, "obs")
        self.check_frame(g.var, e.var, "var")
        km_g, km_e = g.obs["kmeans_polis"], e.obs["kmeans_polis"]
        self.assertEqual(list(km_g.cat.categories), list(km_e.cat.categories))
        self.assertEqual(km_g.cat.categories.dtype.kind, "i")  # int categories stay ints
        self.assertEqual(int((km_g == -1).sum()), int((km_e == -1).sum()))  # noise label
        self.assertEqual(int(km_g.isna().sum()), int(km_e.isna().sum()))  # never clustered
        self.assertGreater(int(km_g.isna().sum()), 0)
        for ns in ("obsm", "varm"):
            for k in getattr(e, ns):
                self.assertTrue(np.array_equal(getattr(g, ns)[k], getattr(e, ns)[k], equal_nan=True),
                                f"{ns}/{k}")
        for k in e.layers:
            np.testing.assert_allclose(g.layers[k], e.layers[k], rtol=1e-6, err_msg=k)
        for k in ("statements", "votes"):
            self.check_frame(g.uns[k], e.uns[k], f"uns/{k}")
        self.assertIsNotNone(g.raw)

    def test_strings_to_categoricals_applies_to_npz(self):
        # payload.md states the option (default true) for every format
        req = {"format": "npz", "adata": {
            "X": [[1], [2], [3]],
            "obs": {"index": ["a", "b", "c"],
                    "columns": {"grp": ["x", "y", "x"], "name": ["p", "q", "r"]}}}}
        with tempfile.TemporaryDirectory() as d:
            rp = os.path.join(d, "req.json")
            for s2c in (None, False):
                r = dict(req) if s2c is None else dict(req, strings_to_categoricals=s2c)
                with open(rp, "w") as f:
                    json.dump(r, f)
                out = os.path.join(d, "o.npz")
                p = subprocess.run([BIN, "export", rp, "-o", out], capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                with np.load(out, allow_pickle=False) as z:
                    if s2c is None:
                        self.assertEqual(z["obs/grp/categories.npy"].tolist(), ["x", "y"])
                        self.assertEqual(z["obs/grp/codes.npy"].tolist(), [0, 1, 0])
                        self.assertNotIn("obs/grp.npy", z.files)
                    else:
                        self.assertEqual(z["obs/grp.npy"].tolist(), ["x", "y", "x"])
                    # as many distinct values as rows: stays strings
                    self.assertEqual(z["obs/name.npy"].tolist(), ["p", "q", "r"])
                g = read_npz_anndata(out)
                self.assertEqual(g.obs["grp"].dtype == "category", s2c is None)
                self.assertEqual(list(g.obs["grp"]), ["x", "y", "x"])

    def test_record_field_names_in_any_unicode(self):
        # np.save writes a header of format 3.0 (UTF-8) for names latin-1
        # cannot hold; numpy.load reads them back without pickle
        names = ["naïve", "β cells", "tab\there", "q'uo\"te", "back\\slash", "日本"]
        req = {"format": "npz", "adata": {"X": [[1]], "uns": {"r": {
            "encoding-type": "rec-array",
            "fields": {n: [i, i + 1] for i, n in enumerate(names)}}}}}
        with tempfile.TemporaryDirectory() as d:
            rp, out = os.path.join(d, "req.json"), os.path.join(d, "o.npz")
            with open(rp, "w") as f:
                json.dump(req, f)
            p = subprocess.run([BIN, "export", rp, "-o", out], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            with np.load(out, allow_pickle=False) as z:
                r = z["uns/r.npy"]
            self.assertEqual(list(r.dtype.names), names)
            self.assertEqual(r["日本"].tolist(), [5, 6])

    def test_polis_npz_stored(self):
        with tempfile.TemporaryDirectory() as d:
            out, _ = export(d, "npz", compression=None, compression_opts=None)
            with zipfile.ZipFile(out) as zf:
                self.assertTrue(all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist()))
            g = read_npz_anndata(out)
        self.assertEqual(g.shape, (138, 46))


def write_csvs(adata, sep):
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad._io.write.write_csvs(d, adata, skip_data=False, sep=sep)
        files = {}
        for root, _, names in os.walk(d):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as f:
                    files[os.path.relpath(p, d)] = f.read().decode()
        return files


@unittest.skipUnless(os.access(BIN, os.X_OK) and os.path.isdir(FIX), "needs ADX_BIN and ADX_SHARED")
class TestCliCsv(unittest.TestCase):
    def check(self, fmt):
        sep = "," if fmt == "csv" else "\t"
        with tempfile.TemporaryDirectory() as d:
            out, job = export(d, fmt)
            with zipfile.ZipFile(out) as zf:
                ours = {i.filename: zf.read(i).decode() for i in zf.infolist() if not i.is_dir()}
        theirs = write_csvs(expected(), sep)
        not_written = {r["path"] for r in job["report"] if r["action"] == "not_written"}
        # dicts in uns, layers and raw are reported rather than written
        self.assertEqual(not_written, {"/uns/votes_meta", "/uns/source", "/uns/schema",
                                       "/uns/kmeans_polis", "/layers/X_masked_imputed_mean",
                                       "/raw"})
        self.assertEqual(sorted(ours), sorted(theirs))
        for name in ("X.csv", "varm.csv", "uns/statements.csv", "uns/votes.csv"):
            self.assertEqual(ours[name], theirs[name], name)
        parse = lambda t: list(csv.reader(io.StringIO(t), delimiter=sep))
        for name in ("obs.csv", "var.csv"):
            o, t = parse(ours[name]), parse(theirs[name])
            # the request names its indexes (voter-id, comment-id); the h5ad
            # anndata wrote does not keep the name: only that cell differs
            self.assertEqual(o[0][1:], t[0][1:], name)
            self.assertEqual(o[1:], t[1:], name)
        # obsm column order follows the request, the h5ad's is alphabetical
        o, t = parse(ours["obsm.csv"]), parse(theirs["obsm.csv"])
        cols = lambda rows: {h: [r[i] for r in rows[1:]] for i, h in enumerate(rows[0])}
        self.assertEqual(cols(o), cols(t))

    def test_polis_csv(self):
        self.check("csv")

    def test_polis_txt(self):
        self.check("txt")


if __name__ == "__main__":
    unittest.main(verbosity=2)
