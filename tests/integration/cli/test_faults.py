"""Faults the file system does not produce on demand, injected with the
LD_PRELOAD shim of tests/fault: an fsync that fails with EIO and writes that
fail with ENOSPC, on the output directory only. Every format must fail with
a clear error and a non-zero exit, and leave neither the target nor a temp
file behind."""

import base64
import json
import os
import random
import struct
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



def random_array(rows, cols, seed):
    """float64 noise that compression cannot shrink much, as base64."""
    r = random.Random(seed)
    raw = struct.pack("<%dd" % (rows * cols), *(r.random() for _ in range(rows * cols)))
    return {"encoding-type": "array", "dtype": "float64", "shape": [rows, cols],
            "base64": base64.b64encode(raw).decode()}


# The h5ad writer's file driver keeps a new file in memory up to 1 MiB and
# writes it at close in one piece (src/h5w/vfd.c); a fault lands inside an
# h5ad only when the file is larger: these make 1.3 to 1.6 MB files.
MID = {"adata": {"X": random_array(400, 400, 2),
                 "obs": {"index": ["c%d" % i for i in range(400)]}},
       "compression": None}

OUTS = ["out.h5ad", "out.npz", "out.zip"]
FORMATS = {"out.h5ad": "h5ad", "out.npz": "npz", "out.zip": "csv"}


class Faults(CliCase):
    def setUp(self):
        super().setUp()
        if not SHIM or not os.path.exists(SHIM):
            self.fail("ADX_FAULT_SHIM is not set to the built shim")
        self.out = os.path.join(self.dir, "out")
        os.mkdir(self.out)

    def run_faulty(self, fault, out, after=0, req=None):
        req = dict(req or REQ, format=FORMATS[out])
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

    def test_write_enospc_in_the_middle_of_an_h5ad(self):
        # libhdf5 1.10 crashes (in H5close at exit) after an H5Fclose whose
        # flush failed; the writer's file driver keeps write errors from
        # libhdf5 and reports them itself, so this fails cleanly.
        proc = self.run_faulty("write", "out.h5ad", after=3, req=MID)
        self.check_failed(proc, "cannot write the h5ad file", "No space left on device",
                          status=507)

    def test_write_enospc_at_every_write_of_an_h5ad(self):
        # The disk fills at each write in turn (the first MiB the driver
        # held in memory, then chunks, the metadata H5Fclose flushes, the
        # final truncate): every run is a 507 with nothing left behind,
        # never a crash, until a run has fewer writes than the fault's
        # position and succeeds.
        big = {"adata": {
            "X": {"encoding-type": "array", "dtype": "float64", "shape": [300, 40],
                  "data": [[float(i * j % 7) for j in range(40)] for i in range(300)]},
            "obs": {"index": ["c%d" % i for i in range(300)],
                    "columns": {"label": ["k%d" % (i % 5) for i in range(300)],
                                "n": list(range(300))}},
            "obsm": {"r": random_array(300, 600, 1)},
            "uns": {"t": {"encoding-type": "dataframe",
                          "columns": {"s": ["row %d" % i for i in range(3000)]}}}},
            "format": "h5ad", "compression": "gzip"}
        outcomes = []
        for after in range(0, 400):
            with self.subTest(after=after):
                proc = self.run_faulty("write", "out.h5ad", after=after, req=big)
                if proc.returncode == 0:
                    outcomes.append("ok")
                    break
                outcomes.append(proc.returncode)
                self.check_failed(proc, "cannot write the h5ad file", "No space left on device",
                                  status=507)
        self.assertEqual(outcomes[-1], "ok", "no run got through: %s" % outcomes)
        self.assertGreater(len(outcomes), 5)  # the fault did land inside the file
        out = os.path.join(self.out, "out.h5ad")
        subprocess.run(["/usr/bin/python3", "-c", "import anndata,sys; "
                        "a = anndata.read_h5ad(sys.argv[1]); assert a.shape == (300, 40)", out],
                       check=True)
        os.unlink(out)

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
