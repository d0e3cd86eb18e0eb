"""The command line itself: -o -, default output names, stdin requests,
--help, --version, bad usage, and I/O failures that must leave nothing
behind."""

import hashlib
import io
import json
import os
import re
import unittest

import anndata
import h5py

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase, problem_doc

SMALL = {"adata": {"X": [[1.0, 2.0], [3.0, None]],
                   "obs": {"index": ["a", "b"], "columns": {"kmeans_k": [0, -1]}}}}


class Output(CliCase):
    def test_stdout(self):
        res = self.export(SMALL, out="-")
        self.assertEqual(res.rc, 0, res.stderr)
        job = json.loads(res.stderr)  # the job JSON moves to stderr
        self.assertEqual(job["output"], "-")
        self.assertEqual(job["size_bytes"], len(res.stdout))
        self.assertEqual(job["sha256"], hashlib.sha256(res.stdout).hexdigest())
        self.assertEqual(res.stdout[:8], b"\x89HDF\r\n\x1a\n")
        with h5py.File(io.BytesIO(res.stdout), "r") as f:
            self.assertEqual(f["X"].shape, (2, 2))
        self.assertEqual(res.leftovers(), [])

    def test_default_name_from_filename(self):
        req = dict(SMALL, filename="conv.h5ad")
        res = self.export(req, out=None)
        job = self.assert_ok(res)
        self.assertEqual(job["output"], "conv.h5ad")
        self.assertEqual(res.leftovers(), ["conv.h5ad"])
        a = anndata.read_h5ad(os.path.join(self.dir, "conv.h5ad"))
        self.assertEqual(a.shape, (2, 2))

    def test_default_name_without_filename(self):
        res = self.export(SMALL, out=None)
        job = self.assert_ok(res)
        self.assertEqual(job["output"], "export.h5ad")
        self.assertEqual(job["filename"], "export.h5ad")
        self.assertEqual(res.leftovers(), ["export.h5ad"])

    def test_output_flag_forms(self):
        req = os.path.join(self.dir, "request.json")
        with open(req, "w") as f:
            json.dump(SMALL, f)
        for args in (["--output", "a.h5ad"], ["--output=b.h5ad"], ["-o", "c.h5ad"]):
            res = self.run_cli(["export"] + args + [req])
            self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(sorted(os.listdir(self.dir)),
                         ["a.h5ad", "b.h5ad", "c.h5ad", "request.json"])
        self.assertEqual(os.stat(os.path.join(self.dir, "a.h5ad")).st_mode & 0o777, 0o644)

    def test_longest_filename(self):
        name = "n" * 250 + ".h5ad"  # exactly the 255-byte limit
        res = self.export(dict(SMALL, filename=name), out=None)
        job = self.assert_ok(res)
        self.assertEqual(job["output"], name)
        self.assertEqual(res.leftovers(), [name])

    def test_gzip_request_and_options_after_adata(self):
        # gzip by its magic bytes (whatever the name), and categorical_columns
        # given after "adata" still applies to what adata held.
        import gzip
        text = ('{"adata": {"X": [[1.0], [2.0]], "obs": {"columns": {"grp": [1, 2]}}}, '
                '"categorical_columns": ["grp"]}')
        req = os.path.join(self.dir, "req.json.gz")
        with gzip.open(req, "wt") as f:
            f.write(text)
        res = self.run_cli(["export", req, "-o", "g.h5ad"])
        self.assertEqual(res.returncode, 0, res.stderr)
        a = anndata.read_h5ad(os.path.join(self.dir, "g.h5ad"))
        self.assertEqual(str(a.obs["grp"].dtype), "category")
        self.assertEqual(list(a.obs["grp"].cat.categories), [1, 2])

    def test_pattern_limits_are_413(self):
        res = self.export(dict(SMALL, include=["obs/" + "x" * 5000]), out="p.h5ad")
        self.assert_problem(res, "/include/0", status=413)
        self.assertIn("max_pattern_bytes = 4096", res.problem()["detail"])

    def test_timings(self):
        job = self.assert_ok(self.export(SMALL, extra=["--timings"]))
        t = job["timings"]
        self.assertEqual(sorted(t), ["commit_s", "load_s", "prepare_s", "write_s", "writer_s"])
        self.assertTrue(all(v >= 0 for v in t.values()))
        # the write is the writer and the commit, and a little between them
        self.assertLessEqual(t["writer_s"] + t["commit_s"], t["write_s"])
        self.assertNotIn("timings", self.assert_ok(self.export(SMALL)))

    def test_request_from_stdin(self):
        res = self.run_cli(["export", "-", "-o", "in.h5ad"], stdin=json.dumps(SMALL).encode())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(json.loads(res.stdout)["summary"]["n_obs"], 2)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "in.h5ad")))

    def test_replaces_existing_output(self):
        out = os.path.join(self.dir, "out.h5ad")
        with open(out, "w") as f:
            f.write("old")
        job = self.assert_ok(self.export(SMALL))
        self.assertEqual(os.path.getsize(out), job["size_bytes"])

    def test_io_failures_leave_nothing(self):
        # The output path is a directory: the rename fails after the writer
        # ran, so the temp file must be cleaned up.
        os.mkdir(os.path.join(self.dir, "taken"))
        res = self.export(SMALL, out="taken")
        self.assertEqual(res.rc, 1, res.stderr)
        p = res.problem()
        self.assertEqual(p["status"], 500)
        self.assertNotIn(self.dir, json.dumps(p))  # no machine paths in the problem
        # The cause names the path as given and the system's reason.
        self.assertIn("taken: Is a directory", res.cause())
        self.assertEqual(res.leftovers(), ["taken"])
        self.assertEqual(os.listdir(os.path.join(self.dir, "taken")), [])
        # A directory that does not exist.
        res = self.export(SMALL, out="missing/out.h5ad")
        self.assertEqual(res.rc, 1, res.stderr)
        self.assertEqual(res.problem()["status"], 500)

    def test_missing_request_file(self):
        res = self.run_cli(["export", os.path.join(self.dir, "nope.json"), "-o", "x.h5ad"])
        self.assertEqual(res.returncode, 1)  # an I/O error, not bad input
        self.assertEqual(problem_doc(res.stderr)[0]["status"], 500)
        self.assertEqual(os.listdir(self.dir), [])


class FormatDispatch(CliCase):
    """The pipeline picks the writer from format / filename."""

    def test_npz_from_extension(self):
        import numpy as np
        res = self.export(dict(SMALL, filename="v.npz"), out=None)
        job = self.assert_ok(res)
        self.assertEqual((job["format"], job["content_type"]), ("npz", "application/zip"))
        z = np.load(os.path.join(self.dir, "v.npz"), allow_pickle=False)
        np.testing.assert_array_equal(z["X"], [[1.0, 2.0], [3.0, np.nan]])
        self.assertEqual(z["obs/_index"].tolist(), ["a", "b"])

    def test_npz_compression(self):
        import zipfile
        for comp, want in (("gzip", zipfile.ZIP_DEFLATED), (None, zipfile.ZIP_STORED)):
            with self.subTest(compression=comp):
                res = self.export(dict(SMALL, format="npz", compression=comp), out="c.npz")
                self.assert_ok(res)
                with zipfile.ZipFile(res.path) as z:
                    self.assertEqual(z.getinfo("X.npy").compress_type, want)

    def test_csv_and_txt_bundles(self):
        import zipfile
        for fmt, sep in (("csv", ","), ("txt", "\t")):
            with self.subTest(fmt=fmt):
                res = self.export(dict(SMALL, format=fmt), out="b.zip")
                job = self.assert_ok(res)
                self.assertEqual(job["format"], fmt)
                self.assertEqual(job["compression"], "gzip")
                with zipfile.ZipFile(res.path) as z:
                    names = z.namelist()
                    self.assertIn("X.csv", names)
                    self.assertIn("obs.csv", names)
                    x = z.read("X.csv").decode().splitlines()
                    self.assertEqual(x[0].split(sep)[:2], ["1.0", "2.0"])
                    self.assertEqual(z.getinfo("X.csv").compress_type, zipfile.ZIP_DEFLATED)

    def test_csv_null_compression_stores_members(self):
        import zipfile
        res = self.export(dict(SMALL, format="csv", compression=None), out="b.zip")
        self.assertEqual(self.assert_ok(res)["compression"], "none")
        with zipfile.ZipFile(res.path) as z:
            self.assertEqual(z.getinfo("X.csv").compress_type, zipfile.ZIP_STORED)


class Usage(CliCase):
    def test_help(self):
        for args in (["--help"], ["-h"], ["export", "--help"]):
            res = self.run_cli(args)
            self.assertEqual(res.returncode, 0)
            out = res.stdout.decode()
            self.assertIn("export REQUEST.json", out)
            self.assertIn("serve", out)
            self.assertIn("healthcheck", out)
            self.assertIn("--version", out)
            self.assertEqual(res.stderr, b"")

    def test_version(self):
        res = self.run_cli(["--version"])
        self.assertEqual(res.returncode, 0)
        out = res.stdout.decode()
        self.assertRegex(out, r"^anndata-exportd \d+\.\d+\.\d+\n")
        for lib in ("HDF5", "jansson", "libuv", "libmicrohttpd"):
            self.assertRegex(out, r"(?m)^%s \d+\.\d+" % re.escape(lib))

    def test_bad_usage(self):
        for args in ([], ["frobnicate"], ["--frob"], ["export"], ["export", "a.json", "--zip"],
                     ["export", "a.json", "b.json"], ["export", "a.json", "-o"]):
            with self.subTest(args=args):
                res = self.run_cli(args)
                self.assertEqual(res.returncode, 2)
                self.assertIn(b"usage: anndata-exportd", res.stderr)
                self.assertEqual(res.stdout, b"")


if __name__ == "__main__":
    unittest.main()
