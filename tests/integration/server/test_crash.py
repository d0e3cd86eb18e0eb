"""Crash and signal fault injection (issue 12, item 8).

1. kill -9 at random moments during 100 queued async exports (h5ad gzip,
   h5ad uncompressed, npz), restarting on the same spool each time: every
   accepted job (every 202) still exists and ends succeeded, or failed with
   the "interrupted N times by crashes" error (README "Durability and
   signals"); every succeeded result matches its sha256 and reads back with
   anndata / numpy; no temp file is left after a final graceful stop.
2. SIGTERM while 3 clients stall mid-upload: the daemon exits 0 within
   shutdown_grace plus a few seconds and leaves no partial upload.

The RNG seed is printed; set ADX_CRASH_SEED to replay a run.
"""
import hashlib
import io
import os
import random
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvharness import Daemon  # noqa: E402

N_JOBS = 100
N_KILLS = 3
VARIANTS = [("h5ad", "gzip"), ("h5ad", "none"), ("npz", None)]


def make_x(i):
    # small, distinct per job, exactly representable in float64
    return [[float((i * 31 + r * 7 + c) % 97) + 0.5 * (c % 2) for c in range(8)]
            for r in range(20)]


def make_request(i):
    fmt, comp = VARIANTS[i % len(VARIANTS)]
    body = {"adata": {"X": make_x(i),
                      "obs": {"index": ["c%d" % r for r in range(20)]}},
            "format": fmt}
    if comp is not None:
        body["compression"] = comp
    return body


class Crash(unittest.TestCase):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.d = None

    def tearDown(self):
        if self.d:
            self.d.stop()
            failed = any(t is self for t, _ in
                         self._outcome.result.errors + self._outcome.result.failures)
            if failed:
                sys.stderr.write(self.d.logs()[-6000:])
        self.tmpd.cleanup()

    def _wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                st, _, _ = self.d.request("GET", "/readyz", timeout=2)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.fail("daemon not ready within %ds:\n%s" % (timeout, self.d.logs()[-3000:]))

    def _kill_and_restart(self):
        self.d.signal(signal.SIGKILL)
        self.assertEqual(self.d.wait_exit(10), -signal.SIGKILL)
        self.d.start(timeout=20)
        self._wait_ready()

    def test_kill_9_at_random_moments_during_100_jobs(self):
        import anndata
        import numpy as np

        seed = int(os.environ.get("ADX_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
        print("test_crash: seed %d (ADX_CRASH_SEED=%d replays it)" % (seed, seed), flush=True)
        rng = random.Random(seed)
        # kill after these POSTs (sorted, distinct), each after a random delay
        kill_after = sorted(rng.sample(range(5, N_JOBS), N_KILLS))
        delays = [rng.uniform(0.0, 0.4) for _ in range(N_KILLS)]
        print("test_crash: kills after POST #%s, delays %s" %
              (kill_after, ["%.3f" % x for x in delays]), flush=True)

        self.d = Daemon(self.tmp, {"workers": "1", "queue_max": "256",
                                   "shutdown_grace": "10"}).start()
        self._wait_ready()
        spool = self.d.spool
        accepted = {}  # id -> index of the request
        kills = 0
        t0 = time.time()
        for i in range(N_JOBS):
            st, _, j = self.d.json("POST", "/v1/exports", make_request(i), timeout=30)
            self.assertEqual(st, 202, (i, j))
            accepted[j["id"]] = i
            if kills < N_KILLS and i == kill_after[kills]:
                time.sleep(delays[kills])
                _, _, m = self.d.json("GET", "/v1/exports?limit=1000", timeout=10)
                running = [x["id"] for x in m["items"] if x["state"] == "running"]
                print("test_crash: SIGKILL #%d after POST #%d at %.2fs, running: %s" %
                      (kills + 1, i, time.time() - t0, running), flush=True)
                self._kill_and_restart()
                kills += 1
        self.assertEqual(kills, N_KILLS)

        # every accepted job exists and reaches a terminal state (bounded)
        deadline = time.time() + 60
        while True:
            st, _, lst = self.d.json("GET", "/v1/exports?limit=1000", timeout=10)
            self.assertEqual(st, 200)
            states = {x["id"]: x["state"] for x in lst["items"]}
            missing = sorted(set(accepted) - set(states))
            self.assertEqual(missing, [], "accepted jobs lost after kill -9")
            pending = [k for k in accepted
                       if states[k] not in ("succeeded", "failed", "canceled", "expired")]
            if not pending:
                break
            if time.time() > deadline:
                self.fail("jobs not finished within 60 s: %s" %
                          {k: states[k] for k in pending[:10]})
            time.sleep(0.2)

        succeeded = failed_by_crash = 0
        for jid, i in sorted(accepted.items(), key=lambda kv: kv[1]):
            st, _, j = self.d.json("GET", "/v1/exports/" + jid, timeout=10)
            self.assertEqual(st, 200, jid)
            if j["state"] == "failed":
                # allowed by design only for a job running at each of the kills
                self.assertIn("interrupted", str(j.get("error")), (i, j))
                self.assertIn("crash", str(j.get("error")), (i, j))
                failed_by_crash += 1
                continue
            self.assertEqual(j["state"], "succeeded", (i, j))
            succeeded += 1
            st, h, data = self.d.request("GET", "/v1/exports/%s/file" % jid, timeout=30)
            self.assertEqual(st, 200, (i, jid))
            self.assertEqual(hashlib.sha256(data).hexdigest(), j["sha256"], (i, jid))
            fmt, _ = VARIANTS[i % len(VARIANTS)]
            want = np.array(make_x(i))
            if fmt == "h5ad":
                p = os.path.join(self.tmp, "r%d.h5ad" % i)
                with open(p, "wb") as f:
                    f.write(data)
                a = anndata.read_h5ad(p)
                x = a.X.toarray() if hasattr(a.X, "toarray") else np.asarray(a.X)
                np.testing.assert_array_equal(x, want, err_msg="job %d %s" % (i, jid))
                self.assertEqual(list(a.obs_names), ["c%d" % r for r in range(20)])
                os.unlink(p)
            else:
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    np.testing.assert_array_equal(z["X"], want, err_msg="job %d %s" % (i, jid))
        print("test_crash: %d accepted, %d succeeded, %d failed after 3 interruptions, "
              "%.1fs" % (len(accepted), succeeded, failed_by_crash, time.time() - t0),
              flush=True)
        self.assertEqual(succeeded + failed_by_crash, len(accepted))
        # with 3 kills, at most one job can have been running at all of them
        self.assertLessEqual(failed_by_crash, 1)

        # after a graceful stop nothing is left in tmp/ nor half-written in jobs/
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(os.listdir(os.path.join(spool, "tmp")), [])
        for jid in accepted:
            names = os.listdir(os.path.join(spool, "jobs", jid))
            stray = [n for n in names if n.startswith(".")]
            self.assertEqual(stray, [], jid)

    def test_sigterm_with_stalled_uploads(self):
        grace = 2
        self.d = Daemon(self.tmp, {"workers": "1", "shutdown_grace": str(grace)}).start()
        self._wait_ready()
        socks = []
        try:
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
                s.sendall(b"POST /v1/exports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: 50000000\r\n\r\n{\"adata\": {\"X\": [[1")
                socks.append(s)
            time.sleep(0.5)  # let the daemon start the three uploads
            tmpdir = os.path.join(self.d.spool, "tmp")
            print("test_crash: spool tmp/ before SIGTERM: %s" % sorted(os.listdir(tmpdir)),
                  flush=True)
            t = time.time()
            self.d.signal(signal.SIGTERM)
            try:
                rc = self.d.wait_exit(grace + 5)
            except Exception:
                self.fail("daemon still running %ds after SIGTERM with stalled uploads" %
                          (grace + 5))
            took = time.time() - t
            print("test_crash: exit %d %.2fs after SIGTERM (grace %ds)" % (rc, took, grace),
                  flush=True)
            self.assertEqual(rc, 0)
            self.assertLess(took, grace + 5)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(os.listdir(tmpdir) if os.path.isdir(tmpdir) else [], [])
        jobs = os.path.join(self.d.spool, "jobs")
        self.assertEqual(os.listdir(jobs) if os.path.isdir(jobs) else [], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
