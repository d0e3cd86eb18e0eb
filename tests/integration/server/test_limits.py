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
from srvharness import (BIN, Daemon, free_port, large_request, post_file, read_record,  # noqa: E402
                        small_request)


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


def half_open(port, src, n, data=b"GET /v1/exp"):
    """n connections from address `src` that send `data` and stop."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(data)
        except OSError:
            pass  # refused or reset: what a limit may do
        socks.append(s)
    return socks


def closed_by_peer(s, timeout):
    """True once the daemon closed `s` (EOF or reset) within `timeout`."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Connections(Base):
    def test_probes_answer_while_another_address_holds_300_half_open(self):
        self.d = Daemon(self.tmp, {"header_timeout": "30"}).start()
        socks = half_open(self.d.port, "127.0.0.2", 300)
        try:
            time.sleep(0.5)  # let the daemon accept what it will
            for path in ("/healthz", "/readyz", "/healthz", "/readyz"):
                t0 = time.perf_counter()
                st, _, _ = self.d.request("GET", path, timeout=5)
                dt = time.perf_counter() - t0
                self.assertEqual(st, 200, path)
                self.assertLess(dt, 1.0, path)
            # a real request from the other address is not starved either
            st, _, _ = self.d.request("POST", "/v1/exports?wait=30", small_request(3), timeout=10)
            self.assertEqual(st, 200)
        finally:
            for s in socks:
                s.close()
        self.assertIn("libmicrohttpd", self.d.logs())  # the per-address refusals are logged

    def test_header_deadline_closes_a_slow_request_line(self):
        self.d = Daemon(self.tmp, {"header_timeout": "2"}).start()
        s, = half_open(self.d.port, "127.0.0.1", 1, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        self.assertTrue(closed_by_peer(s, 10))
        self.assertLess(time.time() - t0, 5)
        s.close()
        self.assertIn("header_timeout", self.d.logs())
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)

    def test_body_deadline_closes_a_stalled_upload_and_removes_it(self):
        self.d = Daemon(self.tmp, {"body_timeout": "2"}).start()
        head = (b"POST /v1/exports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{\"adata\": ")
        s, = half_open(self.d.port, "127.0.0.1", 1, head)
        time.sleep(0.5)
        self.assertEqual(len(os.listdir(os.path.join(self.d.spool, "tmp"))), 1)
        self.assertTrue(closed_by_peer(s, 10))
        s.close()
        deadline = time.time() + 5
        while os.listdir(os.path.join(self.d.spool, "tmp")) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])
        self.assertIn("body_timeout", self.d.logs())

    def test_max_waiting_is_a_429_naming_it(self):
        self.d = Daemon(self.tmp, {"max_waiting": "1"}).start()
        # a ?wait POST in progress (its body still coming) holds the one slot
        head = (b"POST /v1/exports?wait=30 HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        s, = half_open(self.d.port, "127.0.0.1", 1, head)
        time.sleep(0.3)
        st, h, p = self.d.json("POST", "/v1/exports?wait=5", small_request(1))
        self.assertEqual(st, 429, p)
        self.assertIn("max_waiting", p["detail"])
        self.assertIn("retry-after", h)
        self.assertTrue(p["type"].endswith("/queue-full"))
        # without ?wait it is accepted
        st, _, j = self.d.json("POST", "/v1/exports", small_request(2))
        self.assertEqual(st, 202)
        s.close()
        time.sleep(0.3)
        st, _, _ = self.d.request("POST", "/v1/exports?wait=30", small_request(3))
        self.assertEqual(st, 200)


def padded_request(n_bytes, i=0):
    """A small export request padded with JSON whitespace to n_bytes, so
    that the body is large and the result small."""
    body = json.dumps(small_request(i)).encode()
    return body[:-1] + b" " * (n_bytes - len(body)) + b"}"


def raw_post_headers(port, path, length, chunked=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    h = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
    h += "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: %d\r\n" % length
    s.sendall((h + "\r\n").encode())
    return s


def read_response(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, hdrs, json.loads(rest[:n]) if n else None


def send_chunked(s, data, size=65536):
    """Send a chunked body; the daemon may answer and close before its end
    (then the answer is read all the same)."""
    try:
        for i in range(0, len(data), size):
            c = data[i:i + size]
            s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
        s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass


class SpoolQuota(Base):
    def _ready(self):
        st, _, b = self.d.json("GET", "/readyz")
        return st, b

    def test_quota_counts_uploads_and_answers_507_at_once(self):
        self.d = Daemon(self.tmp, {"max_spool_bytes": "1M"}).start()
        st, _, j = self.d.json("POST", "/v1/exports", padded_request(600 << 10, 1),
                               {"Content-Type": "application/json"})
        self.assertEqual(st, 202, j)
        self.assertEqual(self.d.wait_job(j["id"])["state"], "succeeded")
        # the request body went once the job finished; its bytes came back
        self.assertEqual(sorted(os.listdir(os.path.join(self.d.spool, "jobs", j["id"]))),
                         ["job.json", "result.h5ad"])
        # a Content-Length over the quota: 507 before any byte of the body
        s = raw_post_headers(self.d.port, "/v1/exports", 3 << 20)
        t0 = time.time()
        st, h, p = read_response(s)
        self.assertLess(time.time() - t0, 2)
        s.close()
        self.assertEqual(st, 507, p)
        self.assertIn("retry-after", h)
        self.assertEqual(h["content-type"], "application/problem+json")
        self.assertIn("max_spool_bytes", p["detail"])
        self.assertTrue(p["type"].endswith("/insufficient-storage"))
        # a chunked body that outgrows the quota: 507 at its end, nothing kept
        s = raw_post_headers(self.d.port, "/v1/exports", 0, chunked=True)
        send_chunked(s, padded_request(3 << 20, 2))
        st, h, p = read_response(s)
        s.close()
        self.assertEqual(st, 507, p)
        self.assertIn("max_spool_bytes", p["detail"])
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])
        # an upload in progress holds its bytes: no room while it lasts
        self.assertEqual(self._ready()[0], 200)
        s = raw_post_headers(self.d.port, "/v1/exports", 1000 << 10)
        s.sendall(b"{")
        time.sleep(0.3)
        st, b = self._ready()
        self.assertEqual(st, 503)
        self.assertIn("max_spool_bytes", b["reason"])
        st, h, p = self.d.json("POST", "/v1/exports", small_request(3))
        self.assertEqual(st, 507, p)
        s.close()
        deadline = time.time() + 5
        while self._ready()[0] != 200 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self._ready()[0], 200)
        st, _, j = self.d.json("POST", "/v1/exports", small_request(4))
        self.assertEqual(st, 202, j)

    def test_a_result_over_the_quota_fails_its_job_with_507(self):
        # a 5 KB request whose csv bundle is ~9 MB (an empty sparse matrix
        # written dense): the result counts against max_spool_bytes too
        self.d = Daemon(self.tmp, {"max_spool_bytes": "3M"}).start()
        n = 1500
        req = json.dumps({"adata": {"X": {"encoding-type": "csr_matrix", "shape": [n, n],
                                          "data": [], "indices": [], "indptr": [0] * (n + 1)}},
                          "format": "csv", "compression": None}).encode()
        st, h, b = self.d.request("POST", "/v1/exports?wait=60", req,
                                  {"Content-Type": "application/json"})
        self.assertEqual(st, 507, b[:300])
        p = json.loads(b)
        self.assertIn("max_spool_bytes", p["detail"])
        jid = p["job_id"]
        self.assertEqual(self.d.json("GET", "/v1/exports/" + jid)[2]["state"], "failed")
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs", jid)), ["job.json"])
        self.assertEqual(self._ready()[0], 200)  # its bytes came back
        st, _, data = self.d.request("POST", "/v1/exports?wait=60", small_request(5))
        self.assertEqual(st, 200, data[:300])
        self.assertTrue(data.startswith(b"\x89HDF"))

    def test_a_spool_that_takes_no_files_is_503_not_500(self):
        # jobs/ replaced by a plain file: creating a job directory fails as
        # on a read-only disk; that is /readyz's "spool not writable", no bug
        self.d = Daemon(self.tmp).start()
        jobs = os.path.join(self.d.spool, "jobs")
        os.rename(jobs, jobs + ".away")
        with open(jobs, "w") as f:
            f.write("not a directory")
        try:
            st, h, b = self.d.request("POST", "/v1/exports", small_request(6),
                                      {"Content-Type": "application/json"})
            self.assertEqual(st, 503, b[:300])
            self.assertIn("retry-after", h)
            self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])
        finally:
            os.unlink(jobs)
            os.rename(jobs + ".away", jobs)
        st, _, j = self.d.json("POST", "/v1/exports", small_request(7))
        self.assertEqual(st, 202, j)

    def test_full_disk_is_507_and_the_daemon_stays_responsive(self):
        fs = os.path.join(self.tmp, "fs")
        os.makedirs(fs)
        if os.geteuid() != 0 or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", fs],
                capture_output=True).returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root)")
        try:
            self._full_disk(fs)
        finally:
            if self.d:
                self.d.stop()
                self.d = None
            subprocess.run(["umount", "-l", fs])

    def _full_disk(self, fs):
        self.d = Daemon(self.tmp, {"max_spool_bytes": "1G"}, spool=os.path.join(fs, "spool"))
        self.d.start()
        body = padded_request(9800 << 10, 1)
        st, _, j = self.d.json("POST", "/v1/exports", body, {"Content-Type": "application/json"})
        self.assertEqual(st, 202, j)
        self.assertEqual(self.d.wait_job(j["id"])["state"], "succeeded")
        # fill the disk, leaving ~5 MB
        filler = os.path.join(fs, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (18 << 20))
        t0 = time.time()
        # chunked: the disk fills mid-body; the end is a 507 and no file stays
        s = raw_post_headers(self.d.port, "/v1/exports", 0, chunked=True)
        send_chunked(s, body)
        st, h, p = read_response(s)
        s.close()
        self.assertEqual(st, 507, p)
        self.assertIn("retry-after", h)
        # with a Content-Length: 507 before any byte of the body
        s = raw_post_headers(self.d.port, "/v1/exports", len(body))
        st, h, p = read_response(s)
        s.close()
        self.assertEqual(st, 507, p)
        self.assertIn("retry-after", h)
        self.assertIn("full", p["detail"])
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])
        self.assertEqual(self.d.json("GET", "/readyz")[0], 503)
        self.assertEqual(self.d.request("GET", "/healthz", timeout=2)[0], 200)
        os.unlink(filler)
        time.sleep(5.2)  # the "disk was full" note lasts one Retry-After
        self.assertEqual(self.d.json("GET", "/readyz")[0], 200)
        st, _, j = self.d.json("POST", "/v1/exports", body, {"Content-Type": "application/json"})
        self.assertEqual(st, 202, j)
        self.assertEqual(self.d.wait_job(j["id"])["state"], "succeeded")
        t0 = time.time()
        self.assertEqual(self.d.stop(), 0)
        self.assertLess(time.time() - t0, 5)


def job_record(spool, jid):
    return read_record(os.path.join(spool, "jobs", jid, "job.json"))


def wait_record(spool, jid, key, value, timeout=20):
    """The record as soon as record[key] == value (written by a worker)."""
    deadline = time.time() + timeout
    while True:
        try:
            rec = job_record(spool, jid)
        except (OSError, ValueError):
            rec = {}
        if rec.get(key) == value or time.time() > deadline:
            return rec
        time.sleep(0.02)


def craft_job(spool, jid, **fields):
    """A queued job written into a spool as the daemon would have."""
    d = os.path.join(spool, "jobs", jid)
    os.makedirs(d)
    rec = {"v": 1, "id": jid, "state": "queued", "created_ms": 1764000000000,
           "started_ms": 0, "finished_ms": 0, "format": "h5ad", "filename": jid + ".h5ad"}
    rec.update(fields)
    with open(os.path.join(d, "job.json"), "w") as f:
        json.dump(rec, f)
    with open(os.path.join(d, "request.json"), "w") as f:
        json.dump(small_request(7), f)
    return d


class Faults(Base):
    def test_unreadable_record_is_quarantined_not_deleted(self):
        spool = os.path.join(self.tmp, "spool")
        bad = "01M8AAAAAAAAAAAAAAAAAAAAAA"
        d = craft_job(spool, bad)
        with open(os.path.join(d, "job.json"), "w") as f:
            f.write('{"v": 1, "id": "01M8AAAA')  # torn
        odd = "01M8BBBBBBBBBBBBBBBBBBBBBB"
        craft_job(spool, odd, format="xlsx")
        self.d = Daemon(self.tmp, spool=spool).start()
        for jid in (bad, odd):
            q = os.path.join(spool, "quarantine", jid)
            self.assertTrue(os.path.isfile(os.path.join(q, "job.json")), jid)
            self.assertTrue(os.path.isfile(os.path.join(q, "request.json")), jid)
            self.assertFalse(os.path.exists(os.path.join(spool, "jobs", jid)))
            self.assertEqual(self.d.json("GET", "/v1/exports/" + jid)[0], 404)
        self.assertEqual(self.d.logs().count("moved to quarantine"), 2)

    def test_the_record_log_keeps_its_last_whole_line(self):
        # job.json is appended to, a record a line: a crash during an
        # append leaves a torn tail, which the start cuts off, and the job
        # is in the state of the last whole record.
        spool = os.path.join(self.tmp, "spool")
        torn, whole = "01M8EEEEEEEEEEEEEEEEEEEEEE", "01M8FFFFFFFFFFFFFFFFFFFFFF"
        now = int(time.time() * 1000)  # older than result_ttl would expire at start
        canceled = {"v": 1, "state": "canceled", "created_ms": now - 500, "started_ms": 0,
                    "finished_ms": now, "format": "h5ad", "filename": "x.h5ad"}
        for jid, tail in ((torn, '{"v":1,"id":"%s","state":"succ' % torn), (whole, "")):
            d = craft_job(spool, jid)
            with open(os.path.join(d, "job.json"), "a") as f:
                f.write("\n" + json.dumps(dict(canceled, id=jid), separators=(",", ":")) + "\n" + tail)
        with open(os.path.join(spool, "jobs", whole, "job.json")) as f:
            whole_text = f.read()
        self.d = Daemon(self.tmp, spool=spool).start()
        for jid in (torn, whole):
            st, _, j = self.d.json("GET", "/v1/exports/" + jid)
            self.assertEqual((st, j.get("state")), (200, "canceled"), (jid, j))
        with open(os.path.join(spool, "jobs", torn, "job.json")) as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[1:], [""])  # one whole line left
        self.assertEqual(json.loads(lines[0])["state"], "canceled")
        with open(os.path.join(spool, "jobs", whole, "job.json")) as f:
            self.assertEqual(f.read(), whole_text)  # nothing to cut: untouched
        # a new job's log grows by appends: queued at the 202, the run
        # counted, succeeded
        st, h, b = self.d.request("POST", "/v1/exports?wait=60", small_request(3))
        self.assertEqual(st, 200, b)
        jid = h["content-location"].rsplit("/", 1)[1]
        with open(os.path.join(spool, "jobs", jid, "job.json")) as f:
            recs = [json.loads(x) for x in f.read().split("\n") if x]
        self.assertEqual([r["state"] for r in recs], ["queued", "queued", "succeeded"])
        self.assertEqual(recs[1]["attempts"], 1)

    def test_a_job_interrupted_three_times_by_crashes_fails(self):
        spool = os.path.join(self.tmp, "spool")
        three, two = "01M8CCCCCCCCCCCCCCCCCCCCCC", "01M8DDDDDDDDDDDDDDDDDDDDDD"
        craft_job(spool, three, attempts=3)
        craft_job(spool, two, attempts=2)
        self.d = Daemon(self.tmp, spool=spool).start()
        j = self.d.wait_job(three)
        self.assertEqual(j["state"], "failed")
        self.assertIn("interrupted 3 times by crashes", j["error"]["detail"])
        self.assertEqual(j["error"]["status"], 422)  # failed on its attempts: no bug
        j = self.d.wait_job(two)  # two crashes: it still runs
        self.assertEqual(j["state"], "succeeded", j)
        self.assertNotIn("attempts", job_record(spool, two))

    def test_runs_are_counted_before_they_start_and_a_shutdown_is_no_crash(self):
        big = large_request(os.path.join(self.tmp, "big.json"), slow_write=True)
        self.d = Daemon(self.tmp, {"workers": "1", "shutdown_grace": "0"}).start()
        st, _, b = post_file(self.d, big)
        self.assertEqual(st, 202, b)
        jid = json.loads(b)["id"]
        self.d.wait_job(jid, states=("running",))
        self.assertEqual(wait_record(self.d.spool, jid, "attempts", 1).get("attempts"), 1)
        self.d.signal(signal.SIGKILL)
        self.d.wait_exit(10)
        self.d.start()
        self.d.wait_job(jid, states=("running",))
        self.assertEqual(wait_record(self.d.spool, jid, "attempts", 2).get("attempts"), 2)
        # stopped while writing (the decode before it polls no cancel flag)
        deadline = time.time() + 120
        while time.time() < deadline and self.d.json("GET", "/v1/exports/" + jid)[2]["progress"] == 0:
            time.sleep(0.02)
        self.assertEqual(self.d.stop(), 0)  # grace 0: the run is stopped, not crashed
        self.assertNotIn("workers did not stop", self.d.logs())
        rec = job_record(self.d.spool, jid)
        self.assertEqual(rec["state"], "queued")
        self.assertEqual(rec.get("attempts"), 1)

    def test_a_full_disk_while_an_h5ad_is_written_fails_the_job_not_the_daemon(self):
        # The fault shim fails every write to an h5ad result's temp file (a
        # small result is written in one piece when libhdf5 closes it,
        # src/h5w/vfd.c; tests/integration/cli/test_faults.py puts faults
        # inside larger files). The job fails as insufficient storage,
        # nothing is left in its folder, other exports go on, and the daemon
        # exits cleanly (libhdf5 1.10 crashed in H5close after such a
        # write).
        shim = os.environ.get("ADX_FAULT_SHIM", "")
        if not os.path.exists(shim):
            self.fail("ADX_FAULT_SHIM is not set to the built shim")
        env = {"LD_PRELOAD": shim, "ADX_FAULT": "write", "ADX_FAULT_PATH": "/.result.h5ad.",
               "ADX_FAULT_AFTER": "0",
               "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                                ":verify_asan_link_order=0").lstrip(":")}
        self.d = Daemon(self.tmp, env=env).start()
        st, _, j = self.d.json("POST", "/v1/exports", small_request(1))
        self.assertEqual(st, 202, j)
        j = self.d.wait_job(j["id"])
        self.assertEqual(j["state"], "failed", j)
        self.assertEqual(j["error"]["status"], 507, j)
        self.assertTrue(j["error"]["type"].endswith("/insufficient-storage"), j)
        self.assertIn("did not fit on the spool's disk", j["error"]["detail"])
        left = os.listdir(os.path.join(self.d.spool, "jobs", j["id"]))
        self.assertEqual([n for n in left if "result" in n], [], left)
        # New bodies get a 507 for one Retry-After after a full disk; then
        # an export that writes elsewhere succeeds.
        deadline = time.time() + 20
        while True:
            st, _, j = self.d.json("POST", "/v1/exports", small_request(2, fmt="npz"))
            if st != 507 or time.time() > deadline:
                break
            time.sleep(0.25)
        self.assertEqual(st, 202, j)
        self.assertEqual(self.d.wait_job(j["id"])["state"], "succeeded")
        self.assertEqual(self.d.request("GET", "/healthz", timeout=2)[0], 200)
        self.assertIn("No space left on device", self.d.logs())
        self.assertEqual(self.d.stop(), 0)
        self.d = None

    def test_access_log_keeps_lines_with_invalid_utf8_and_control_bytes(self):
        self.d = Daemon(self.tmp, {"log_format": "logfmt"}).start()
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        s.sendall(b"GET /v1/exports/%ff%feab HTTP/1.1\r\nHost: x\r\n"
                  b"X-Request-ID: bad-utf8\r\nConnection: close\r\n\r\n")
        st, _, p = read_response(s)
        s.close()
        self.assertEqual(st, 404)
        self.assertEqual(p["instance"], "/v1/exports/\\xff\\xfeab")
        st, _, _ = self.d.request("GET", "/a%0d%0aforged=1%1b[31m", headers={"X-Request-ID": "ctl"})
        self.assertEqual(st, 404)
        time.sleep(0.2)
        lines = self.d.logs().splitlines()
        utf = [ln for ln in lines if "request_id=bad-utf8" in ln]
        self.assertEqual(len(utf), 1, lines[-5:])
        # the \\xNN text, its backslash escaped by logfmt
        self.assertIn('path="/v1/exports/\\\\xff\\\\xfeab"', utf[0])
        ctl = [ln for ln in lines if "request_id=ctl" in ln]
        self.assertEqual(len(ctl), 1)
        self.assertIn('path="/a\\r\\nforged=1\\x1b[31m"', ctl[0])
        self.assertFalse(any(ln.startswith("forged") for ln in lines))


class JobTime(Base):
    @classmethod
    def setUpClass(cls):
        cls.bigd = tempfile.TemporaryDirectory()
        # The decode happens at validation; the write must outlast the 1 s
        # deadline on a quiet machine too.
        cls.big = large_request(os.path.join(cls.bigd.name, "big.json"), slow_write=True)

    @classmethod
    def tearDownClass(cls):
        cls.bigd.cleanup()

    def test_job_timeout_fails_the_job_naming_it(self):
        self.d = Daemon(self.tmp, {"job_timeout": "1"}).start()
        st, _, b = post_file(self.d, self.big)
        self.assertEqual(st, 202, b)
        j = self.d.wait_job(json.loads(b)["id"], timeout=120)
        self.assertEqual(j["state"], "failed", j)
        self.assertEqual(j["error"]["status"], 422)  # api.md: a job past its deadline
        self.assertTrue(j["error"]["type"].endswith("/job-failed"), j["error"])
        self.assertIn("job_timeout", j["error"]["detail"])
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs", j["id"])), ["job.json"])

    def test_delete_stops_a_running_job_within_a_second(self):
        self.d = Daemon(self.tmp, {"workers": "1"}).start()
        st, _, b = post_file(self.d, self.big)
        jid = json.loads(b)["id"]
        deadline = time.time() + 120
        while time.time() < deadline:  # writing (after the decode)
            j = self.d.json("GET", "/v1/exports/" + jid)[2]
            if j["state"] != "queued" and j["progress"] > 0:
                break
            time.sleep(0.02)
        self.assertEqual(j["state"], "running", j)
        t0 = time.time()
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + jid)[0], 204)
        j = self.d.wait_job(jid, timeout=30)
        dt = time.time() - t0
        self.assertEqual(j["state"], "canceled")
        sys.stderr.write("\nDELETE of a running job: canceled after %.2f s\n" % dt)
        self.assertLess(dt, 2.0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
