"""Faults the file system does not produce on demand, injected with the
LD_PRELOAD shim of tests/fault: an fsync that fails with EIO and writes that
fail with ENOSPC, on the output directory only. Every format must fail with
a clear error and a non-zero exit, and leave neither the target nor a temp
file behind."""

import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
from adxcli import CliCase, BIN, problem_doc

SHIM = os.environ.get("ADX_FAULT_SHIM", "")
SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fault", "lsan.supp")

REQ = {"adata": {"X": [[1.0, 2.0], [3.0, None]],
                 "obs": {"index": ["a", "b"], "columns": {"kmeans_k": [0, 1]}},
                 "uns": {"info": {"v": [1, 2, 3]}}}}

OUTS = ["out.h5ad", "out.npz", "out.zip"]
FORMATS = {"out.h5ad": "h5ad", "out.npz": "npz", "out.zip": "csv"}


class Faults(CliCase):
    def setUp(self):
        super().setUp()
        if not SHIM or not os.path.exists(SHIM):
            self.fail("ADX_FAULT_SHIM is not set to the built shim")
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)

    def run_faulty(self, fault, out, after=0):
        req = dict(REQ, format=FORMATS[out])
        path = os.path.join(self.dir, "request.json")
        with open(path, "w") as f:
            json.dump(req, f)
        env = dict(os.environ, ADX_FAULT=fault, ADX_FAULT_PATH=self.out,
                   ADX_FAULT_AFTER=str(after), LD_PRELOAD=SHIM)
        # Under ASan the shim comes before the runtime; that is fine here.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
        env["LSAN_OPTIONS"] = (env.get("LSAN_OPTIONS", "") + ":print_suppressions=0:suppressions=" + SUPP).lstrip(":")
        return subprocess.run([BIN, "export", path, "-o", os.path.join(self.out, out)],
                              capture_output=True, env=env, timeout=120)

    def check_failed(self, proc, detail, cause, status=500):
        err = proc.stderr.decode(errors="replace")
        self.assertNotEqual(proc.returncode, 0, err)
        self.assertEqual(proc.returncode, 1, err)  # a server-side failure, not a bad request
        p, c = problem_doc(proc.stderr)
        self.assertEqual(p["status"], status)
        self.assertIn(detail, p["detail"])
        # The system's reason and the path are in the cause line only.
        self.assertIsNotNone(c, err)
        self.assertIn(cause, c)
        self.assertIn(self.out, c)
        self.assertNotIn(self.dir, json.dumps(p))
        self.assertEqual(os.listdir(self.out), [], "left behind: %s" % os.listdir(self.out))

    def test_fsync_eio(self):
        for out in OUTS:
            with self.subTest(out=out):
                proc = self.run_faulty("fsync", out)
                self.check_failed(proc, "cannot sync the file to disk", "Input/output error")

    def test_write_enospc(self):
        for out in OUTS:
            with self.subTest(out=out):
                proc = self.run_faulty("write", out)
                self.check_failed(proc, "cannot", "No space left on device", status=507)
                self.assertEqual(problem_doc(proc.stderr)[0]["type"].rsplit("/", 1)[1],
                                 "insufficient-storage")

    def test_write_enospc_in_the_middle_of_the_file(self):
        # The disk fills after a few writes: libzip is in the middle of the
        # archive when the error comes.
        for out in ["out.npz", "out.zip"]:
            with self.subTest(out=out):
                proc = self.run_faulty("write", out, after=3)
                self.check_failed(proc, "", "No space left on device", status=507)

    @unittest.expectedFailure
    def test_write_enospc_in_the_middle_of_an_h5ad(self):
        # Known bug, not fixed: the error is reported (507, cause from the
        # file driver) and the temp file removed, but libhdf5 1.10 keeps the
        # file whose H5Fclose failed to flush and crashes on it in H5close()
        # at exit (SIGSEGV in H5F__close_cb). The daemon would crash at
        # shutdown the same way. This test passes once that is handled.
        proc = self.run_faulty("write", "out.h5ad", after=3)
        self.check_failed(proc, "HDF5 failed", "No space left on device", status=507)

    def test_without_a_fault_the_same_export_works(self):
        # The shim itself changes nothing when the path does not match.
        for out in OUTS:
            with self.subTest(out=out):
                proc = self.run_faulty("fsync", out)
                env_ok = self.run_cli(["export", os.path.join(self.dir, "request.json"),
                                       "-o", os.path.join(self.dir, out)])
                self.assertEqual(env_ok.returncode, 0, env_ok.stderr)
                self.assertTrue(os.path.exists(os.path.join(self.dir, out)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
