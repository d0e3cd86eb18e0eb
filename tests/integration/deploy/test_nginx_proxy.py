"""The daemon behind a real nginx running the shipped site example
(config/nginx-anndata-exportd.conf) under the /anndata/ prefix: a large
upload streams through, the async flow's links carry the prefix, downloads
honour Range through the proxy, and ?wait= returns the file."""
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402


class NginxProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="adx-deploy-nginx-")
        cls.daemon = dh.Daemon(cls.tmp, config={
            "trusted_proxies": "127.0.0.1",
            "workers": "2",
            "wait_max": "120",
        }).start()
        cls.port = dh.free_port()
        cls.nginx = dh.Nginx(cls.tmp, dh.nginx_site(cls.daemon.port, cls.port))
        try:
            cls.nginx.start(ports_to_wait=[cls.port])
        except Exception:
            cls.daemon.stop()
            raise
        cls.base = "http://127.0.0.1:%d/anndata/" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        rc = None
        if cls.daemon.proc.poll() is None:
            rc = cls.daemon.terminate()
        cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc not in (None, 0):
            raise AssertionError("daemon exited %s:\n%s" % (rc, cls.daemon.logs()))

    def proxy(self, method, path, body=None, headers=None, timeout=300):
        """A request to nginx; `path` is below the /anndata/ prefix or a full URL."""
        if path.startswith("http://"):
            u = urllib.parse.urlsplit(path)
            self.assertEqual(u.port, self.port, path)
            path = u.path + ("?" + u.query if u.query else "")
        elif not path.startswith("/anndata/"):
            path = "/anndata/" + path.lstrip("/")
        return dh.http_request(self.port, method, path, body, headers, timeout)

    def post_export(self, body, query=""):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.proxy("POST", "v1/exports" + query, data,
                          {"Content-Type": "application/json"})

    def assert_link(self, link, expected_path):
        """A link the daemon built: wherever it is absolute or a path, it must
        resolve to the proxy's origin under the prefix."""
        self.assertEqual(dh.resolve(self.base, link),
                         "http://127.0.0.1:%d%s" % (self.port, expected_path), link)

    def test_healthz_through_prefix(self):
        st, _, body = self.proxy("GET", "healthz")
        self.assertEqual(st, 200, body)
        st, h, _ = dh.http_request(self.port, "GET", "/anndata")
        self.assertEqual(st, 308)
        self.assertTrue(h["location"].endswith("/anndata/"), h["location"])

    def test_async_flow_links_under_prefix(self):
        with open(os.path.join(dh.SHARED, "fixtures", "polis_real.json"), "rb") as f:
            req = json.load(f)
        req["filename"] = "conversation.h5ad"
        st, h, body = self.post_export(req)
        self.assertEqual(st, 202, body[:500])
        job = json.loads(body)
        jid = job["id"]
        self.assert_link(h["location"], "/anndata/v1/exports/%s" % jid)
        self.assert_link(job["links"]["self"], "/anndata/v1/exports/%s" % jid)
        self.assert_link(job["links"]["file"], "/anndata/v1/exports/%s/file" % jid)

        # Poll the Location the daemon gave, through the proxy.
        loc = dh.resolve(self.base, h["location"])
        done = dh.wait_job(self.port, urllib.parse.urlsplit(loc).path)
        self.assertEqual(done["state"], "succeeded", done)
        self.assert_link(done["links"]["file"], "/anndata/v1/exports/%s/file" % jid)

        # Listing goes through the prefix too, and shows this job.
        st, _, body = self.proxy("GET", "v1/exports")
        self.assertEqual(st, 200)
        listed = json.loads(body)
        ids = [j["id"] for j in listed["items"]]
        self.assertIn(jid, ids)

        st, fh, data = self.proxy("GET", dh.resolve(self.base, done["links"]["file"]))
        self.assertEqual(st, 200)
        self.assertEqual(len(data), done["size_bytes"])
        self.assertEqual(int(fh["content-length"]), len(data))
        self.assertEqual(hashlib.sha256(data).hexdigest(), done["sha256"])
        self.assertEqual(fh["content-type"], "application/x-hdf5")
        self.assertIn('filename="conversation.h5ad"', fh["content-disposition"])
        self.assertEqual(data[:8], b"\x89HDF\r\n\x1a\n")

        # Range through the proxy: nginx must pass the daemon's 206 as is.
        size = len(data)
        st, rh, part = self.proxy("GET", "v1/exports/%s/file" % jid,
                                  headers={"Range": "bytes=100-1099"})
        self.assertEqual(st, 206)
        self.assertEqual(part, data[100:1100])
        self.assertEqual(rh["content-range"], "bytes 100-1099/%d" % size)
        self.assertEqual(int(rh["content-length"]), 1000)
        st, rh, part = self.proxy("GET", "v1/exports/%s/file" % jid,
                                  headers={"Range": "bytes=-777"})
        self.assertEqual(st, 206)
        self.assertEqual(part, data[-777:])
        st, rh, part = self.proxy("GET", "v1/exports/%s/file" % jid,
                                  headers={"Range": "bytes=%d-" % (size - 10)})
        self.assertEqual(st, 206)
        self.assertEqual(part, data[-10:])

        # The ETag round-trips through the proxy.
        etag = fh["etag"]
        st, _, body = self.proxy("GET", "v1/exports/%s/file" % jid,
                                 headers={"If-None-Match": etag})
        self.assertEqual(st, 304)
        self.assertEqual(body, b"")

        st, _, _ = self.proxy("DELETE", "v1/exports/%s" % jid)
        self.assertEqual(st, 204)
        st, _, _ = self.proxy("GET", "v1/exports/%s" % jid)
        self.assertIn(st, (404, 410))

    def test_large_upload_streams_through(self):
        import h5py
        import numpy as np
        # ~30 MB of JSON numbers: well over nginx's in-memory body buffer, so
        # without proxy_request_buffering off it would be spooled to disk
        # first; either way every number must arrive.
        rows, cols = 2500, 1500
        rng = random.Random(7)
        x = [[round(rng.random() * 1000, 4) for _ in range(cols)] for _ in range(rows)]
        body = json.dumps({"adata": {"X": x}, "format": "h5ad",
                           "compression": None}).encode()
        self.assertGreater(len(body), 25 * 1024 * 1024)
        st, h, resp = self.post_export(body)
        self.assertEqual(st, 202, resp[:500])
        jid = json.loads(resp)["id"]
        done = dh.wait_job(self.port, "/anndata/v1/exports/%s" % jid, timeout=600)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["summary"]["n_obs"], rows)
        self.assertEqual(done["summary"]["n_vars"], cols)
        st, _, data = self.proxy("GET", "v1/exports/%s/file" % jid)
        self.assertEqual(st, 200)
        self.assertEqual(hashlib.sha256(data).hexdigest(), done["sha256"])
        path = os.path.join(self.tmp, "large.h5ad")
        with open(path, "wb") as f:
            f.write(data)
        with h5py.File(path, "r") as f:
            got = f["X"][()]
        self.assertEqual(got.shape, (rows, cols))
        self.assertTrue(np.array_equal(got, np.array(x, dtype=np.float64)))
        # nginx saw the whole body (its access log has the request length).
        with open(os.path.join(self.nginx.dir, "access.log")) as f:
            self.assertIn('"POST /anndata/v1/exports HTTP/1.1" 202', f.read())

    def test_wait_returns_the_file(self):
        req = {"adata": {"X": [[1, 2], [3, 4]], "obs": {"index": ["a", "b"]}},
               "format": "npz", "filename": "small.npz"}
        st, h, data = self.post_export(req, "?wait=60")
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(h["content-type"], "application/zip")
        self.assertIn('filename="small.npz"', h["content-disposition"])
        self.assertEqual(data[:2], b"PK")

    def test_client_cannot_forge_the_prefix(self):
        # nginx replaces, not appends, X-Forwarded-Prefix: a client's own
        # header never reaches the daemon.
        req = {"adata": {"X": [[1]]}}
        st, h, body = self.proxy("POST", "v1/exports", json.dumps(req).encode(),
                                 {"Content-Type": "application/json",
                                  "X-Forwarded-Prefix": "/evil"})
        self.assertEqual(st, 202, body)
        self.assertNotIn("/evil", h["location"])
        self.assertIn("/anndata/v1/exports/", h["location"])


class UntrustedProxy(unittest.TestCase):
    """Why the docs insist on trusted_proxies: without it the daemon ignores
    nginx's X-Forwarded-* headers and its links lose the prefix."""

    def test_links_without_trust_miss_the_prefix(self):
        tmp = tempfile.mkdtemp(prefix="adx-deploy-untrusted-")
        daemon = dh.Daemon(tmp).start()
        nginx = None
        try:
            port = dh.free_port()
            nginx = dh.Nginx(tmp, dh.nginx_site(daemon.port, port)).start(ports_to_wait=[port])
            st, h, body = dh.http_request(port, "POST", "/anndata/v1/exports",
                                          b'{"adata": {"X": [[1]]}}',
                                          {"Content-Type": "application/json"})
            self.assertEqual(st, 202, body)
            jid = json.loads(body)["id"]
            base = "http://127.0.0.1:%d/anndata/" % port
            self.assertEqual(dh.resolve(base, h["location"]),
                             "http://127.0.0.1:%d/v1/exports/%s" % (port, jid))
        finally:
            if nginx:
                nginx.stop()
            daemon.stop()
            shutil.rmtree(tmp, ignore_errors=True)


class NginxDocs(unittest.TestCase):
    """README.md's nginx section: its install lines run into a temp root
    and the installed, unmodified site file passes `nginx -t` inside a
    Debian-style nginx.conf; its snippet says what the shipped file does."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="adx-deploy-nginxdoc-")
        with open(os.path.join(dh.SRC, "README.md")) as f:
            m = re.search(r"(?ms)^### nginx\n(.*?)(?=^##|\Z)", f.read())
        self.assertIsNotNone(m, "README.md has no '### nginx' section")
        self.section = m.group(1)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_install_steps_give_a_valid_config(self):
        nginx = dh.require_tool("nginx")
        root = os.path.join(self.tmp, "root")
        for d in ("etc/nginx/sites-available", "etc/nginx/sites-enabled"):
            os.makedirs(os.path.join(root, d))
        ran = []
        for line in self.section.splitlines():
            s = line.strip()
            if not s.startswith("sudo "):
                continue
            for cmd in s[5:].split("&&"):
                argv = shlex.split(cmd.replace("sudo ", ""))
                ran.append(argv[0])
                if argv[0] == "install":
                    *opts, src, dst = argv[1:]
                    r = subprocess.run(["install"] + opts + [os.path.join(dh.SRC, src),
                                                             root + dst])
                    self.assertEqual(r.returncode, 0)
                elif argv[0] == "ln":
                    # Relative target, as in the docs: resolve it in the root.
                    r = subprocess.run(argv[:-1] + [root + argv[-1]])
                    self.assertEqual(r.returncode, 0)
                elif argv[0] == "nginx":
                    self.assertEqual(argv[1:], ["-t"])
                    main = os.path.join(root, "etc/nginx/nginx.conf")
                    d = os.path.join(self.tmp, "run")
                    os.makedirs(d)
                    with open(main, "w") as f:
                        f.write("pid %s/nginx.pid;\nerror_log %s/error.log;\n"
                                "events {}\nhttp {\n  access_log off;\n"
                                "  client_body_temp_path %s;\n  proxy_temp_path %s;\n"
                                "  include %s/etc/nginx/sites-enabled/*;\n}\n"
                                % (d, d, d, d, root))
                    r = subprocess.run([nginx, "-t", "-p", d, "-c", main],
                                       capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertIn("syntax is ok", r.stderr)
                elif argv[0] == "systemctl":
                    self.assertEqual(argv[1:], ["reload", "nginx"])
        self.assertEqual(ran, ["install", "ln", "nginx", "systemctl"])
        enabled = os.path.join(root, "etc/nginx/sites-enabled/anndata-exportd")
        with open(enabled) as f, \
                open(os.path.join(dh.SRC, "config", "nginx-anndata-exportd.conf")) as g:
            self.assertEqual(f.read(), g.read())

    def test_snippet_matches_the_shipped_file(self):
        m = re.search(r"```nginx\n(.*?)```", self.section, re.S)
        self.assertIsNotNone(m)
        with open(os.path.join(dh.SRC, "config", "nginx-anndata-exportd.conf")) as f:
            shipped = {re.sub(r"\s+", " ", ln.split("#")[0].strip()) for ln in f}
        for ln in m.group(1).splitlines():
            d = re.sub(r"\s+", " ", ln.split("#")[0].strip())
            if not d.endswith(";") or d.startswith("proxy_pass "):
                continue  # the file proxies to an upstream block instead
            self.assertIn(d, shipped)


if __name__ == "__main__":
    unittest.main(verbosity=2)
