"""Bounded resources and faults of the daemon (issue 12): one instance per
spool, connection limits and deadlines, spool quota and a full disk, job
deadlines and cancel, crash counts, quarantine of unreadable records and
the access log."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvharness import BIN, Daemon, free_port, small_request  # noqa: E402


class Base(unittest.TestCase):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.d = None

    def tearDown(self):
        rc = None
        if self.d:
            rc = self.d.stop()
            failed = any(t is self for t, _ in
                         self._outcome.result.errors + self._outcome.result.failures)
            if failed or rc not in (0, None):
                sys.stderr.write(self.d.logs()[-4000:])
        self.tmpd.cleanup()
        self.assertIn(rc, (0, None))


class OneInstance(Base):
    def _serve(self, spool, port):
        conf = os.path.join(self.tmp, "second.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:%d\nspool_dir = %s\n" % (port, spool))
        return subprocess.run([BIN, "serve", "--config", conf], capture_output=True,
                              timeout=30)

    def test_second_instance_on_the_same_spool_exits_touching_nothing(self):
        self.d = Daemon(self.tmp).start()
        st, _, _ = self.d.request("POST", "/v1/exports?wait=60", small_request(1))
        self.assertEqual(st, 200)
        # an upload in progress of the first instance, and its jobs
        pending = os.path.join(self.d.spool, "tmp", "01ZZZZZZZZZZZZZZZZZZZZZZZZ.upload")
        with open(pending, "wb") as f:
            f.write(b"partial")
        jobs_before = sorted(os.listdir(os.path.join(self.d.spool, "jobs")))
        t0 = time.time()
        r = self._serve(self.d.spool, free_port())
        self.assertLess(time.time() - t0, 10)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertIn("pid %d" % self.d.proc.pid, err)
        self.assertIn("one instance per spool", err)
        self.assertTrue(os.path.exists(pending))
        self.assertEqual(sorted(os.listdir(os.path.join(self.d.spool, "jobs"))), jobs_before)
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)
        # the first one still works, with its files
        st, _, _ = self.d.request("POST", "/v1/exports?wait=60", small_request(2))
        self.assertEqual(st, 200)

    def test_second_instance_on_the_same_port_cannot_listen(self):
        self.d = Daemon(self.tmp).start()
        r = self._serve(os.path.join(self.tmp, "other-spool"), self.d.port)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot listen", r.stderr.decode())
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)

    def test_lock_is_released_on_exit(self):
        self.d = Daemon(self.tmp).start()
        self.assertEqual(self.d.stop(), 0)
        self.d.start()  # same spool: starts again
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
