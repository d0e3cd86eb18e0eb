"""Start and talk to a real `anndata-exportd serve` for the integration tests.

The daemon runs on a free 127.0.0.1 port with its own temp spool and config;
callers must stop() it (the test classes do so in tearDown). Only the
standard library is used: http.client for requests, subprocess for the
daemon, signals for shutdown tests.
"""
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

BIN = os.environ.get("ADX_BIN")
SHARED = os.environ.get("ADX_SHARED")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, tmp, config=None, spool=None, env=None):
        self.tmp = tmp
        self.spool = spool or os.path.join(tmp, "spool")
        self.config = {"result_ttl": "3600", "workers": "2", "log_format": "json",
                       "shutdown_grace": "30", "wait_max": "120"}
        self.config.update(config or {})
        self.env = env or {}
        self.proc = None
        self.log_path = os.path.join(tmp, "daemon.log")

    def start(self, timeout=15):
        self.port = free_port()
        conf = os.path.join(self.tmp, "test.conf")
        with open(conf, "w") as f:
            f.write("# written by the server integration tests\n")
            f.write("listen = 127.0.0.1:%d\n" % self.port)
            f.write("spool_dir = %s\n" % self.spool)
            for k, v in self.config.items():
                f.write("%s = %s\n" % (k, v))
        env = dict(os.environ)
        env.update(self.env)
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--config", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited with %d:\n%s" % (self.proc.returncode,
                                                                    self.logs()))
            try:
                st, _, _ = self.request("GET", "/healthz", timeout=1)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("daemon did not come up:\n" + self.logs())

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=60):
        return self.proc.wait(timeout=timeout)

    def stop(self, graceful=True):
        """SIGTERM (a clean exit also runs the sanitizers' leak check), then
        SIGKILL if it hangs. Returns the exit code of a graceful stop, or
        None when the process was already gone or had to be killed."""
        rc = None
        if self.proc and self.proc.poll() is None:
            if graceful:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return rc

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60):
        c = self.conn(timeout)
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, headers=None, timeout=60):
        st, h, data = self.request(method, path, body, headers, timeout)
        return st, h, (json.loads(data) if data else None)

    def wait_job(self, job_id, states=("succeeded", "failed", "canceled", "expired"),
                 timeout=120, headers=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, _, j = self.json("GET", "/v1/exports/" + job_id, headers=headers)
            if st == 200 and j["state"] in states:
                return j
            time.sleep(0.05)
        raise AssertionError("job %s did not reach %s" % (job_id, states))


def read_record(path):
    """The current record of a job's log (job.json: one JSON object a line,
    appended; the last line that parses wins, as the daemon reads it)."""
    with open(path) as f:
        lines = f.read().split("\n")
    for line in reversed(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            return rec
    raise ValueError("no record in " + path)


def small_request(i=0, fmt="h5ad"):
    return {"adata": {"X": [[i, 1.5], [2, 3]],
                      "obs": {"index": ["a", "b"], "columns": {"k": [i, i + 1]}}},
            "format": fmt}


def large_request(path, rows=4000, cols=2500, seed=1, slow_write=False):
    """A request whose export takes seconds: random float64 (incompressible).
    slow_write: values rounded to 2 decimals, which gzip level 9 compresses
    slowly (about 10 s of CPU for the write alone), for tests that need a job
    still running seconds after its decode, however fast the machine."""
    if os.path.exists(path):
        return path
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.random((rows, cols))
    if slow_write:
        x = np.round(x, 2)
    body = {"adata": {"X": {"encoding-type": "array", "dtype": "float64",
                            "shape": [rows, cols],
                            "base64": base64.b64encode(x.tobytes()).decode()}},
            "compression": "gzip", "compression_opts": 9}
    with open(path, "w") as f:
        json.dump(body, f)
    return path


def post_file(d, path, query="", headers=None, timeout=120):
    with open(path, "rb") as f:
        data = f.read()
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    st, hh, body = d.request("POST", "/v1/exports" + query, data, h, timeout=timeout)
    return st, hh, body


def read_h5ad(data, tmp, name="x.h5ad"):
    import anndata
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(data)
    return anndata.read_h5ad(p)
