"""A POST's job from the first byte of its body (issue 12, points 1 and 4):
visible while its body arrives (`receiving`, with the bytes received) and
while a worker validates it (`validating`), found by the client's
X-Request-ID, and canceled by DELETE in either state; DELETE of a job in
its prepare step stops it within about a second. Slow clients are raw
sockets that send a body in pieces."""
import http.client
import json
import os
import random
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvharness import Daemon, read_h5ad, read_record, small_request  # noqa: E402


def padded_body(size):
    """A valid request of exactly `size` bytes (JSON whitespace pads it)."""
    doc = json.dumps(small_request(1)).encode()
    return doc + b" " * (size - len(doc))


def prepare_heavy(path):
    """A request whose decode (at validation) and prepare step take
    seconds: strings_to_categoricals of 36 columns, each a natural sort of
    50000 distinct strings (about 0.2 s a column here, 0.5 s under ASan:
    the flag is read between columns)."""
    if os.path.exists(path):
        return path
    rng = random.Random(1)
    rows = 100000
    vals = ["v%07d" % i for i in range(rows // 2)]
    obs = {"index": ["c%d" % i for i in range(rows)], "columns": {}}
    for c in range(36):
        obs["columns"]["s%d" % c] = [rng.choice(vals) for _ in range(rows)]
    with open(path, "w") as f:
        json.dump({"adata": {"obs": obs}, "format": "h5ad", "compression": None}, f)
    return path


class Upload:
    """A POST whose body the test sends piece by piece."""

    def __init__(self, d, length, rid, ctype="application/json"):
        self.s = socket.create_connection(("127.0.0.1", d.port), timeout=60)
        self.s.sendall(("POST /v1/exports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: %s\r\nContent-Length: %d\r\nX-Request-ID: %s\r\n\r\n"
                        % (ctype, length, rid)).encode())

    def send(self, data):
        self.s.sendall(data)

    def response(self):
        r = http.client.HTTPResponse(self.s)
        r.begin()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body

    def close(self):
        self.s.close()


class Base(unittest.TestCase):
    config = {}

    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.d = Daemon(self.tmp, self.config).start()

    def tearDown(self):
        rc = self.d.stop()
        failed = any(t is self for t, _ in
                     self._outcome.result.errors + self._outcome.result.failures)
        if failed or rc not in (0, None):
            sys.stderr.write(self.d.logs()[-4000:])
        self.tmpd.cleanup()
        self.assertIn(rc, (0, None))

    def by_rid(self, rid, **query):
        q = "&".join("%s=%s" % kv for kv in query.items())
        st, _, o = self.d.json("GET", "/v1/exports?request_id=%s%s" % (rid, "&" + q if q else ""))
        self.assertEqual(st, 200, o)
        return o["items"]

    def wait_listed(self, rid, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            items = self.by_rid(rid)
            if items and pred(items[0]):
                return items[0]
            time.sleep(0.01)
        self.fail("no job of request %s reached the expected state: %s" % (rid, items))

    def tmp_files(self):
        return os.listdir(os.path.join(self.d.spool, "tmp"))

    def wait_tmp_empty(self, timeout=5):
        deadline = time.time() + timeout
        while self.tmp_files() and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.tmp_files(), [])


class Receiving(Base):
    def test_slow_upload_is_listed_with_its_bytes_and_delete_aborts_it(self):
        body = padded_body(3 << 20)
        up = Upload(self.d, len(body), "slow-upload-1")
        up.send(body[:1 << 20])
        j = self.wait_listed("slow-upload-1", lambda j: j["bytes_received"] == 1 << 20)
        self.assertEqual(j["state"], "receiving")
        self.assertEqual(j["bytes_expected"], len(body))
        self.assertEqual(j["request_id"], "slow-upload-1")
        jid = j["id"]
        # the same job by id, and in the state filter
        st, _, g = self.d.json("GET", "/v1/exports/" + jid)
        self.assertEqual((st, g["state"]), (200, "receiving"))
        self.assertIn(jid, [x["id"] for x in self.by_rid("slow-upload-1", state="receiving")])
        self.assertEqual(self.tmp_files(), [jid + ".upload"])
        # a file that does not exist yet is a 409 naming the state
        st, _, p = self.d.json("GET", "/v1/exports/%s/file" % jid)
        self.assertEqual((st, p["state"]), (409, "receiving"))

        t0 = time.time()
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + jid)[0], 204)
        st, _, g = self.d.json("GET", "/v1/exports/" + jid)
        self.assertEqual(g["state"], "canceled")
        self.assertIn("canceled", g["error"]["type"])
        self.wait_tmp_empty()  # the spooled bytes are deleted before the body ends
        self.assertLess(time.time() - t0, 5)
        # the rest of the body is read and the POST answered: 409, canceled
        up.send(body[1 << 20:])
        st, h, b = up.response()
        up.close()
        self.assertEqual(st, 409, b)
        self.assertEqual(h["content-type"], "application/problem+json")
        p = json.loads(b)
        self.assertIn("canceled", p["type"])
        self.assertIn(jid, p["detail"])
        self.assertFalse(os.path.exists(os.path.join(self.d.spool, "jobs", jid)))
        # the quota got its bytes back: a full-size POST is accepted
        st, _, b = self.d.request("POST", "/v1/exports", padded_body(1 << 20),
                                  {"Content-Type": "application/json"})
        self.assertEqual(st, 202, b)
        st, _, m = self.d.request("GET", "/metrics")
        self.assertIn(b'state="receiving"', m)

    def test_cancel_with_much_of_the_body_left_closes_the_connection(self):
        size = 64 << 20
        up = Upload(self.d, size, "slow-upload-2")
        piece = b" " * (1 << 20)
        up.send(piece)
        j = self.wait_listed("slow-upload-2", lambda j: j["bytes_received"] == 1 << 20)
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + j["id"])[0], 204)
        sent, closed = 1 << 20, False
        try:
            while sent < size:
                up.send(piece)
                sent += len(piece)
            up.response()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            closed = True
        up.close()
        self.assertTrue(closed, "the daemon read all %d bytes of a canceled upload" % sent)
        # 16 MiB swallowed after the cancel, plus what the socket buffers held
        self.assertLess(sent, 48 << 20)
        self.wait_tmp_empty()
        self.assertEqual(self.d.json("GET", "/v1/exports/" + j["id"])[2]["state"], "canceled")
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)

    def test_a_client_that_leaves_mid_upload_leaves_no_job(self):
        body = padded_body(2 << 20)
        up = Upload(self.d, len(body), "slow-upload-3")
        up.send(body[:100000])
        j = self.wait_listed("slow-upload-3", lambda j: j["bytes_received"] == 100000)
        up.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.d.request("GET", "/v1/exports/" + j["id"])[0] == 404:
                break
            time.sleep(0.02)
        self.assertEqual(self.d.request("GET", "/v1/exports/" + j["id"])[0], 404)
        self.assertEqual(self.by_rid("slow-upload-3"), [])
        self.wait_tmp_empty()

    def test_an_upload_file_that_cannot_be_created_is_a_503_after_the_body(self):
        # the file is opened on the pool while the body arrives; its failure
        # is answered once the body is in, and nothing is left of the job
        tmpdir = os.path.join(self.d.spool, "tmp")
        os.rmdir(tmpdir)
        with open(tmpdir, "w") as f:
            f.write("not a directory")
        try:
            st, h, b = self.d.request("POST", "/v1/exports", padded_body(300000),
                                      {"Content-Type": "application/json",
                                       "X-Request-ID": "no-tmp-1"})
            self.assertEqual(st, 503, b)
            self.assertIn("retry-after", h)
            self.assertIn("not writable", json.loads(b)["detail"])
            self.assertEqual(self.by_rid("no-tmp-1"), [])
            self.assertEqual(self.d.request("GET", "/healthz")[0], 200)
        finally:
            os.unlink(tmpdir)
            os.mkdir(tmpdir)
        st, _, b = self.d.request("POST", "/v1/exports?wait=60", small_request(2))
        self.assertEqual(st, 200, b)

    def test_a_refused_body_is_never_a_job(self):
        st, _, b = self.d.request("POST", "/v1/exports", b'{"adata": {"X": [[1, 2], [3]]}}',
                                  {"Content-Type": "application/json",
                                   "X-Request-ID": "refused-1"})
        self.assertEqual(st, 400, b)
        self.assertEqual(self.by_rid("refused-1"), [])
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs")), [])


def gzip_multipart(rows, cols):
    """A gzip-compressed multipart body: the request and an .npy part of
    zeros (rows x cols float64) that decompresses to far more than it is."""
    import gzip
    import io
    import numpy as np
    npy = io.BytesIO()
    np.save(npy, np.zeros((rows, cols)))
    req = json.dumps({"adata": {"X": {"encoding-type": "array", "part": "X"}},
                      "format": "h5ad", "compression": "gzip"}).encode()
    b = "adx-test-boundary"
    body = (b"--" + b.encode() + b'\r\nContent-Disposition: form-data; name="request"\r\n'
            b"Content-Type: application/json\r\n\r\n" + req + b"\r\n--" + b.encode() +
            b'\r\nContent-Disposition: form-data; name="X"; filename="X.npy"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + npy.getvalue() +
            b"\r\n--" + b.encode() + b"--\r\n")
    return gzip.compress(body), {"Content-Type": "multipart/form-data; boundary=" + b,
                                 "Content-Encoding": "gzip"}


class GzipCopyQuota(Base):
    config = {"max_spool_bytes": "8M"}

    def test_the_decompressed_copy_counts_against_max_spool_bytes(self):
        # 20 MB decompressed from about 20 KB sent: the copy beside the
        # upload does not fit the 8 MiB quota, so validation refuses it
        body, h = gzip_multipart(2500, 1000)
        self.assertLess(len(body), 1 << 20)
        st, hh, b = self.d.request("POST", "/v1/exports", body, h)
        self.assertEqual(st, 507, b)
        p = json.loads(b)
        self.assertIn("max_spool_bytes", p["detail"])
        self.assertIn("retry-after", hh)
        self.wait_tmp_empty()
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs")), [])
        # 1.6 MB copies that fit are charged and given back: six in a row
        # would overdraw the quota if one leaked
        body, h = gzip_multipart(200, 1000)
        for i in range(6):
            st, _, b = self.d.request("POST", "/v1/exports?wait=60", body, h)
            self.assertEqual(st, 200, b)
            a = read_h5ad(b, self.tmp, "x%d.h5ad" % i)
            self.assertEqual(a.shape, (200, 1000))
            self.assertEqual(float(abs(a.X).sum()), 0.0)
        self.wait_tmp_empty()


class Heavy(Base):
    config = {"workers": "1"}

    @classmethod
    def setUpClass(cls):
        cls.bigd = tempfile.TemporaryDirectory()
        cls.big = prepare_heavy(os.path.join(cls.bigd.name, "prep.json"))
        with open(cls.big, "rb") as f:
            cls.body = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.bigd.cleanup()

    def test_validating_job_is_visible_and_delete_stops_its_decode(self):
        up = Upload(self.d, len(self.body), "validate-1")
        up.send(self.body)
        j = self.wait_listed("validate-1", lambda j: j["state"] == "validating")
        self.assertEqual(j["bytes_received"], len(self.body))
        jid = j["id"]
        t0 = time.time()
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + jid)[0], 204)
        st, _, g = self.d.json("GET", "/v1/exports/" + jid)
        # the worker stops at its next look at the flag
        self.assertIn(g["state"], ("validating", "canceled"))
        st, h, b = up.response()
        dt = time.time() - t0
        up.close()
        sys.stderr.write("\nDELETE while validating: answered after %.2f s\n" % dt)
        self.assertEqual(st, 409, b)
        self.assertIn("canceled", json.loads(b)["type"])
        self.assertLess(dt, 2.0)
        g = self.d.json("GET", "/v1/exports/" + jid)[2]
        self.assertEqual(g["state"], "canceled")
        # nothing of it stays: the upload is gone, and no job directory
        # holds a request (a cancel that came after the decode finds the
        # job on disk and leaves its canceled record only)
        self.wait_tmp_empty()
        jd = os.path.join(self.d.spool, "jobs", jid)
        deadline = time.time() + 5
        while os.path.exists(jd) and os.listdir(jd) != ["job.json"] and time.time() < deadline:
            time.sleep(0.02)
        if os.path.exists(jd):
            self.assertEqual(os.listdir(jd), ["job.json"])
            self.assertEqual(read_record(os.path.join(jd, "job.json"))["state"], "canceled")

    def test_delete_in_prepare_stops_within_a_second(self):
        up = Upload(self.d, len(self.body), "prepare-1")
        up.send(self.body)
        st, _, b = up.response()
        up.close()
        self.assertEqual(st, 202, b)
        jid = json.loads(b)["id"]
        # running, decoded (progress 0.5 from validation), not yet writing
        deadline = time.time() + 120
        while time.time() < deadline:
            j = self.d.json("GET", "/v1/exports/" + jid)[2]
            if j["state"] == "running" and j["progress"] == 0.5:
                break
            time.sleep(0.01)
        self.assertEqual((j["state"], j["progress"]), ("running", 0.5), j)
        time.sleep(0.3)  # well inside strings_to_categoricals
        t0 = time.time()
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + jid)[0], 204)
        j = self.d.wait_job(jid, timeout=30)
        dt = time.time() - t0
        sys.stderr.write("\nDELETE in prepare: canceled after %.2f s\n" % dt)
        self.assertEqual(j["state"], "canceled")
        self.assertLess(dt, 2.0)
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs", jid)), ["job.json"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
