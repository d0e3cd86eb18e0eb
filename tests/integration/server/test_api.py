"""HTTP API of `anndata-exportd serve` against api.md: the async flow, wait
mode, downloads (Range, ETag, 304), cancel, expiry, listing, every error
status, tokens, CORS, proxies and the service endpoints."""
import hashlib
import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvharness import (Daemon, large_request, post_file, read_h5ad, read_record,  # noqa: E402
                        small_request)

PROBLEM = "application/problem+json"
_big = {}


def big_path():
    # One large request shared by the tests of this process.
    if "p" not in _big:
        _big["dir"] = tempfile.TemporaryDirectory()
        _big["p"] = large_request(os.path.join(_big["dir"].name, "big.json"), slow_write=True)
    return _big["p"]


class Base(unittest.TestCase):
    config = {}

    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.d = Daemon(self.tmp, self.config)
        self.d.start()

    def tearDown(self):
        rc = self.d.stop()
        if any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
               if _ is self) or rc not in (0, None):
            sys.stderr.write(self.d.logs()[-4000:])
        self.tmpd.cleanup()
        # a clean SIGTERM exit is part of every test (and runs ASan's leak check)
        self.assertIn(rc, (0, None))

    def assertProblem(self, status, h, body, want):
        self.assertEqual(status, want, body[:300])
        self.assertTrue(h["content-type"].startswith(PROBLEM), h)
        p = json.loads(body)
        self.assertEqual(p["status"], want)
        for k in ("type", "title", "detail", "instance"):
            self.assertIn(k, p)
        self.assertIn("x-request-id", h)
        return p


class FlowTest(Base):
    def test_progress_moves_through_the_write(self):
        # A job whose write takes seconds: its progress, polled, climbs in
        # many steps (issue 11: a progress bar moves smoothly, it does not sit
        # at one value and jump to 1) and never goes back.
        st, _, body = post_file(self.d, big_path())
        self.assertEqual(st, 202, body)
        job = json.loads(body)
        seen = []
        deadline = time.time() + 600
        while time.time() < deadline:
            st, _, j = self.d.json("GET", "/v1/exports/" + job["id"])
            self.assertEqual(st, 200)
            seen.append(j["progress"])
            if j["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.02)
        self.assertEqual(j["state"], "succeeded", j)
        self.assertEqual(seen[-1], 1.0)
        self.assertEqual(seen, sorted(seen), "progress went back")
        inner = sorted(set(p for p in seen if 0 < p < 1))
        self.assertGreaterEqual(len(inner), 10, inner)
        # the write is the second half of the bar: it starts where the decode ended
        self.assertGreater(inner[-1] - inner[0], 0.3, inner)

    def test_async_flow_and_download(self):
        st, h, job = self.d.json("POST", "/v1/exports", small_request(7))
        self.assertEqual(st, 202, job)
        self.assertEqual(h["location"], "/v1/exports/" + job["id"])
        self.assertEqual(len(job["id"]), 26)
        self.assertIn(job["state"], ("queued", "running", "succeeded"))
        self.assertEqual(job["links"]["file"], "/v1/exports/%s/file" % job["id"])
        done = self.d.wait_job(job["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["progress"], 1.0)
        self.assertEqual(done["summary"]["n_obs"], 2)
        st, h, data = self.d.request("GET", "/v1/exports/%s/file" % job["id"])
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/x-hdf5")
        self.assertEqual(int(h["content-length"]), len(data))
        self.assertEqual(len(data), done["size_bytes"])
        self.assertEqual(h["etag"], '"%s"' % hashlib.sha256(data).hexdigest())
        self.assertEqual(done["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(h["content-disposition"],
                         'attachment; filename="%s.h5ad"' % job["id"])
        a = read_h5ad(data, self.tmp)
        self.assertEqual(a.shape, (2, 2))
        self.assertEqual(a.X[0, 0], 7)
        self.assertEqual(list(a.obs_names), ["a", "b"])

    def test_wait_mode_returns_the_file(self):
        req = small_request(3)
        req["filename"] = "résumé data.h5ad"
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", req)
        self.assertEqual(st, 200, data[:500])
        self.assertEqual(h["content-type"], "application/x-hdf5")
        self.assertIn("filename*=UTF-8''r%C3%A9sum%C3%A9%20data.h5ad", h["content-disposition"])
        self.assertIn('filename="r_sum_ data.h5ad"', h["content-disposition"])
        self.assertEqual(h["etag"], '"%s"' % hashlib.sha256(data).hexdigest())
        self.assertEqual(read_h5ad(data, self.tmp).X[0, 0], 3)

    def test_wait_mode_bad_request_is_400_with_pointer(self):
        st, h, body = self.d.request("POST", "/v1/exports?wait=5",
                                     {"adata": {"X": [[1, 2], [3]]}})
        p = self.assertProblem(st, h, body, 400)
        self.assertEqual(p["errors"][0]["pointer"], "/adata/X/1")
        # not a job
        st, _, lst = self.d.json("GET", "/v1/exports")
        self.assertEqual(lst["items"], [])

    def test_malformed_json_has_line_and_column(self):
        st, h, body = self.d.request("POST", "/v1/exports", b'{"adata": {"X": [1,\n 2,, 3]}}',
                                     {"Content-Type": "application/json"})
        p = self.assertProblem(st, h, body, 400)
        self.assertIn("line", p["detail"])
        self.assertIn("column", p["detail"])

    def test_npz_and_csv_content_types(self):
        for fmt, ctype in (("npz", "application/zip"), ("csv", "application/zip")):
            st, h, data = self.d.request("POST", "/v1/exports?wait=60", small_request(1, fmt))
            self.assertEqual(st, 200, data[:300])
            self.assertEqual(h["content-type"], ctype)
            self.assertTrue(data.startswith(b"PK"))

    def test_range_etag_304(self):
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", small_request(1))
        self.assertEqual(st, 200)
        jid = h["content-location"].rsplit("/", 1)[1]
        path = "/v1/exports/%s/file" % jid
        size = len(data)
        etag = h["etag"]
        cases = [("bytes=0-9", 0, 9), ("bytes=10-", 10, size - 1), ("bytes=-5", size - 5, size - 1),
                 ("bytes=5-5", 5, 5), ("bytes=0-%d" % (size * 2), 0, size - 1),
                 ("bytes=-%d" % (size + 10), 0, size - 1)]
        for rng, a, b in cases:
            st, h, part = self.d.request("GET", path, headers={"Range": rng})
            self.assertEqual(st, 206, rng)
            self.assertEqual(h["content-range"], "bytes %d-%d/%d" % (a, b, size), rng)
            self.assertEqual(part, data[a:b + 1], rng)
            self.assertEqual(int(h["content-length"]), b - a + 1)
        for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 9), "bytes=-0"):
            st, h, body = self.d.request("GET", path, headers={"Range": rng})
            self.assertProblem(st, h, body, 416)
            self.assertEqual(h["content-range"], "bytes */%d" % size)
        # ignored: several ranges, other units, malformed
        for rng in ("bytes=0-1,3-4", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes 0-1"):
            st, h, full = self.d.request("GET", path, headers={"Range": rng})
            self.assertEqual(st, 200, rng)
            self.assertEqual(full, data)
        # If-Range with a stale validator sends it all
        st, h, full = self.d.request("GET", path, headers={"Range": "bytes=0-1",
                                                           "If-Range": '"stale"'})
        self.assertEqual(st, 200)
        st, h, part = self.d.request("GET", path, headers={"Range": "bytes=0-1", "If-Range": etag})
        self.assertEqual(st, 206)
        for inm in (etag, '"x", ' + etag, "*", "W/" + etag):
            st, h, body = self.d.request("GET", path, headers={"If-None-Match": inm})
            self.assertEqual(st, 304, inm)
            self.assertEqual(body, b"")
            self.assertEqual(h["etag"], etag)
        st, h, body = self.d.request("GET", path, headers={"If-None-Match": '"other"'})
        self.assertEqual(st, 200)
        st, h, body = self.d.request("HEAD", path)
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        self.assertEqual(int(h["content-length"]), size)

    def test_percent_00_does_not_cut_the_path(self):
        # libmicrohttpd's decoding made "%00" end the path: "ID%00x/file"
        # was the job itself and "a%00b" named dataset "a"
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", small_request(4))
        self.assertEqual(st, 200)
        jid = h["content-location"].rsplit("/", 1)[1]
        st, h, b = self.d.request("GET", "/v1/exports/%s%%00x/file" % jid)
        self.assertProblem(st, h, b, 404)
        st, h, b = self.d.request("DELETE", "/v1/exports/%s%%00x" % jid)
        self.assertProblem(st, h, b, 404)
        self.assertEqual(self.d.json("GET", "/v1/exports/" + jid)[0], 200)
        st, h, b = self.d.request("PUT", "/v1/datasets/a%00b", small_request(4),
                                  headers={"Content-Type": "application/json"})
        p = self.assertProblem(st, h, b, 400)
        self.assertEqual(p["errors"][0]["pointer"], "/name")
        self.assertEqual(self.d.json("GET", "/v1/datasets/a")[0], 404)

    def files_read_in(self):
        st, _, m = self.d.request("GET", "/metrics")
        self.assertEqual(st, 200)
        line = [ln for ln in m.decode().splitlines() if ln.startswith("adx_files_read_in_total ")]
        return int(line[0].split()[1])

    def test_file_out_of_page_cache_is_read_in_by_a_worker(self):
        # sendfile runs on the loop thread: a file not in the page cache
        # would make it wait for the disk, so a worker reads it in first
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", small_request(3))
        self.assertEqual(st, 200)
        self.assertEqual(self.files_read_in(), 0)  # just written: sent as it is
        jid = h["content-location"].rsplit("/", 1)[1]
        path = "/v1/exports/%s/file" % jid
        result = os.path.join(self.d.spool, "jobs", jid, "result.h5ad")

        def evict():
            fd = os.open(result, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

        evict()
        st, h, again = self.d.request("GET", path)
        self.assertEqual(st, 200)
        self.assertEqual(again, data)
        self.assertEqual(self.files_read_in(), 1)
        st, h, again = self.d.request("GET", path)  # in the cache now
        self.assertEqual(again, data)
        self.assertEqual(self.files_read_in(), 1)
        evict()
        st, h, part = self.d.request("GET", path, headers={"Range": "bytes=100-199"})
        self.assertEqual(st, 206)
        self.assertEqual(part, data[100:200])
        st, h, body = self.d.request("HEAD", path)  # no body, nothing to read
        self.assertEqual(st, 200)
        self.assertEqual(self.files_read_in(), 2)

    def test_list_filter_and_pages(self):
        ids = []
        for i in range(5):
            st, _, j = self.d.json("POST", "/v1/exports", small_request(i))
            self.assertEqual(st, 202)
            ids.append(j["id"])
        for i in ids:
            self.d.wait_job(i)
        self.assertEqual(ids, sorted(ids))  # ids sort by creation
        st, _, page = self.d.json("GET", "/v1/exports?limit=2")
        self.assertEqual([j["id"] for j in page["items"]], ids[::-1][:2])
        got = [j["id"] for j in page["items"]]
        while page["next_cursor"]:
            st, _, page = self.d.json("GET", "/v1/exports?limit=2&cursor=" + page["next_cursor"])
            self.assertEqual(st, 200)
            got += [j["id"] for j in page["items"]]
        self.assertEqual(got, ids[::-1])
        st, _, page = self.d.json("GET", "/v1/exports?state=succeeded")
        self.assertEqual(len(page["items"]), 5)
        st, _, page = self.d.json("GET", "/v1/exports?state=queued")
        self.assertEqual(page["items"], [])
        for q in ("state=nope", "limit=0", "limit=1001", "limit=x", "cursor=zzz"):
            st, h, body = self.d.request("GET", "/v1/exports?" + q)
            self.assertProblem(st, h, body, 400)

    def test_delete_finished_job_removes_file(self):
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", small_request(1))
        jid = h["content-location"].rsplit("/", 1)[1]
        st, h, body = self.d.request("DELETE", "/v1/exports/" + jid)
        self.assertEqual(st, 204)
        # the API forgets it at once; the directory goes on a worker right after
        jdir = os.path.join(self.d.spool, "jobs", jid)
        deadline = time.time() + 10
        while os.path.exists(jdir) and time.time() < deadline:
            time.sleep(0.02)
        self.assertFalse(os.path.exists(jdir))
        st, h, body = self.d.request("GET", "/v1/exports/" + jid)
        self.assertProblem(st, h, body, 404)
        st, h, body = self.d.request("GET", "/v1/exports/%s/file" % jid)
        self.assertProblem(st, h, body, 404)

    def test_request_id_echoed_or_generated(self):
        st, h, _ = self.d.request("GET", "/v1/version", headers={"X-Request-ID": "trace-42"})
        self.assertEqual(h["x-request-id"], "trace-42")
        for rid in ("a.b_c~d", "trace=1/2", "a b", "x" * 135):  # printable ASCII: echoed
            st, h, _ = self.d.request("GET", "/v1/version", headers={"X-Request-ID": rid})
            self.assertEqual(h["x-request-id"], rid)
        for rid in ("bad id\x7f", "x" * 136, "tab\there"):
            st, h, _ = self.d.request("GET", "/v1/version", headers={"X-Request-ID": rid})
            self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        st, h, _ = self.d.request("GET", "/nope")
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertIn('"request_id":"trace-42"', self.d.logs())

    def test_service_endpoints(self):
        st, h, v = self.d.json("GET", "/v1/version")
        self.assertEqual(st, 200)
        self.assertRegex(v["version"], r"^\d+\.\d+\.\d+")
        self.assertTrue(v["libraries"]["hdf5"].startswith("1."))
        for k in ("libmicrohttpd", "jansson", "libuv"):
            self.assertRegex(v["libraries"][k], r"^\d+\.\d+")
        st, h, doc = self.d.json("GET", "/openapi.json")
        self.assertEqual(st, 200)
        self.assertTrue(doc["openapi"].startswith("3.1"))
        for p in ("/v1/exports", "/v1/exports/{id}", "/v1/exports/{id}/file", "/healthz",
                  "/readyz", "/metrics", "/v1/version"):
            self.assertIn(p, doc["paths"])
        with open(os.path.join(os.environ["ADX_SRC"], "src/server/openapi.json")) as f:
            self.assertEqual(json.load(f), doc)
        st, h, r = self.d.json("GET", "/readyz")
        self.assertEqual(st, 200)
        self.d.request("POST", "/v1/exports?wait=30", small_request(1))
        st, h, m = self.d.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        text = m.decode()
        self.assertIn('adx_http_requests_total{route="/v1/exports",status="200"} 1', text)
        self.assertIn('adx_http_request_duration_seconds_bucket{route="/v1/exports",le="+Inf"} 1',
                      text)
        self.assertIn('adx_jobs{state="succeeded"} 1', text)
        self.assertIn("adx_queue_depth 0", text)
        self.assertIn("adx_worker_busy_seconds_total", text)
        self.assertRegex(text, r"adx_http_received_bytes_total [1-9]")

    def test_error_statuses(self):
        st, h, b = self.d.request("GET", "/v2/nothing")
        self.assertProblem(st, h, b, 404)
        st, h, b = self.d.request("GET", "/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV")
        self.assertProblem(st, h, b, 404)
        st, h, b = self.d.request("GET", "/v1/exports/not-an-id/file")
        self.assertProblem(st, h, b, 404)
        st, h, b = self.d.request("PUT", "/v1/exports", b"{}")
        self.assertProblem(st, h, b, 405)
        self.assertEqual(h["allow"], "GET, HEAD, POST, OPTIONS")
        st, h, b = self.d.request("POST", "/v1/exports/01ARZ3NDEKTSV4RRFFQ69G5FAV", b"{}")
        self.assertProblem(st, h, b, 405)
        self.assertIn("DELETE", h["allow"])
        st, h, b = self.d.request("DELETE", "/healthz")
        self.assertProblem(st, h, b, 405)
        st, h, b = self.d.request("POST", "/v1/exports", b"a=b",
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertProblem(st, h, b, 415)
        st, h, b = self.d.request("POST", "/v1/exports?wait=x", small_request())
        self.assertProblem(st, h, b, 400)
        st, h, b = self.d.request("POST", "/v1/exports", {"adata": {}, "format": "xls"})
        p = self.assertProblem(st, h, b, 400)
        self.assertEqual(p["errors"][0]["pointer"], "/format")
        st, h, b = self.d.request("POST", "/v1/exports", {"adata": {}, "include": ["nons/x"]})
        self.assertProblem(st, h, b, 400)


class BodyLimitTest(Base):
    config = {"max_body_bytes": "64K", "connection_timeout": "2"}

    def test_slow_client_is_cut_off(self):
        import socket
        s = socket.create_connection(("127.0.0.1", self.d.port))
        s.sendall(b"POST /v1/exports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"adata\"")
        s.settimeout(15)
        t0 = time.time()
        data = s.recv(4096)
        while data:
            data = s.recv(4096)
        s.close()
        self.assertLess(time.time() - t0, 10)  # closed by the server after ~2 s idle
        # the loop was never held: other clients were served meanwhile
        self.assertEqual(self.d.request("GET", "/healthz")[0], 200)
        deadline = time.time() + 5
        while os.listdir(os.path.join(self.d.spool, "tmp")) and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])

    def test_413_content_length_and_chunked(self):
        body = b'{"adata": {"X": [' + b"1," * 40000 + b"1]}}"
        st, h, b = self.d.request("POST", "/v1/exports", body, {"Content-Type": "application/json"})
        p = self.assertProblem(st, h, b, 413)
        self.assertIn("max_body_bytes", p["detail"])
        # chunked: no Content-Length, the running total trips the limit
        c = self.d.conn()
        c.putrequest("POST", "/v1/exports")
        c.putheader("Content-Type", "application/json")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(body), 8192):
            chunk = body[i:i + 8192]
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        b = r.read()
        self.assertProblem(r.status, {k.lower(): v for k, v in r.getheaders()}, b, 413)
        c.close()
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "tmp")), [])

    def test_element_limit_is_413(self):
        self.d.stop()
        self.d = Daemon(self.tmp, {"max_elements": "10"}, spool=os.path.join(self.tmp, "s2"))
        self.d.start()
        st, h, b = self.d.request("POST", "/v1/exports", {"adata": {"X": [list(range(20))]}})
        self.assertProblem(st, h, b, 413)


class QueueTest(Base):
    config = {"workers": "1", "queue_max": "2", "result_ttl": "2"}

    def test_queue_full_429_conflict_409_cancel_and_expiry(self):
        big = big_path()
        st, h, b = post_file(self.d, big)
        self.assertEqual(st, 202, b)
        running = json.loads(b)["id"]
        self.d.wait_job(running, states=("running",))
        ids = []
        for i in range(2):
            st, h, j = self.d.json("POST", "/v1/exports", small_request(i))
            self.assertEqual(st, 202, j)
            ids.append(j["id"])
        st, h, b = self.d.request("POST", "/v1/exports", small_request(9))
        self.assertProblem(st, h, b, 429)
        self.assertTrue(int(h["retry-after"]) > 0)
        st, h, b = self.d.json("GET", "/readyz")
        self.assertEqual(st, 503)
        # 409 for a queued job's file, with its state
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % ids[0])
        p = self.assertProblem(st, h, b, 409)
        self.assertEqual(p["state"], "queued")
        # cancel the queued one
        st, h, b = self.d.request("DELETE", "/v1/exports/" + ids[0])
        self.assertEqual(st, 204)
        st, h, j = self.d.json("GET", "/v1/exports/" + ids[0])
        self.assertEqual(j["state"], "canceled")
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % ids[0])
        self.assertEqual(self.assertProblem(st, h, b, 409)["state"], "canceled")
        # cooperative cancel of the running one
        st, h, b = self.d.request("DELETE", "/v1/exports/" + running)
        self.assertEqual(st, 204)
        j = self.d.wait_job(running, timeout=60)
        self.assertEqual(j["state"], "canceled")
        self.assertFalse([n for n in os.listdir(os.path.join(self.d.spool, "jobs", running))
                          if n.startswith("result") or n.startswith(".")])
        # the other queued job still runs, then expires (result_ttl = 2 s)
        j = self.d.wait_job(ids[1])
        self.assertEqual(j["state"], "succeeded")
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % ids[1])
        self.assertEqual(st, 200)
        j = self.d.wait_job(ids[1], states=("expired",), timeout=10)
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % ids[1])
        self.assertProblem(st, h, b, 410)
        self.assertFalse([n for n in os.listdir(os.path.join(self.d.spool, "jobs", ids[1]))
                          if n.startswith("result")])
        # canceled jobs are forgotten after one TTL, expired ones after two
        for jid in (ids[0], running, ids[1]):
            deadline = time.time() + 15
            while self.d.request("GET", "/v1/exports/" + jid)[0] != 404:
                self.assertLess(time.time(), deadline, jid)
                time.sleep(0.1)
            deadline = time.time() + 5
            while os.path.exists(os.path.join(self.d.spool, "jobs", jid)):
                self.assertLess(time.time(), deadline, jid)
                time.sleep(0.05)

    def test_canceled_wait_is_a_problem_and_wait_runs_out_to_202(self):
        st, h, b = post_file(self.d, big_path())
        self.assertEqual(st, 202)
        first = json.loads(b)["id"]
        # a waiting client whose queued job is canceled gets the job's problem
        out = {}

        def waiter():
            # waits behind the large job: ~10 s of CPU, minutes on a loaded machine
            out["r"] = self.d.request("POST", "/v1/exports?wait=300", small_request(5),
                                      timeout=330)

        t = threading.Thread(target=waiter)
        t.start()
        deadline = time.time() + 10
        victim = None
        while victim is None and time.time() < deadline:
            st, _, lst = self.d.json("GET", "/v1/exports?state=queued")
            victim = next((x["id"] for x in lst["items"]), None)
            time.sleep(0.005)
        self.assertIsNotNone(victim)
        self.assertEqual(self.d.request("DELETE", "/v1/exports/" + victim)[0], 204)
        t.join(30)
        st, h, b = out["r"]
        p = self.assertProblem(st, h, b, 409)
        self.assertEqual(p["job_id"], victim)
        self.assertIn("canceled", p["type"])
        st, h, j = self.d.json("POST", "/v1/exports?wait=0", small_request())
        self.assertEqual(st, 202, j)
        # the wait runs out before a large job can end: 202 and the job
        t0 = time.time()
        st, h, b = post_file(self.d, big_path(), "?wait=1")
        self.assertEqual(st, 202, b[:300])
        self.assertGreaterEqual(time.time() - t0, 0.9)
        j = json.loads(b)
        self.assertEqual(h["location"], "/v1/exports/" + j["id"])
        self.assertIn(j["state"], ("queued", "running"))
        self.d.request("DELETE", "/v1/exports/" + first)
        self.d.request("DELETE", "/v1/exports/" + j["id"])


    def test_failed_job_500_without_paths(self):
        # A job that fails on the server side: its result name is taken by
        # a non-empty directory, so the writer's final rename fails.
        st, h, b = post_file(self.d, big_path())
        self.assertEqual(st, 202)
        first = json.loads(b)["id"]
        out = {}

        def waiter():
            out["r"] = self.d.request("POST", "/v1/exports?wait=60", small_request(5))

        t = threading.Thread(target=waiter)
        t.start()
        deadline = time.time() + 10
        victim = None
        while victim is None and time.time() < deadline:
            st, _, lst = self.d.json("GET", "/v1/exports?state=queued")
            victim = next((x["id"] for x in lst["items"]), None)
            time.sleep(0.005)
        self.assertIsNotNone(victim)
        blocker = os.path.join(self.d.spool, "jobs", victim, "result.h5ad")
        os.makedirs(blocker)
        open(os.path.join(blocker, "x"), "w").close()
        t.join(330)
        st, h, b = out["r"]
        p = self.assertProblem(st, h, b, 500)
        self.assertNotIn(self.d.spool, b.decode())
        self.assertNotIn("/jobs/", b.decode())
        self.assertIn(victim, p["detail"])  # points to the log entry
        st, h, j = self.d.json("GET", "/v1/exports/" + victim)
        self.assertEqual(j["state"], "failed")
        self.assertEqual(j["error"]["status"], 500)
        self.assertIsNone(j["sha256"])
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % victim)
        self.assertEqual(self.assertProblem(st, h, b, 409)["state"], "failed")
        self.assertIn("cannot move the file into place", self.d.logs())
        # The reason and the path are in the log line's cause, never in the body.
        self.assertIn("Is a directory", self.d.logs())
        self.assertNotIn("Is a directory", b.decode())
        self.d.request("DELETE", "/v1/exports/" + first)


class ExpiryAcrossRestartTest(Base):
    config = {"result_ttl": "2"}

    def test_a_result_that_expired_while_down_is_410_from_the_first_request(self):
        st, h, _ = self.d.request("POST", "/v1/exports?wait=60", small_request(5))
        self.assertEqual(st, 200)
        jid = h["content-location"].rsplit("/", 1)[1]
        self.assertEqual(self.d.stop(), 0)
        time.sleep(3)
        self.d.start()
        st, h, b = self.d.request("GET", "/v1/exports/%s/file" % jid)
        self.assertProblem(st, h, b, 410)


class AuthCorsTest(Base):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.tokens = os.path.join(self.tmp, "tokens")
        with open(self.tokens, "w") as f:
            f.write("# comment\n\nsecret-one\n  secret-two  \n")
        self.d = Daemon(self.tmp, {"tokens_file": self.tokens,
                                   "cors_origins": "https://app.example, https://b.example",
                                   "trusted_proxies": "127.0.0.0/8"})
        self.d.start()

    def test_tokens(self):
        st, h, b = self.d.request("GET", "/v1/exports")
        p = self.assertProblem(st, h, b, 401)
        self.assertTrue(h["www-authenticate"].startswith("Bearer"))
        st, h, b = self.d.request("GET", "/v1/exports", headers={"Authorization": "Bearer nope"})
        self.assertProblem(st, h, b, 401)
        self.assertIn("invalid_token", h["www-authenticate"])
        st, h, b = self.d.request("GET", "/v1/exports",
                                  headers={"Authorization": "Bearer secret-two"})
        self.assertEqual(st, 200)
        st, h, b = self.d.request("GET", "/metrics")
        self.assertEqual(st, 401)
        for open_path in ("/healthz", "/readyz"):
            st, h, b = self.d.request("GET", open_path)
            self.assertEqual(st, 200, open_path)
        # SIGHUP reloads the file
        with open(self.tokens, "w") as f:
            f.write("fresh\n")
        self.d.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            st, _, _ = self.d.request("GET", "/v1/exports", headers={"Authorization": "Bearer fresh"})
            if st == 200:
                break
            time.sleep(0.05)
        self.assertEqual(st, 200)
        st, _, _ = self.d.request("GET", "/v1/exports",
                                  headers={"Authorization": "Bearer secret-one"})
        self.assertEqual(st, 401)

    def test_cors(self):
        pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type, authorization"}
        st, h, b = self.d.request("OPTIONS", "/v1/exports", headers=pre)
        self.assertEqual(st, 204)  # preflight needs no token
        self.assertEqual(h["access-control-allow-origin"], "https://app.example")
        self.assertIn("POST", h["access-control-allow-methods"])
        self.assertIn("Authorization", h["access-control-allow-headers"])
        # a browser sends gzip bodies only when the preflight allows it
        self.assertIn("Content-Encoding", h["access-control-allow-headers"])
        self.assertEqual(h["access-control-max-age"], "600")
        pre["Origin"] = "https://evil.example"
        st, h, b = self.d.request("OPTIONS", "/v1/exports", headers=pre)
        self.assertProblem(st, h, b, 403)
        self.assertNotIn("access-control-allow-origin", h)
        auth = {"Authorization": "Bearer secret-one"}
        st, h, b = self.d.request("GET", "/v1/version",
                                  headers=dict(auth, Origin="https://b.example"))
        self.assertEqual(h["access-control-allow-origin"], "https://b.example")
        for e in ("Content-Disposition", "ETag", "Location", "X-Request-ID", "Content-Range"):
            self.assertIn(e, h["access-control-expose-headers"])
        st, h, b = self.d.request("GET", "/v1/version",
                                  headers=dict(auth, Origin="https://evil.example"))
        self.assertEqual(st, 200)
        self.assertNotIn("access-control-allow-origin", h)

    def test_links_from_trusted_proxy(self):
        hdrs = {"Authorization": "Bearer secret-one", "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "data.example.org", "X-Forwarded-Prefix": "/adx/"}
        st, h, j = self.d.json("POST", "/v1/exports", small_request(), headers=hdrs)
        self.assertEqual(st, 202)
        self.assertEqual(h["location"], "https://data.example.org/adx/v1/exports/" + j["id"])
        self.assertEqual(j["links"]["file"],
                         "https://data.example.org/adx/v1/exports/%s/file" % j["id"])


class UntrustedProxyTest(Base):
    config = {"trusted_proxies": "10.0.0.0/8"}

    def test_forwarded_headers_ignored(self):
        st, h, j = self.d.json("POST", "/v1/exports", small_request(),
                               headers={"X-Forwarded-Host": "evil.example",
                                        "X-Forwarded-Proto": "https"})
        self.assertEqual(st, 202)
        self.assertEqual(h["location"], "/v1/exports/" + j["id"])


class PlainStartTest(unittest.TestCase):
    """No arguments but `serve`: settings from ANNDATA_EXPORTD_* and the
    spool under $XDG_STATE_HOME."""

    @staticmethod
    def _notified(sock, want):
        # STATUS= datagrams come and go in between; return the one wanted
        for _ in range(20):
            msg = sock.recv(1024).decode()
            if want in msg.split("\n"):
                return msg.split("\n")
        return []

    def test_env_only(self):
        import subprocess
        from srvharness import BIN, free_port
        import socket
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            # systemd's readiness protocol, as a Type=notify unit would see it
            nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            nsock.bind(os.path.join(tmp, "notify"))
            nsock.settimeout(10)
            self.addCleanup(nsock.close)
            env = dict(os.environ, XDG_STATE_HOME=tmp,
                       ANNDATA_EXPORTD_LISTEN="127.0.0.1:%d" % port,
                       ANNDATA_EXPORTD_LOG_FORMAT="logfmt",
                       NOTIFY_SOCKET=os.path.join(tmp, "notify"))
            env.pop("STATE_DIRECTORY", None)
            p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
            try:
                d = Daemon(tmp)
                d.port = port
                deadline = time.time() + 15
                st = None
                while time.time() < deadline:
                    try:
                        st = d.request("GET", "/healthz", timeout=1)[0]
                        break
                    except OSError:
                        time.sleep(0.05)
                self.assertEqual(st, 200)
                self.assertIn("READY=1", self._notified(nsock, "READY=1"))
                st, h, b = d.request("POST", "/v1/exports?wait=30", small_request())
                self.assertEqual(st, 200)
                self.assertTrue(os.path.isdir(os.path.join(tmp, "anndata-exportd", "jobs")))
            finally:
                p.send_signal(signal.SIGTERM)
                out = p.communicate(timeout=60)[0].decode()
            self.assertEqual(p.returncode, 0, out)
            self.assertIn("STOPPING=1", self._notified(nsock, "STOPPING=1"))
            self.assertIn("level=info msg=listening", out)
            self.assertRegex(out, r"msg=request request_id=\w+ method=POST path=/v1/exports "
                                  r"status=200 duration_ms=[0-9.]+ bytes_in=\d+ bytes_out=\d+ "
                                  r"job_id=\w{26}")


class ConnectionLimitTest(Base):
    config = {"max_connections": "4", "connection_timeout": "2"}

    def test_connections_beyond_the_limit_are_not_served(self):
        import socket
        idle = [socket.create_connection(("127.0.0.1", self.d.port)) for _ in range(4)]
        time.sleep(0.2)
        served_at_limit = True
        try:
            st, _, _ = self.d.request("GET", "/healthz", timeout=1)
        except OSError:  # refused, reset or timed out: not served
            served_at_limit = False
        for s in idle:
            s.close()
        self.assertFalse(served_at_limit)
        deadline = time.time() + 10
        st = None
        while time.time() < deadline:
            try:
                st = self.d.request("GET", "/healthz", timeout=1)[0]
                break
            except OSError:
                time.sleep(0.1)
        self.assertEqual(st, 200)


class LogReopenTest(Base):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.logf = os.path.join(self.tmp, "adx.log")
        self.d = Daemon(self.tmp, {"log_file": self.logf, "log_format": "logfmt"})
        self.d.start()

    def test_sighup_reopens_the_log_file(self):
        self.d.request("GET", "/v1/version", headers={"X-Request-ID": "before-hup"})
        os.rename(self.logf, self.logf + ".1")
        self.d.signal(signal.SIGHUP)
        deadline = time.time() + 5
        while not os.path.exists(self.logf) and time.time() < deadline:
            time.sleep(0.02)
        self.d.request("GET", "/v1/version", headers={"X-Request-ID": "after-hup"})
        time.sleep(0.1)
        with open(self.logf + ".1") as f:
            old = f.read()
        with open(self.logf) as f:
            new = f.read()
        self.assertIn("request_id=before-hup", old)
        self.assertNotIn("after-hup", old)
        self.assertIn("request_id=after-hup", new)
        self.assertRegex(new, r"level=info msg=\"SIGHUP: reopened log, reloaded tokens\"")


class ShutdownTest(Base):
    # The job takes ~10 s of CPU; a grace long enough for a loaded machine
    # keeps the test about finishing it, not about the machine's speed.
    config = {"workers": "1", "shutdown_grace": "600"}

    def test_sigterm_finishes_running_job_and_503s(self):
        st, h, b = post_file(self.d, big_path())
        self.assertEqual(st, 202)
        jid = json.loads(b)["id"]
        self.d.wait_job(jid, states=("running",))
        keep = self.d.conn()
        keep.request("GET", "/healthz")
        keep.getresponse().read()
        self.d.signal(signal.SIGTERM)
        time.sleep(0.3)
        keep.request("GET", "/v1/exports")
        r = keep.getresponse()
        b = r.read()
        h = {k.lower(): v for k, v in r.getheaders()}
        self.assertProblem(r.status, h, b, 503)
        self.assertIn("retry-after", h)
        keep.close()
        self.assertEqual(self.d.wait_exit(600), 0, self.d.logs()[-3000:])
        # the job finished before exit: its durable record says so
        self.assertEqual(read_record(os.path.join(self.d.spool, "jobs", jid, "job.json"))["state"],
                         "succeeded")
        self.d.start()
        j = self.d.wait_job(jid, timeout=5)
        self.assertEqual(j["state"], "succeeded")
        st, h, data = self.d.request("GET", "/v1/exports/%s/file" % jid, headers={"Range": "bytes=0-7"})
        self.assertEqual(st, 206)
        self.assertEqual(data, b"\x89HDF\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
