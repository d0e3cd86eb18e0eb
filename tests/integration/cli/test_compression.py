"""Compression options: gzip levels, lzf and none all read back with anndata,
and h5py reports the filter each dataset carries."""

import os
import unittest

import anndata
import h5py
import numpy as np

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase

RNG = np.random.default_rng(7)
X = RNG.choice([-1.0, 0.0, 1.0, np.nan], size=(200, 50)).round(3)


def request(**opts):
    req = {"adata": {
        "X": [[None if np.isnan(v) else v for v in row] for row in X.tolist()],
        "obs": {"columns": {"label": ["c%d" % (i % 7) for i in range(200)]}},
        "obsm": {"X_pca": RNG.normal(size=(200, 3)).tolist()},
        "uns": {"s": "scalar", "n": 5},
    }}
    req.update(opts)
    return req


class Compression(CliCase):
    def check(self, opts, want_filter, want_opts):
        res = self.export(request(**opts))
        job = self.assert_ok(res)
        a = anndata.read_h5ad(res.path)
        np.testing.assert_array_equal(a.X, X)
        self.assertEqual(a.obs["label"].astype(str).tolist()[:3], ["c0", "c1", "c2"])
        self.assertEqual(a.uns["s"], "scalar")
        with h5py.File(res.path, "r") as f:
            for name in ("X", "obsm/X_pca"):
                d = f[name]
                self.assertEqual(d.compression, want_filter, (opts, name))
                self.assertEqual(d.compression_opts, want_opts, (opts, name))
            # Scalars are never compressed (HDF5 cannot chunk them).
            self.assertIsNone(f["uns/s"].compression)
            self.assertIsNone(f["uns/n"].compression)
        return job, os.path.getsize(res.path)

    def test_gzip_levels(self):
        sizes = {}
        for level in (0, 4, 9):
            with self.subTest(level=level):
                job, sizes[level] = self.check({"compression": "gzip", "compression_opts": level},
                                               "gzip", level)
                self.assertEqual(job["compression"], "gzip")
                self.assertEqual(job["compression_opts"], level)
        self.assertLess(sizes[9], sizes[0])

    def test_gzip_default_level_is_4(self):
        job, _ = self.check({}, "gzip", 4)
        self.assertEqual(job["compression_opts"], 4)

    def test_lzf(self):
        job, _ = self.check({"compression": "lzf"}, "lzf", None)
        self.assertEqual(job["compression"], "lzf")
        self.assertNotIn("compression_opts", job)

    def test_none(self):
        job, _ = self.check({"compression": None}, None, None)
        self.assertEqual(job["compression"], "none")

    def test_bad_combinations(self):
        for opts, ptr in (({"compression": "lzf", "compression_opts": 1}, "/compression_opts"),
                          ({"compression": None, "compression_opts": 1}, "/compression_opts"),
                          ({"compression_opts": 12}, "/compression_opts"),
                          ({"compression": "brotli"}, "/compression"),
                          ({"compression": "lzf", "format": "npz"}, "/compression")):
            with self.subTest(opts=opts):
                self.assert_problem(self.export(request(**opts)), ptr)


if __name__ == "__main__":
    unittest.main()
