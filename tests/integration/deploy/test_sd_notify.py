"""The sd_notify handshake of a Type=notify service, with the test as the
service manager: NOTIFY_SOCKET names a datagram socket the test owns.
READY=1 must arrive only once the daemon answers HTTP, RELOADING=1 and
READY=1 around a SIGHUP (ExecReload), WATCHDOG=1 while WATCHDOG_USEC is
set, and STOPPING=1 on SIGTERM before a clean exit 0."""
import os
import shutil
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402


class SdNotify(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="adx-deploy-notify-")
        self.sock = dh.NotifySocket(self.tmp)
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.stop()
        self.sock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, env=None):
        e = {"NOTIFY_SOCKET": self.sock.path}
        e.update(env or {})
        self.daemon = dh.Daemon(self.tmp, env=e).start(wait=False)
        return self.daemon

    def test_ready_reload_stopping(self):
        d = self.start()
        m, before = self.sock.wait_for("READY", "1", 30)
        self.assertIsNotNone(m, "no READY=1 within 30 s (is ntf_ready() wired into "
                                "srv_main?); daemon log:\n" + d.logs())
        self.assertEqual([x for x in before if "STOPPING" in x], [])
        self.assertIsNone(d.proc.poll())
        # READY means listening: the very next request is answered.
        st, _, _ = d.request("GET", "/healthz", timeout=5)
        self.assertEqual(st, 200)

        # ExecReload=/bin/kill -HUP $MAINPID
        d.proc.send_signal(signal.SIGHUP)
        m, _ = self.sock.wait_for("RELOADING", "1", 15)
        self.assertIsNotNone(m, "no RELOADING=1 after SIGHUP")
        self.assertTrue(m.get("MONOTONIC_USEC", "").isdigit(), m)
        m, _ = self.sock.wait_for("READY", "1", 15)
        self.assertIsNotNone(m, "no READY=1 after the reload")
        st, _, _ = d.request("GET", "/healthz", timeout=5)
        self.assertEqual(st, 200)

        d.proc.send_signal(signal.SIGTERM)
        m, _ = self.sock.wait_for("STOPPING", "1", 15)
        self.assertIsNotNone(m, "no STOPPING=1 after SIGTERM; log:\n" + d.logs())
        self.assertEqual(d.proc.wait(timeout=60), 0, d.logs())

    def test_watchdog_pings(self):
        # systemd sets both; WATCHDOG_PID is set once the pid is known, so a
        # wrapper script would exec; here the daemon is the direct child and
        # the variable is left out, which means "this process".
        d = self.start({"WATCHDOG_USEC": "2000000"})
        m, _ = self.sock.wait_for("READY", "1", 30)
        self.assertIsNotNone(m, "no READY=1; log:\n" + d.logs())
        pings = 0
        for _ in range(3):
            m, _ = self.sock.wait_for("WATCHDOG", "1", 5)
            self.assertIsNotNone(m, "no WATCHDOG=1 within 5 s with WatchdogSec=2")
            pings += 1
        self.assertEqual(pings, 3)
        self.assertEqual(d.terminate(), 0, d.logs())

    def test_no_watchdog_no_pings(self):
        d = self.start()
        m, _ = self.sock.wait_for("READY", "1", 30)
        self.assertIsNotNone(m, "no READY=1; log:\n" + d.logs())
        d.proc.send_signal(signal.SIGTERM)
        m, before = self.sock.wait_for("STOPPING", "1", 15)
        self.assertIsNotNone(m)
        self.assertEqual([x for x in before if "WATCHDOG" in x], [])
        self.assertEqual(d.proc.wait(timeout=60), 0, d.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
