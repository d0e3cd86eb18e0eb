"""A real browser calls the API cross-origin through nginx: headless chromium
loads cors_page.html from a second nginx server (another port = another
origin), the page POSTs an export with fetch(), polls the job, downloads the
file and writes what it could see into the DOM. From an origin listed in
cors_origins everything works and Content-Disposition is readable; from
another origin the browser refuses and no job is created."""
import hashlib
import html
import json
import os
import re
import shutil
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deployharness as dh  # noqa: E402


class BrowserCors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        dh.require_tool("chromium")
        cls.tmp = tempfile.mkdtemp(prefix="adx-deploy-cors-")
        cls.api_port = dh.free_port()
        cls.page_port = dh.free_port()
        cls.other_port = dh.free_port()
        cls.daemon = dh.Daemon(cls.tmp, config={
            "trusted_proxies": "127.0.0.1",
            "cors_origins": "http://127.0.0.1:%d" % cls.page_port,
        }).start()
        www = os.path.join(cls.tmp, "www")
        os.makedirs(www)
        shutil.copy(os.path.join(dh.HERE, "cors_page.html"), os.path.join(www, "index.html"))
        pages = "".join(
            "server {\n  listen 127.0.0.1:%d;\n  root %s;\n  location / { }\n}\n" % (p, www)
            for p in (cls.page_port, cls.other_port))
        cls.nginx = dh.Nginx(cls.tmp, dh.nginx_site(cls.daemon.port, cls.api_port), pages)
        try:
            cls.nginx.start(ports_to_wait=[cls.api_port, cls.page_port, cls.other_port])
        except Exception:
            cls.daemon.stop()
            raise
        cls.api = "http://127.0.0.1:%d/anndata" % cls.api_port

    @classmethod
    def tearDownClass(cls):
        cls.nginx.stop()
        rc = cls.daemon.terminate() if cls.daemon.proc.poll() is None else None
        cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc not in (None, 0):
            raise AssertionError("daemon exited %s:\n%s" % (rc, cls.daemon.logs()))

    def load_page(self, port):
        url = "http://127.0.0.1:%d/index.html?%s" % (
            port, urllib.parse.urlencode({"api": self.api}))
        dom = dh.chromium_dump_dom(url, self.tmp)
        m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
        self.assertIsNotNone(m, dom[-2000:])
        text = html.unescape(m.group(1))
        self.assertNotEqual(text, "pending", "the page script did not finish")
        return json.loads(text)

    def job_ids(self):
        st, _, body = self.daemon.request("GET", "/v1/exports?limit=100")
        self.assertEqual(st, 200)
        return {j["id"] for j in json.loads(body)["items"]}

    def test_allowed_origin_exports_and_downloads(self):
        out = self.load_page(self.page_port)
        self.assertTrue(out.get("done"), out)
        self.assertNotIn("error", out)
        self.assertEqual(out["origin"], "http://127.0.0.1:%d" % self.page_port)
        self.assertEqual(out["post_status"], 202)
        # Exposed headers: a script can read them only because the daemon
        # lists them in Access-Control-Expose-Headers.
        self.assertEqual(dh.resolve(self.api + "/", out["post_location"]),
                         "%s/v1/exports/%s" % (self.api, out["job_id"]))
        self.assertEqual(out["post_request_id"], "browser-test-1")
        self.assertEqual(out["state"], "succeeded")
        self.assertEqual(out["file_status"], 200)
        self.assertEqual(out["content_type"], "application/x-hdf5")
        self.assertIsNotNone(out["content_disposition"])
        self.assertIn('filename="browser-export.h5ad"', out["content_disposition"])
        self.assertTrue(out["content_disposition"].startswith("attachment"))
        self.assertEqual(out["byte_length"], out["size_bytes"])
        self.assertEqual(out["file_sha256"], out["sha256"])
        self.assertEqual(out["magic"], [0x89, ord("H"), ord("D"), ord("F")])
        # The bytes the browser hashed are the bytes the daemon stored.
        st, _, data = self.daemon.request("GET", "/v1/exports/%s/file" % out["job_id"])
        self.assertEqual(st, 200)
        self.assertEqual(hashlib.sha256(data).hexdigest(), out["file_sha256"])

    def preflights(self):
        with open(os.path.join(self.nginx.dir, "access.log")) as f:
            return f.read().count('"OPTIONS /anndata/v1/exports HTTP/1.1"')

    def test_other_origin_is_refused(self):
        before = self.job_ids()
        preflights = self.preflights()
        out = self.load_page(self.other_port)
        self.assertTrue(out.get("done"), out)
        self.assertEqual(out["origin"], "http://127.0.0.1:%d" % self.other_port)
        # fetch() rejects with a TypeError when CORS fails; the script never
        # saw a status.
        self.assertIn("error", out, out)
        self.assertTrue(out["error"].startswith("TypeError"), out["error"])
        self.assertNotIn("post_status", out)
        # The preflight was refused, so the POST was never sent.
        self.assertEqual(self.job_ids(), before)
        self.assertEqual(self.preflights(), preflights + 1)
        # What the browser saw: the preflight answer carries no allowance
        # for this origin.
        st, h, _ = dh.http_request(self.api_port, "OPTIONS", "/anndata/v1/exports", headers={
            "Origin": out["origin"], "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertNotEqual(h.get("access-control-allow-origin"), out["origin"])
        self.assertNotEqual(h.get("access-control-allow-origin"), "*")


if __name__ == "__main__":
    unittest.main(verbosity=2)
