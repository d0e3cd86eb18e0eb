"""anndata's own test objects (anndata.tests.helpers.gen_adata: record
arrays in uns, categoricals, nullable columns, DataFrames in obsm, sparse
layers and graphs) through the CLI: h5ad → h5ad compared with assert_equal
against anndata.read_h5ad of the original, and h5ad → npz rebuilt with the
README's code. Several shapes and seeds, with and without raw, gzip and
uncompressed.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest
import warnings

import anndata as ad
import numpy as np
import pandas as pd
from anndata.tests.helpers import assert_equal, gen_adata

warnings.simplefilter("ignore")
BIN = os.environ["ADX_BIN"]
SRC = os.environ["ADX_SRC"]

CASES = [  # (shape, seed, raw, compression)
    ((10, 8), 0, False, "gzip"),
    ((10, 8), 1, True, "none"),
    ((31, 17), 2, True, "gzip"),
    ((3, 40), 3, False, "none"),
    ((57, 5), 4, True, "lzf"),
]


def readme_npz_reader():
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    sec = re.search(r"(?ms)^### npz\n(.*?)(?=^##|\Z)", text).group(1)
    ns = {}
    exec(compile(re.search(r"```python\n(.*?)```", sec, re.S).group(1), "README.md", "exec"), ns)
    return ns["read_npz_anndata"]


def make(shape, seed, raw):
    np.random.seed(seed)  # gen_adata draws from numpy's global state
    a = gen_adata(shape)
    if raw:
        a.raw = a
        a = a[:, : max(1, shape[1] - 2)].copy()
    return a


def export(src, out, *opts):
    p = subprocess.run([BIN, "export", src, "-o", out, *opts], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"export {src} {opts} failed ({p.returncode}): {p.stderr}")
    return p


def as_plain(v):
    """Values of a record array or string column as Python lists, so '<U'
    (npz) and object (h5ad) string fields compare as the same strings."""
    if isinstance(v, np.ndarray) and v.dtype.names:
        return {n: [x.item() if hasattr(x, "item") else x for x in v[n]] for n in v.dtype.names}
    return v


class RoundTrip(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.read_npz = staticmethod(readme_npz_reader())

    def test_h5ad(self):
        for shape, seed, raw, comp in CASES:
            with self.subTest(shape=shape, seed=seed, raw=raw, compression=comp), \
                    tempfile.TemporaryDirectory() as d:
                src, out = os.path.join(d, "in.h5ad"), os.path.join(d, "out.h5ad")
                make(shape, seed, raw).write_h5ad(src, compression="gzip" if seed % 2 else None)
                export(src, out, "--compression", comp)
                want = ad.read_h5ad(src)
                got = ad.read_h5ad(out)
                assert_equal(got, want)
                rec = got.uns["O_recarray"]
                self.assertIsInstance(rec, np.ndarray)
                self.assertEqual(rec.dtype.names, want.uns["O_recarray"].dtype.names)
                self.assertEqual(as_plain(rec), as_plain(want.uns["O_recarray"]))
                self.assertEqual(got.raw is None, not raw)

    def test_npz(self):
        for shape, seed, raw, comp in CASES:
            if comp == "lzf":
                continue  # npz has no lzf
            with self.subTest(shape=shape, seed=seed, raw=raw, compression=comp), \
                    tempfile.TemporaryDirectory() as d:
                src, out = os.path.join(d, "in.h5ad"), os.path.join(d, "out.npz")
                make(shape, seed, raw).write_h5ad(src)
                export(src, out, "--format", "npz", "--compression", comp)
                want = ad.read_h5ad(src)
                got = self.read_npz(out)
                with np.load(out, allow_pickle=False) as z:
                    rec = z["uns/O_recarray"]  # readable without pickle
                    self.assertTrue(all(rec.dtype[n].kind == "U" for n in rec.dtype.names))
                self.assertEqual(as_plain(got.uns["O_recarray"]), as_plain(want.uns["O_recarray"]))
                # npz strings are '<U', h5ad's object: compare the rest with
                # the record array set aside
                for x in (got, want):
                    del x.uns["O_recarray"]
                assert_equal(got, want)

    def test_csv_bundle_recarray(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "in.h5ad"), os.path.join(d, "out.zip")
            make((12, 6), 5, False).write_h5ad(src)
            export(src, out, "--format", "csv", "--include", "uns/*")
            want = ad.read_h5ad(src)
            for k in ("obsm", "varm"):  # write_csvs cannot write gen_adata's sparse obsm
                getattr(want, k).clear()
            ref = os.path.join(d, "ref")
            want.write_csvs(ref, skip_data=False)
            import zipfile
            with zipfile.ZipFile(out) as z:
                got = z.read("uns/O_recarray.csv").decode()
            with open(os.path.join(ref, "uns", "O_recarray.csv"), encoding="utf-8") as f:
                self.assertEqual(got, f.read())
            self.assertEqual(len(pd.read_csv(ref + "/uns/O_recarray.csv", header=None)),
                             len(want.uns["O_recarray"]))

    def test_recarray_in_obsm_varm(self):
        # payload.md: a record array may also be an obsm/varm value
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "in.h5ad")
            a = ad.AnnData(np.ones((3, 2), dtype=np.float32))
            a.obsm["r"] = np.rec.fromarrays(
                [np.array(["a", "bé", ""], dtype=object), np.arange(3.0), np.array([True, False, True])],
                names=["s", "f", "b"])
            a.varm["r"] = np.rec.fromarrays([np.array([1, -2], dtype=np.int8)], names=["k"])
            a.write_h5ad(src)
            want = ad.read_h5ad(src)
            out = os.path.join(d, "out.h5ad")
            export(src, out)
            got = ad.read_h5ad(out)
            assert_equal(got, want)
            self.assertEqual(got.obsm["r"].dtype.names, ("s", "f", "b"))
            self.assertEqual(got.varm["r"].dtype["k"], np.int8)
            npz = os.path.join(d, "out.npz")
            export(src, npz, "--format", "npz")
            with np.load(npz, allow_pickle=False) as z:
                r = z["obsm/r"]
                self.assertEqual(r.dtype.descr, [("s", "<U2"), ("f", "<f8"), ("b", "|b1")])
                self.assertEqual(r.tolist(), [("a", 0.0, True), ("bé", 1.0, False), ("", 2.0, True)])
            rebuilt = self.read_npz(npz)
            self.assertEqual(as_plain(rebuilt.varm["r"]), {"k": [1, -2]})
            zp = os.path.join(d, "out.zip")
            export(src, zp, "--format", "csv")
            import zipfile
            with zipfile.ZipFile(zp) as z:
                self.assertEqual(z.read("obsm.csv").decode().splitlines(),
                                 ["r1,r2,r3", "a,0.0,True", "bé,1.0,False", ",2.0,True"])

    def test_summary_lists_recarray(self):
        with tempfile.TemporaryDirectory() as d:
            src, out = os.path.join(d, "in.h5ad"), os.path.join(d, "out.h5ad")
            a = make((9, 4), 6, False)
            a.write_h5ad(src)
            import json
            j = json.loads(export(src, out).stdout)
            recs = j["summary"]["record_arrays"]
            want = a.uns["O_recarray"]
            self.assertEqual([r["path"] for r in recs], ["/uns/O_recarray"])
            self.assertEqual(recs[0]["n"], len(want))
            self.assertEqual([f["name"] for f in recs[0]["fields"]], list(want.dtype.names))
            self.assertIn("O_recarray", j["summary"]["uns"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
