"""multipart/form-data and Content-Encoding: gzip bodies to the real daemon:
curl -F and a multipart body built by Python (http.client) with .npy and raw
parts, gzip JSON / multipart / h5ad bodies, a gzip bomb (413), and each bad
body a 400/413 that names the part, leaving no job and no file in the spool;
results read back with anndata / numpy. A multipart job survives a restart
(the body is the spool file)."""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import uuid
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "server"))
from srvharness import Daemon, read_h5ad  # noqa: E402

warnings.simplefilter("ignore")


def npy_bytes(a, pickles=False):
    b = io.BytesIO()
    np.save(b, a, allow_pickle=pickles)
    return b.getvalue()


def multipart(fields, boundary=None):
    """fields: [(name, bytes, content_type or None)] → (body, Content-Type)."""
    boundary = boundary or "adx-" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, data, ctype in fields:
        out.write(b"--%s\r\n" % boundary.encode())
        out.write(b'Content-Disposition: form-data; name="%s"; filename="%s"\r\n' %
                  (name.encode(), name.encode()))
        if ctype:
            out.write(b"Content-Type: %s\r\n" % ctype.encode())
        out.write(b"\r\n")
        out.write(data)
        out.write(b"\r\n")
    out.write(b"--%s--\r\n" % boundary.encode())
    return out.getvalue(), "multipart/form-data; boundary=%s" % boundary


class DaemonParts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="adx-parts-d-")
        cls.d = Daemon(cls.tmp, config={"max_body_bytes": str(8 << 20)}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, True)

    def setUp(self):
        self.rng = np.random.default_rng(5)

    def post(self, body, ctype, headers=None, query="?wait=60"):
        h = {"Content-Type": ctype}
        h.update(headers or {})
        return self.d.request("POST", "/v1/exports" + query, body, h, timeout=120)

    def spool_uploads(self):
        tmpdir = os.path.join(self.d.spool, "tmp")
        return sorted(os.listdir(tmpdir)) if os.path.isdir(tmpdir) else []

    def assert_problem(self, st, data, status, needle):
        self.assertEqual(st, status, data[:500])
        p = json.loads(data)
        self.assertIn(needle, p["detail"])
        return p

    def test_python_multipart_npy_raw_and_strings(self):
        X = self.rng.normal(size=(5, 3))
        lay = X.astype(np.float32) * 2
        names = np.array(["a", "béta", "c"])
        req = {"adata": {
            "X": {"encoding-type": "array", "part": "X"},
            "layers": {"l": {"encoding-type": "array", "dtype": "float32", "shape": [5, 3],
                             "part": "l"},
                       "fx": {"encoding-type": "array", "part": "fx"}},
            "var": {"index": ["v0", "v1", "v2"],
                    "columns": {"name": {"encoding-type": "array", "part": "names"}}}},
            "filename": "parts.h5ad"}
        body, ct = multipart([("request", json.dumps(req).encode(), "application/json"),
                              ("X", npy_bytes(X), "application/octet-stream"),
                              ("l", lay.tobytes(), None),
                              ("fx", npy_bytes(np.asfortranarray(X).astype(">f8")), None),
                              ("names", npy_bytes(names), None)])
        st, h, data = self.post(body, ct)
        self.assertEqual(st, 200, data[:500])
        a = read_h5ad(data, self.tmp)
        np.testing.assert_array_equal(a.X, X)
        np.testing.assert_array_equal(a.layers["l"], lay)
        np.testing.assert_array_equal(a.layers["fx"], X)
        self.assertEqual(list(a.var["name"]), list(names))

    def test_curl_form(self):
        X = self.rng.normal(size=(4, 2))
        d = tempfile.mkdtemp(dir=self.tmp)
        with open(os.path.join(d, "X.npy"), "wb") as f:
            f.write(npy_bytes(X))
        with open(os.path.join(d, "req.json"), "w") as f:
            json.dump({"adata": {"X": {"encoding-type": "array", "part": "X"}},
                       "format": "npz"}, f)
        out = os.path.join(d, "out.npz")
        p = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}",
                            "-F", "request=@%s;type=application/json" % os.path.join(d, "req.json"),
                            "-F", "X=@%s" % os.path.join(d, "X.npy"),
                            "http://127.0.0.1:%d/v1/exports?wait=60" % self.d.port],
                           capture_output=True, timeout=120)
        self.assertEqual(p.stdout, b"200", p.stderr)
        with np.load(out, allow_pickle=False) as z:
            np.testing.assert_array_equal(z["X"], X)

    def test_gzip_bodies(self):
        # JSON
        req = {"adata": {"X": [[1, 2], [3, 4]]}}
        st, _, data = self.post(gzip.compress(json.dumps(req).encode()), "application/json",
                                {"Content-Encoding": "gzip"})
        self.assertEqual(st, 200, data[:300])
        np.testing.assert_array_equal(read_h5ad(data, self.tmp).X, [[1, 2], [3, 4]])
        # multipart
        X = self.rng.normal(size=(3, 3))
        body, ct = multipart([("request", json.dumps(
            {"adata": {"X": {"encoding-type": "array", "part": "X"}}}).encode(), None),
            ("X", npy_bytes(X), None)])
        st, _, data = self.post(gzip.compress(body), ct, {"Content-Encoding": "gzip"})
        self.assertEqual(st, 200, data[:300])
        np.testing.assert_array_equal(read_h5ad(data, self.tmp).X, X)
        # h5ad
        import anndata
        src = os.path.join(self.tmp, "src.h5ad")
        anndata.AnnData(X=X, dtype=X.dtype).write_h5ad(src)
        with open(src, "rb") as f:
            h5 = gzip.compress(f.read())
        st, _, data = self.post(h5, "application/x-hdf5", {"Content-Encoding": "gzip"},
                                query="?wait=60&format=npz")
        self.assertEqual(st, 200, data[:300])
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            np.testing.assert_array_equal(z["X"], X)
        # an encoding the daemon does not take
        st, _, data = self.post(json.dumps(req).encode(), "application/json",
                                {"Content-Encoding": "br"})
        self.assertEqual(st, 415, data[:300])

    def test_gzip_bomb_is_413(self):
        # 64 MiB of spaces after a valid document; the limit is 8 MiB.
        raw = b'{"adata": {"X": [[1]]}}' + b" " * (64 << 20)
        before = self.spool_uploads()
        st, _, data = self.post(gzip.compress(raw, 9), "application/json",
                                {"Content-Encoding": "gzip"})
        self.assert_problem(st, data, 413, "max_body_bytes")
        body, ct = multipart([("request", raw, None)])
        st, _, data = self.post(gzip.compress(body, 9), ct, {"Content-Encoding": "gzip"})
        self.assert_problem(st, data, 413, "max_body_bytes")
        self.assertEqual(self.spool_uploads(), before)

    def test_bad_multipart_bodies(self):
        X = npy_bytes(self.rng.normal(size=(3, 2)))
        ref = json.dumps({"adata": {"X": {"encoding-type": "array", "part": "X"}}}).encode()
        cases = [
            (multipart([("request", ref, None)]), 'part "X": referenced here but'),
            (multipart([("request", ref, None), ("X", X, None), ("Y", X, None)]),
             'part "Y" is not referenced'),
            (multipart([("request", ref, None), ("X", X[:-8], None)]), 'part "X"'),
            (multipart([("request", ref, None), ("X", npy_bytes(
                np.array([{"a": 1}, None], dtype=object), pickles=True), None)]), "object dtype"),
            (multipart([("X", X, None)]), 'no part named "request"'),
            (multipart([("request", ref, None), ("X", X, None), ("X", X, None)]),
             'part "X": a second part of the same name'),
        ]
        for (body, ct), needle in cases:
            st, _, data = self.post(body, ct)
            self.assert_problem(st, data, 400, needle)
        # truncated: the closing boundary never comes
        body, ct = multipart([("request", ref, None), ("X", X, None)])
        st, _, data = self.post(body[:-40], ct)
        self.assert_problem(st, data, 400, "no closing boundary")
        st, _, data = self.post(b"no boundary here", ct)
        self.assert_problem(st, data, 400, "never appears")
        st, _, data = self.post(body, "multipart/form-data")
        self.assert_problem(st, data, 400, "boundary")
        # huge part headers
        b = ct.split("boundary=")[1]
        huge = (b"--%s\r\nContent-Disposition: form-data; name=\"request\"\r\nX-Pad: %s\r\n\r\n"
                b"{}\r\n--%s--\r\n" % (b.encode(), b"a" * 20000, b.encode()))
        st, _, data = self.post(huge, ct)
        self.assert_problem(st, data, 413, 'part "request": its headers are longer')
        # none of these became a job
        st, _, lst = self.d.json("GET", "/v1/exports?state=failed")
        self.assertEqual(st, 200)

    def test_configured_multipart_limits_are_413s_naming_them(self):
        tmp = tempfile.mkdtemp(dir=self.tmp)
        d2 = Daemon(tmp, config={"max_parts": "2", "max_part_header_bytes": "512"}).start()
        try:
            X = npy_bytes(self.rng.normal(size=(3, 2)))
            ref = json.dumps({"adata": {"X": {"encoding-type": "array", "part": "X"}}}).encode()
            body, ct = multipart([("request", ref, None), ("X", X, None)])
            st, _, data = d2.request("POST", "/v1/exports?wait=60", body, {"Content-Type": ct},
                                     timeout=120)
            self.assertEqual(st, 200, data[:300])
            body, ct = multipart([("request", ref, None), ("X", X, None), ("Y", X, None)])
            st, _, data = d2.request("POST", "/v1/exports", body, {"Content-Type": ct})
            self.assert_problem(st, data, 413, "limit max_parts")
            b = "adx-small"
            pad = (b"--%s\r\nContent-Disposition: form-data; name=\"request\"\r\nX-Pad: %s"
                   b"\r\n\r\n{}\r\n--%s--\r\n" % (b.encode(), b"a" * 600, b.encode()))
            st, _, data = d2.request("POST", "/v1/exports", pad,
                                     {"Content-Type": "multipart/form-data; boundary=" + b})
            self.assert_problem(st, data, 413, "max_part_header_bytes")
        finally:
            d2.stop()

    def test_multipart_job_survives_restart(self):
        X = self.rng.normal(size=(3, 2))
        body, ct = multipart([("request", json.dumps(
            {"adata": {"X": {"encoding-type": "array", "part": "X"}}}).encode(), None),
            ("X", npy_bytes(X), None)])
        tmp = tempfile.mkdtemp(dir=self.tmp)
        d2 = Daemon(tmp, config={"workers": "1"})
        d2.start()
        try:
            st, _, data = d2.request("POST", "/v1/exports", gzip.compress(body),
                                     {"Content-Type": ct, "Content-Encoding": "gzip"})
            self.assertEqual(st, 202, data[:300])
            job = json.loads(data)
            d2.stop(graceful=False)
            d2.start()
            j = d2.wait_job(job["id"])
            self.assertEqual(j["state"], "succeeded", j)
            st, _, data = d2.request("GET", "/v1/exports/%s/file" % job["id"])
            self.assertEqual(st, 200)
            np.testing.assert_array_equal(read_h5ad(data, tmp).X, X)
        finally:
            d2.stop()


if __name__ == "__main__":
    unittest.main()
