"""`anndata-exportd healthcheck`, the command Docker's HEALTHCHECK runs (the
runtime image has no curl): 0 while the daemon answers /healthz with 200,
1 when it answers anything else or nothing."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402


def healthcheck(*args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ANNDATA_EXPORTD_")}
    e.update(env or {})
    return subprocess.run([dh.require_bin(), "healthcheck"] + list(args), env=e,
                          capture_output=True, text=True, timeout=timeout)


class Healthcheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="adx-deploy-hc-")
        self.daemon = dh.Daemon(self.tmp).start()

    def tearDown(self):
        self.daemon.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_healthy_then_gone(self):
        p = self.daemon.port
        r = healthcheck("--url", "http://127.0.0.1:%d/healthz" % p)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("200", r.stdout)
        # The container form: no arguments, the address from the image's
        # ANNDATA_EXPORTD_LISTEN (a wildcard bind, probed via loopback).
        r = healthcheck(env={"ANNDATA_EXPORTD_LISTEN": "0.0.0.0:%d" % p})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = healthcheck("--url", "http://localhost:%d/readyz" % p, "--timeout", "3")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Answered, but not 200.
        r = healthcheck("--url", "http://127.0.0.1:%d/no-such-route" % p)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("404", r.stderr)

        self.assertEqual(self.daemon.terminate(), 0, self.daemon.logs())
        r = healthcheck("--url", "http://127.0.0.1:%d/healthz" % p, "--timeout", "2")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("unhealthy", r.stderr)

    def test_usage(self):
        r = healthcheck("--url", "https://127.0.0.1/healthz")
        self.assertEqual(r.returncode, 2)
        r = healthcheck("--timeout")
        self.assertEqual(r.returncode, 2)
        r = healthcheck("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--timeout", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
