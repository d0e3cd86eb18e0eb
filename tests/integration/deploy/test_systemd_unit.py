"""systemd/anndata-exportd.service: `systemd-analyze verify` finds nothing to
say about it, `systemd-analyze security` rates it well, the install steps of
README.md run into a temporary root (systemctl --root enable), and the
installed unit's own ExecStart, started the way systemd would (NOTIFY_SOCKET,
STATE_DIRECTORY), becomes ready, reloads on ExecReload's SIGHUP and stops
cleanly on KillSignal within TimeoutStopSec."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402

UNIT = os.path.join(dh.SRC, "systemd", "anndata-exportd.service")
DOC = os.path.join(dh.SRC, "README.md")
# server.c: FORCED_EXIT_MS, how long after the grace the daemon exits anyway.
FORCED_EXIT_S = 10


def parse_unit(path):
    """{section: {key: [values]}}; continuation lines joined."""
    out, sec, pending = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("["):
                sec = s.strip("[]")
                out.setdefault(sec, {})
                continue
            k, v = s.split("=", 1)
            out[sec].setdefault(k.strip(), []).append(v.strip())
    return out


def one(unit, sec, key):
    vals = unit[sec].get(key)
    if not vals or len(vals) != 1:
        raise AssertionError("[%s] %s: expected exactly one value, got %r" % (sec, key, vals))
    return vals[0]


def default_shutdown_grace():
    with open(os.path.join(dh.SRC, "config", "anndata-exportd.conf")) as f:
        m = re.search(r"(?m)^#\s*shutdown_grace\s*=\s*(\d+)\s*$", f.read())
    if not m:
        raise AssertionError("config/anndata-exportd.conf no longer documents shutdown_grace")
    return int(m.group(1))


def doc_install_steps():
    """The shell lines of the systemd install block of README.md."""
    with open(DOC) as f:
        text = f.read()
    m = re.search(r"(?ms)^### systemd\n(.*?)(?=^##|\Z)", text)
    if not m:
        raise AssertionError("README.md has no '### systemd' section")
    steps = []
    for line in m.group(1).splitlines():
        s = line.strip()
        if s.startswith("sudo install ") or re.match(r"sudo systemctl (daemon-reload|enable)",
                                                     s):
            steps.append(shlex.split(s)[1:])
        elif steps and s.startswith("sudo "):
            break
    return steps


class SystemdUnit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.analyze = dh.require_tool("systemd-analyze")
        cls.systemctl = dh.require_tool("systemctl")
        cls.unit = parse_unit(UNIT)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="adx-deploy-systemd-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def unit_copy(self, exec_bin):
        """The unit with ExecStart's binary replaced: verify checks that the
        program exists, and /usr/local/bin is not where the test binary is."""
        with open(UNIT) as f:
            text = f.read()
        text, n = re.subn(r"(?m)^ExecStart=/usr/local/bin/anndata-exportd ",
                          "ExecStart=%s " % exec_bin, text)
        self.assertEqual(n, 1, "ExecStart must run /usr/local/bin/anndata-exportd")
        d = os.path.join(self.tmp, "units")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "anndata-exportd.service")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_directives(self):
        u = self.unit
        s = "Service"
        self.assertEqual(one(u, s, "Type"), "notify")
        self.assertEqual(one(u, s, "NotifyAccess"), "main")
        self.assertEqual(one(u, s, "ExecStart"),
                         "/usr/local/bin/anndata-exportd serve "
                         "--config /etc/anndata-exportd/anndata-exportd.conf")
        self.assertEqual(one(u, s, "ExecReload"), "/bin/kill -HUP $MAINPID")
        for key, val in [("DynamicUser", "yes"), ("StateDirectory", "anndata-exportd"),
                         ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                         ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                         ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                         ("SystemCallArchitectures", "native")]:
            self.assertEqual(one(u, s, key), val, key)
        self.assertIn("@system-service", u[s]["SystemCallFilter"])
        # systemd must outwait the daemon's own drain, or it kills exports
        # the daemon was about to finish.
        stop = int(one(u, s, "TimeoutStopSec"))
        self.assertGreater(stop, default_shutdown_grace() + FORCED_EXIT_S)
        self.assertEqual(one(u, "Install", "WantedBy"), "multi-user.target")

    def test_verify_is_silent(self):
        path = self.unit_copy(dh.require_bin())
        r = subprocess.run([self.analyze, "verify", path], capture_output=True, text=True)
        out = r.stdout + r.stderr
        about_unit = [line for line in out.splitlines() if "anndata-exportd" in line]
        self.assertEqual(about_unit, [], out)
        self.assertEqual(r.returncode, 0, out)

    def test_security_exposure(self):
        path = self.unit_copy(dh.require_bin())
        r = subprocess.run([self.analyze, "security", "--offline=yes", "--no-pager", path],
                           capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
        self.assertEqual(m.group(2), "OK")

    def test_doc_install_steps_and_start(self):
        """README.md's lines, with / moved to a temp root; then what
        `enable --now` and `reload`/`stop` make systemd do."""
        root = os.path.join(self.tmp, "root")
        os.makedirs(root)
        steps = doc_install_steps()
        kinds = [s[0] + " " + (s[1] if s[0] == "systemctl" else "") for s in steps]
        self.assertEqual(kinds, ["install ", "install ", "install ", "install ",
                                 "systemctl daemon-reload",
                                 "systemctl enable"], steps)
        for argv in steps:
            if argv[0] == "install":
                # Sources are repo paths (build/ is where the README builds).
                *opts, src, dst = argv[1:]
                self.assertTrue(dst.startswith("/"), argv)
                built = os.path.dirname(dh.require_bin())
                src = os.path.join(built, src[len("build/"):]) if src.startswith("build/") \
                    else os.path.join(dh.SRC, src)
                target = root + dst
                if not os.path.basename(dst) or "-D" not in opts:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                r = subprocess.run(["install"] + opts + [src, target], capture_output=True,
                                   text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
            elif argv[1] == "daemon-reload":
                continue  # needs a running manager; verify stands in for its parsing
            else:
                self.assertEqual(argv[1:], ["enable", "--now", "anndata-exportd"])
                r = subprocess.run([self.systemctl, "--root=" + root, "enable",
                                    "anndata-exportd"], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants/"
                                   "anndata-exportd.service")
        self.assertTrue(os.path.islink(wants))
        self.assertEqual(os.readlink(wants), "/etc/systemd/system/anndata-exportd.service")
        installed = parse_unit(os.path.join(root, "etc/systemd/system/anndata-exportd.service"))
        self.assertEqual(installed, self.unit)
        binary = os.path.join(root, "usr/local/bin/anndata-exportd")
        self.assertTrue(os.access(binary, os.X_OK))
        self.assertEqual(os.stat(binary).st_mode & 0o777, 0o755)

        # --now: start ExecStart as systemd would, paths inside the root.
        argv = [root + a if a.startswith("/usr/") or a.startswith("/etc/") else a
                for a in shlex.split(one(installed, "Service", "ExecStart"))]
        state = os.path.join(root, "var/lib", one(installed, "Service", "StateDirectory"))
        os.makedirs(state, mode=0o750)
        sock = dh.NotifySocket(self.tmp)
        port = dh.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANNDATA_EXPORTD_")}
        # The unit's config keeps the default 127.0.0.1:8080; a drop-in's
        # Environment= is how an admin moves it, and how the test does.
        watchdog_s = int(one(installed, "Service", "WatchdogSec"))
        env.update({"NOTIFY_SOCKET": sock.path, "STATE_DIRECTORY": state,
                    "WATCHDOG_USEC": str(watchdog_s * 1000000),
                    "ANNDATA_EXPORTD_LISTEN": "127.0.0.1:%d" % port})
        log = open(os.path.join(self.tmp, "unit.log"), "wb")
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

        def logs():
            with open(os.path.join(self.tmp, "unit.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-5000:]
        try:
            start_timeout = int(one(installed, "Service", "TimeoutStartSec"))
            m, _ = sock.wait_for("READY", "1", start_timeout)
            self.assertIsNotNone(m, "no READY=1 within TimeoutStartSec (Type=notify would "
                                    "fail the start); log:\n" + logs())
            st, _, _ = dh.http_request(port, "GET", "/healthz", timeout=5)
            self.assertEqual(st, 200)
            # Keep-alives well within WatchdogSec, or systemd restarts it.
            m, _ = sock.wait_for("WATCHDOG", "1", watchdog_s / 2)
            self.assertIsNotNone(m, "no WATCHDOG=1 within WatchdogSec/2")
            # The spool is the StateDirectory: an accepted job lands there.
            st, _, body = dh.http_request(port, "POST", "/v1/exports",
                                          b'{"adata": {"X": [[1, 2]]}}',
                                          {"Content-Type": "application/json"})
            self.assertEqual(st, 202, body)
            self.assertTrue(os.listdir(os.path.join(state, "jobs")))

            reload_cmd = one(installed, "Service", "ExecReload")
            r = subprocess.run(shlex.split(reload_cmd.replace("$MAINPID", str(proc.pid))))
            self.assertEqual(r.returncode, 0)
            m, _ = sock.wait_for("READY", "1", 15)
            self.assertIsNotNone(m, "no READY=1 after ExecReload")
            self.assertIsNone(proc.poll())

            sig = getattr(signal, one(installed, "Service", "KillSignal"))
            t0 = time.time()
            proc.send_signal(sig)
            m, _ = sock.wait_for("STOPPING", "1", 15)
            self.assertIsNotNone(m, "no STOPPING=1")
            rc = proc.wait(timeout=int(one(installed, "Service", "TimeoutStopSec")))
            self.assertEqual(rc, 0, logs())
            self.assertLess(time.time() - t0, int(one(installed, "Service", "TimeoutStopSec")))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
