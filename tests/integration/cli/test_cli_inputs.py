"""`anndata-exportd export INPUT` with the inputs that are not a request JSON:
an h5ad file written by anndata, a Polis CSV folder (data/polis-example),
and a request naming a stored dataset with --data-dir; plus the option
combinations that must fail with exit 2 and leave no file behind."""

import importlib
import json
import os
import shutil
import subprocess
import sys
import unittest

import numpy as np
import pandas as pd

from adxcli import BIN, CliCase, problem_doc

SRC = os.environ.get("ADX_SRC", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
POLIS = os.path.join(SRC, "data", "polis-example")


def polis_reference_helper():
    """pandas_reference from tests/integration/datasets/test_polis.py (the
    pivot valency-anndata's loader makes). That script reads its model_dump
    path from argv at import time, so it is given a placeholder."""
    sys.path.insert(0, os.path.join(SRC, "tests", "integration", "datasets"))
    saved = sys.argv
    sys.argv = [saved[0], "unused"]
    try:
        return importlib.import_module("test_polis").pandas_reference
    finally:
        sys.argv = saved


pandas_reference = polis_reference_helper()


def npz_members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class H5adInput(CliCase):
    def setUp(self):
        super().setUp()
        import anndata as ad
        rng = np.random.default_rng(7)
        self.X = rng.normal(size=(5, 3)).astype(np.float32)
        obs = pd.DataFrame({"grp": ["a", "b", "a", "c", "b"], "n": np.arange(5, dtype=np.int64),
                            "kmeans_k": np.array([1, 0, 1, 2, 0], dtype=np.int64)},
                           index=[f"cell{i}" for i in range(5)])
        var = pd.DataFrame(index=["g1", "g2", "g3"])
        self.pca = rng.normal(size=(5, 2))
        a = ad.AnnData(self.X, obs=obs, var=var,
                       obsm={"X_pca": self.pca, "X_umap": rng.normal(size=(5, 2))},
                       uns={"title": "t", "other": 1})
        # No extension: the HDF5 signature, not the name, marks an h5ad.
        self.input = os.path.join(self.dir, "cells")
        a.write_h5ad(self.input)
        # anndata's writer made grp a categorical; a plain string column is
        # what strings_to_categoricals acts on, so put one back.
        import h5py
        with h5py.File(self.input, "r+") as f:
            del f["obs/grp"]
            d = f["obs"].create_dataset("grp", data=np.array(["a", "b", "a", "c", "b"], dtype=object),
                                        dtype=h5py.string_dtype())
            d.attrs["encoding-type"] = "string-array"
            d.attrs["encoding-version"] = "0.2.0"

    def run_export(self, *args):
        return self.run_cli(["export", self.input] + list(args))

    def test_include_to_h5ad(self):
        import anndata as ad
        p = self.run_export("-o", "out.h5ad", "--include", "obsm/X_pca",
                            "--include=obs/grp", "--filename", "cells.h5ad")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        job = json.loads(p.stdout)
        self.assertEqual(job["filename"], "cells.h5ad")
        self.assertEqual(job["summary"]["obsm"], ["X_pca"])
        self.assertEqual(job["summary"]["obs"], ["grp"])
        b = ad.read_h5ad(os.path.join(self.dir, "out.h5ad"))
        np.testing.assert_array_equal(np.asarray(b.X), self.X)
        self.assertEqual(list(b.obs.columns), ["grp"])
        self.assertEqual(list(b.obs["grp"].astype(str)), ["a", "b", "a", "c", "b"])
        self.assertEqual(list(b.obs_names), [f"cell{i}" for i in range(5)])
        self.assertEqual(list(b.obsm.keys()), ["X_pca"])
        np.testing.assert_array_equal(b.obsm["X_pca"], self.pca)
        self.assertEqual(len(b.uns), 0)

    def test_include_to_npz(self):
        p = self.run_export("-o", "out.npz", "--format", "npz", "--include", "obsm/X_*",
                            "--include", "uns/title", "--compression", "none")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        job = json.loads(p.stdout)
        self.assertEqual(job["format"], "npz")
        self.assertEqual(job["compression"], "none")
        z = npz_members(os.path.join(self.dir, "out.npz"))
        np.testing.assert_array_equal(z["X"], self.X)
        self.assertEqual(z["X"].dtype, np.float32)
        np.testing.assert_array_equal(z["obsm/X_pca"], self.pca)
        self.assertIn("obsm/X_umap", z)
        self.assertEqual(str(z["uns/title"][()]), "t")
        self.assertNotIn("uns/other", z)
        self.assertNotIn("obs/grp", z)
        self.assertEqual([str(s) for s in z["obs/_index"]], [f"cell{i}" for i in range(5)])

    def test_categoricals_options(self):
        import anndata as ad
        p = self.run_export("-o", "s.h5ad")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(str(ad.read_h5ad(os.path.join(self.dir, "s.h5ad")).obs["grp"].dtype),
                         "category")
        # Default kmeans_*: the int column becomes a categorical keeping
        # integer categories; the flag keeps strings plain.
        p = self.run_export("-o", "a.h5ad", "--no-strings-to-categoricals")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        b = ad.read_h5ad(os.path.join(self.dir, "a.h5ad"))
        self.assertEqual(str(b.obs["kmeans_k"].dtype), "category")
        self.assertEqual(list(b.obs["kmeans_k"].cat.categories), [0, 1, 2])
        self.assertEqual(list(b.obs["kmeans_k"].astype(int)), [1, 0, 1, 2, 0])
        self.assertNotEqual(str(b.obs["grp"].dtype), "category")
        p = self.run_export("-o", "b.h5ad", "--categorical-columns", "n",
                            "--categorical-columns", "grp")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        b = ad.read_h5ad(os.path.join(self.dir, "b.h5ad"))
        self.assertEqual(str(b.obs["n"].dtype), "category")
        self.assertNotEqual(str(b.obs["kmeans_k"].dtype), "category")
        self.assertEqual(str(b.obs["grp"].dtype), "category")

    def test_compression_options(self):
        import h5py
        p = self.run_export("-o", "l.h5ad", "--compression", "lzf")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with h5py.File(os.path.join(self.dir, "l.h5ad"), "r") as f:
            self.assertEqual(f["obsm/X_pca"].compression, "lzf")
        p = self.run_export("-o", "g.h5ad", "--compression-opts", "9")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(json.loads(p.stdout)["compression_opts"], 9)
        with h5py.File(os.path.join(self.dir, "g.h5ad"), "r") as f:
            self.assertEqual(f["obsm/X_pca"].compression_opts, 9)

    def test_bad_options_exit_2_without_output(self):
        cases = [
            (["--format", "xls"], "/format"),
            (["--compression", "lzf", "--compression-opts", "3"], "/compression_opts"),
            (["--include", "nonsense"], "/include/0"),
            (["--filename", "a.npz", "--format", "h5ad"], "/filename"),
        ]
        for args, ptr in cases:
            with self.subTest(args=args):
                p = self.run_export("-o", "bad.h5ad", *args)
                self.assertEqual(p.returncode, 2, p.stderr.decode())
                self.assertEqual(problem_doc(p.stderr)[0]["errors"][0]["pointer"], ptr)
                self.assertEqual(sorted(os.listdir(self.dir)), ["cells"])
        for args in (["--compression-opts", "x"], ["--include"], ["--bogus"]):
            with self.subTest(args=args):
                p = self.run_export("-o", "bad.h5ad", *args)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(sorted(os.listdir(self.dir)), ["cells"])

    def test_corrupt_h5ad_exit_2(self):
        with open(self.input, "r+b") as f:
            f.truncate(800)
        p = self.run_export("-o", "bad.h5ad")
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertNotIn(self.dir, json.dumps(problem_doc(p.stderr)[0]))
        self.assertEqual(sorted(os.listdir(self.dir)), ["cells"])


    def test_user_block_h5ad_without_extension(self):
        # HDF5 allows a user block before the superblock (512, 1024, ...
        # bytes); the signature is looked for there too.
        import h5py
        ub = os.path.join(self.dir, "with-user-block")
        with h5py.File(self.input, "r") as src, h5py.File(ub, "w", userblock_size=1024) as dst:
            for k in src:
                src.copy(k, dst)
            for k, v in src.attrs.items():
                dst.attrs[k] = v
        p = subprocess.run([BIN, "export", ub, "-o", os.path.join(self.dir, "ub.h5ad")],
                           capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        import anndata as ad
        np.testing.assert_array_equal(ad.read_h5ad(os.path.join(self.dir, "ub.h5ad")).X, self.X)

    def test_named_h5ad_that_is_not_hdf5(self):
        # Named like an h5ad: the error is about HDF5, not about JSON.
        bad = os.path.join(self.dir, "notes.h5ad")
        with open(bad, "w") as f:
            f.write("just text")
        p = subprocess.run([BIN, "export", bad, "-o", os.path.join(self.dir, "o.h5ad")],
                           capture_output=True)
        self.assertEqual(p.returncode, 2)
        prob = problem_doc(p.stderr)[0]
        self.assertIn("HDF5", prob["detail"])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "o.h5ad")))

class PolisInput(CliCase):
    def test_folder_matches_pandas(self):
        import anndata as ad
        p = self.run_cli(["export", POLIS, "-o", "p.h5ad"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        job = json.loads(p.stdout)
        self.assertEqual((job["summary"]["n_obs"], job["summary"]["n_vars"]), (138, 46))
        b = ad.read_h5ad(os.path.join(self.dir, "p.h5ad"))
        _, m = pandas_reference(POLIS)
        self.assertEqual(b.shape, m.shape)
        np.testing.assert_array_equal(np.asarray(b.X), m.to_numpy(dtype=float))
        self.assertEqual(list(b.obs_names), [str(x) for x in m.index])
        self.assertEqual(list(b.var_names), [str(x) for x in m.columns])
        self.assertEqual(b.obs.index.name, "voter-id")
        self.assertEqual(b.var.index.name, "comment-id")
        comments = pd.read_csv(os.path.join(POLIS, "comments.csv")).set_index("comment-id")
        self.assertEqual(list(b.var["content"].astype(str)),
                         [comments.loc[c, "comment-body"] for c in m.columns])
        self.assertEqual(int(b.uns["votes_meta"]["n_votes_raw"]),
                         len(pd.read_csv(os.path.join(POLIS, "votes.csv"))))

    def test_folder_to_npz(self):
        p = self.run_cli(["export", POLIS, "--format", "npz", "-o", "p.npz"])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        z = npz_members(os.path.join(self.dir, "p.npz"))
        _, m = pandas_reference(POLIS)
        np.testing.assert_array_equal(z["X"], m.to_numpy(dtype=float))
        self.assertEqual([str(s) for s in z["var/_index"]], [str(x) for x in m.columns])

    def test_not_a_polis_folder(self):
        empty = os.path.join(self.dir, "empty")
        os.mkdir(empty)
        p = self.run_cli(["export", empty, "-o", "x.h5ad"])
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertNotIn(self.dir, json.dumps(problem_doc(p.stderr)[0]))
        self.assertEqual(sorted(os.listdir(self.dir)), ["empty"])


class DatasetRequest(CliCase):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.dir, "data")
        os.mkdir(self.data)
        shutil.copytree(POLIS, os.path.join(self.data, "conv"))

    def write_request(self, req):
        path = os.path.join(self.dir, "request.json")
        with open(path, "w") as f:
            json.dump(req, f)
        return path

    def test_dataset_with_data_dir(self):
        import anndata as ad
        req = self.write_request({"dataset": "conv", "include": ["uns/votes_meta"],
                                  "filename": "conv.h5ad"})
        p = self.run_cli(["export", req, "--data-dir", self.data])
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        job = json.loads(p.stdout)
        self.assertEqual(job["output"], "conv.h5ad")
        self.assertEqual(job["summary"]["uns"], ["votes_meta"])
        b = ad.read_h5ad(os.path.join(self.dir, "conv.h5ad"))
        _, m = pandas_reference(POLIS)
        np.testing.assert_array_equal(np.asarray(b.X), m.to_numpy(dtype=float))
        # The environment variable does the same, also for a request on stdin.
        env = dict(os.environ, ANNDATA_EXPORTD_DATA_DIR=self.data)
        p = subprocess.run([BIN, "export", "-", "-o", "s.npz"], capture_output=True,
                           cwd=self.dir, env=env,
                           input=json.dumps({"dataset": "conv", "format": "npz"}).encode())
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertTrue(os.path.exists(os.path.join(self.dir, "s.npz")))

    def test_dataset_errors(self):
        env = {k: v for k, v in os.environ.items() if k != "ANNDATA_EXPORTD_DATA_DIR"}
        req = self.write_request({"dataset": "conv"})
        before = sorted(os.listdir(self.dir))
        # No data directory: exit 2, saying how to give one.
        p = subprocess.run([BIN, "export", req, "-o", "x.h5ad"], capture_output=True,
                           cwd=self.dir, env=env)
        self.assertEqual(p.returncode, 2)
        prob = problem_doc(p.stderr)[0]
        self.assertEqual(prob["errors"][0]["pointer"], "/dataset")
        self.assertIn("--data-dir", p.stderr.decode())
        # Unknown name: 404 problem, exit 2.
        req2 = self.write_request({"dataset": "nope"})
        p = self.run_cli(["export", req2, "--data-dir", self.data, "-o", "x.h5ad"])
        self.assertEqual(p.returncode, 2)
        self.assertEqual(problem_doc(p.stderr)[0]["status"], 404)
        self.assertNotIn(self.data, p.stderr.decode())
        # A data directory that does not exist is not created.
        missing = os.path.join(self.dir, "missing")
        p = self.run_cli(["export", req, "--data-dir", missing, "-o", "x.h5ad"])
        self.assertEqual(p.returncode, 2)
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(sorted(os.listdir(self.dir)), before)

    def test_file_options_with_request_exit_2(self):
        req = self.write_request({"dataset": "conv"})
        before = sorted(os.listdir(self.dir))
        for args in (["--format", "npz"], ["--include", "obs/*"], ["--no-strings-to-categoricals"],
                     ["--compression=none"], ["--filename", "a.h5ad"],
                     ["--categorical-columns", "x"], ["--compression-opts", "1"]):
            with self.subTest(args=args):
                p = self.run_cli(["export", req, "--data-dir", self.data, "-o", "x.h5ad"] + args)
                self.assertEqual(p.returncode, 2)
                self.assertIn("request", p.stderr.decode())
                self.assertEqual(sorted(os.listdir(self.dir)), before)


if __name__ == "__main__":
    unittest.main()
