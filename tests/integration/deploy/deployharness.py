"""The pieces of a deployment, started for real on 127.0.0.1: the daemon
(`ADX_BIN serve`), nginx with a config derived from
config/nginx-anndata-exportd.conf, headless chromium, and a unix datagram
socket standing in for systemd's NOTIFY_SOCKET.

Standard library only. A missing external tool (nginx, chromium,
systemd-analyze) raises: scripts/setup.sh installs them, and a deployment
test that cannot run must fail rather than pass by skipping.
"""
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

BIN = os.environ.get("ADX_BIN")
SRC = os.environ.get("ADX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SHARED = os.environ.get("ADX_SHARED") or os.path.join(SRC, "..", "shared")
HERE = os.path.dirname(os.path.abspath(__file__))


def require_tool(name, extra_dirs=("/usr/sbin", "/sbin")):
    path = shutil.which(name, path=os.pathsep.join(
        [os.environ.get("PATH", "")] + list(extra_dirs)))
    if not path:
        raise RuntimeError("%s is not installed; scripts/setup.sh installs it" % name)
    return path


def require_bin():
    if not BIN or not os.access(BIN, os.X_OK):
        raise RuntimeError("ADX_BIN must name the built anndata-exportd binary")
    return BIN


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_request(port, method, path, body=None, headers=None, timeout=120):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=dict(headers or {}))
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def wait_http(port, path, timeout=20, proc=None, what="server", log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %d\n%s" % (what, proc.returncode,
                                                        log() if log else ""))
        try:
            st, _, _ = http_request(port, "GET", path, timeout=2)
            if st == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s did not answer %s on port %d\n%s" % (
        what, path, port, log() if log else ""))


class Daemon:
    """`anndata-exportd serve` on a free port with its own spool and config."""

    def __init__(self, tmp, config=None, env=None):
        self.tmp = tmp
        self.spool = os.path.join(tmp, "spool")
        self.config = dict(config or {})
        self.env = dict(env or {})
        self.proc = None
        self.port = None
        self.log_path = os.path.join(tmp, "daemon.log")

    def start(self, wait=True):
        require_bin()
        self.port = free_port()
        self.conf_path = os.path.join(self.tmp, "anndata-exportd.conf")
        with open(self.conf_path, "w") as f:
            f.write("# written by tests/integration/deploy\n")
            for k, v in self.config.items():
                f.write("%s = %s\n" % (k, v))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ANNDATA_EXPORTD_") and k != "NOTIFY_SOCKET"}
        env.update(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:%d" % self.port, "--spool-dir", self.spool,
             "--config", self.conf_path],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_http(self.port, "/healthz", proc=self.proc, what="anndata-exportd",
                      log=self.logs)
        return self

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-20000:]
        except OSError:
            return ""

    def terminate(self, timeout=60):
        """SIGTERM, as systemd and docker stop do; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def request(self, method, path, body=None, headers=None, timeout=120):
        return http_request(self.port, method, path, body, headers, timeout)


def nginx_site(daemon_port, listen_port, example=None):
    """The example site file with its two deployment-specific values (the
    upstream address and the listen port) replaced; everything else is
    exactly what the docs ship."""
    example = example or os.path.join(SRC, "config", "nginx-anndata-exportd.conf")
    with open(example) as f:
        text = f.read()
    text, n_up = re.subn(r"(?m)^(\s*server\s+)127\.0\.0\.1:8080(\s*;)",
                         r"\g<1>127.0.0.1:%d\g<2>" % daemon_port, text)
    text, n_listen = re.subn(r"(?m)^(\s*listen\s+)80(\s*;)",
                             r"\g<1>127.0.0.1:%d\g<2>" % listen_port, text)
    if n_up != 1 or n_listen != 1:
        raise RuntimeError("config/nginx-anndata-exportd.conf changed shape: expected one "
                           "'server 127.0.0.1:8080;' and one 'listen 80;' (got %d, %d)"
                           % (n_up, n_listen))
    return text


class Nginx:
    """nginx in the foreground with every path in a temp dir. `extra` is more
    http-level config (e.g. the page server blocks)."""

    def __init__(self, tmp, site, extra=""):
        self.tmp = tmp
        self.site = site
        self.extra = extra
        self.proc = None

    def start(self, ports_to_wait=()):
        nginx = require_tool("nginx")
        d = os.path.join(self.tmp, "nginx")
        for sub in ("", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        user = ""
        if os.geteuid() == 0:
            # Workers would switch to "nobody" and could not read the temp
            # dir; as root, keep them as the current user.
            pw = pwd.getpwuid(os.getuid())
            user = "user %s;\n" % pw.pw_name
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(user)
            f.write("worker_processes 1;\n")
            f.write("pid %s/nginx.pid;\n" % d)
            f.write("error_log %s/error.log info;\n" % d)
            f.write("events { worker_connections 256; }\n")
            f.write("http {\n")
            f.write("  access_log %s/access.log;\n" % d)
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
                sub = "body" if kind == "client_body" else kind
                f.write("  %s_temp_path %s/%s;\n" % (kind, d, sub))
            f.write("  types { text/html html; application/javascript js; }\n")
            f.write("  default_type application/octet-stream;\n")
            f.write(self.site)
            f.write(self.extra)
            f.write("}\n")
        self.dir = d
        check = subprocess.run([nginx, "-t", "-p", d, "-c", conf], capture_output=True,
                               text=True)
        if check.returncode != 0:
            raise RuntimeError("nginx -t failed:\n%s\n%s" % (check.stderr, open(conf).read()))
        self.log = open(os.path.join(d, "stderr.log"), "ab")
        self.proc = subprocess.Popen([nginx, "-p", d, "-c", conf, "-g", "daemon off;"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        for port in ports_to_wait:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx exited: %s" % self.error_log())
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise RuntimeError("nginx is not listening on %d" % port)
                    time.sleep(0.05)
        return self

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-5000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


def chromium_dump_dom(url, tmp, budget_ms=120000, timeout=180):
    """Load `url` in headless chromium and return the DOM once the page's
    virtual-time budget is spent (virtual time stands still while requests
    are in flight, so a page that fetches and polls finishes first)."""
    chromium = require_tool("chromium")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
           "--virtual-time-budget=%d" % budget_ms, "--dump-dom", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("chromium failed (%d): %s" % (r.returncode, r.stderr[-3000:]))
    return r.stdout


class NotifySocket:
    """A bound unix datagram socket: what systemd gives a Type=notify
    service as NOTIFY_SOCKET."""

    def __init__(self, tmp):
        # sun_path is ~108 bytes; keep the socket in a short private dir.
        self.dir = tempfile.mkdtemp(prefix="adx-ntf-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def recv(self, timeout):
        """The next message as a dict of its KEY=value lines, or None."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return None
        msg = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                msg[k] = v
        return msg

    def wait_for(self, key, value, timeout):
        """Messages until one sets key=value; returns (that message, those before)."""
        seen = []
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None, seen
            m = self.recv(left)
            if m is None:
                return None, seen
            if m.get(key) == value:
                return m, seen
            seen.append(m)

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def resolve(base, link):
    """A link from the daemon (absolute, or a path) as a full URL."""
    return urllib.parse.urljoin(base, link)


def wait_job(port, path, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, _, body = http_request(port, "GET", path)
        if st != 200:
            raise AssertionError("GET %s -> %d %s" % (path, st, body[:300]))
        j = json.loads(body)
        if j["state"] not in ("queued", "running"):
            return j
        time.sleep(0.05)
    raise AssertionError("job %s did not finish" % path)
