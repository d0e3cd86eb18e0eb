"""Stored datasets over HTTP (api.md "Stored datasets"): list, summary, PUT
of h5ad and JSON AnnData, DELETE, name rules, pins held by queued jobs (also
across a restart), exports by reference and with an h5ad body, the default
data directory seeded with the bundled Polis conversation, and the curl
commands of the "Stored datasets" section of README.md run
as written."""
import contextlib
import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from srvharness import Daemon  # noqa: E402

import anndata  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PROBLEM = "application/problem+json"
SRC = os.environ.get("ADX_SRC", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SHARED = os.environ.get("ADX_SHARED")
EXAMPLE = os.path.join(SRC, "data", "polis-example")
PY = "/usr/bin/python3"


def polis_matrix():
    """X of the bundled conversation as pandas builds it: votes sorted by
    timestamp (stable), the last vote per pair, pivoted voters × comments."""
    v = pd.read_csv(os.path.join(EXAMPLE, "votes.csv"))
    v = v.sort_values("timestamp", kind="stable")
    v = v.drop_duplicates(["voter-id", "comment-id"], keep="last")
    m = v.pivot(index="voter-id", columns="comment-id", values="vote").sort_index()
    m = m.reindex(sorted(m.columns), axis=1)
    return m


def n_votes():
    v = pd.read_csv(os.path.join(EXAMPLE, "votes.csv"))
    return len(v.drop_duplicates(["voter-id", "comment-id"]))


def comments():
    c = pd.read_csv(os.path.join(EXAMPLE, "comments.csv"))
    return dict(zip(c["comment-id"], c["comment-body"]))


def small_adata(seed=0):
    rng = np.random.default_rng(seed)
    a = anndata.AnnData(
        X=rng.random((5, 3)),
        obs=pd.DataFrame({"grp": ["a", "b", "a", "b", "a"], "n": np.arange(5)},
                         index=["c%d" % i for i in range(5)]),
        var=pd.DataFrame({"gene": ["g0", "g1", "g2"]}, index=["v0", "v1", "v2"]))
    a.obsm["X_umap"] = rng.random((5, 2))
    a.obsm["other"] = rng.random((5, 4))
    a.uns["note"] = "hello"
    return a


def h5ad_bytes(a, tmp, name="in.h5ad"):
    p = os.path.join(tmp, name)
    a.write_h5ad(p)
    with open(p, "rb") as f:
        return f.read()


def npz(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


class Base(unittest.TestCase):
    config = {}

    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        self.d = Daemon(self.tmp, dict(self.config))
        self.d.start()

    def tearDown(self):
        rc = self.d.stop()
        failed = any(e for t, e in (self._outcome.result.errors + self._outcome.result.failures)
                     if t is self)
        if failed or rc not in (0, None):
            sys.stderr.write(self.d.logs()[-6000:])
        self.tmpd.cleanup()
        self.assertIn(rc, (0, None))

    def problem(self, st, h, body, want):
        self.assertEqual(st, want, body[:500])
        self.assertTrue(h["content-type"].startswith(PROBLEM), h)
        p = json.loads(body)
        self.assertEqual(p["status"], want)
        self.assertIn("x-request-id", h)
        # never a machine path in an error body
        self.assertNotIn(self.tmp, body.decode())
        return p

    def put(self, name, data, ctype="application/x-hdf5"):
        return self.d.request("PUT", "/v1/datasets/" + name, data, {"Content-Type": ctype})

    def data_dir(self):
        return os.path.join(self.d.spool, "datasets")

    def spool_leftovers(self):
        return os.listdir(os.path.join(self.d.spool, "tmp"))

    @contextlib.contextmanager
    def other_daemon(self, name, config):
        """A second daemon with its own spool and `config`, stopped after."""
        os.makedirs(os.path.join(self.tmp, name))
        d = Daemon(os.path.join(self.tmp, name), config).start()
        try:
            yield d
        finally:
            d.stop()


class HostileUploads(Base):
    """Files that make libhdf5 itself loop or allocate: adx-h5check reads them
    under RLIMIT_CPU / RLIMIT_AS derived from the configuration, so each is a
    400 within seconds (not a worker held for the 60 s timeout, not GBs)."""
    config = {"max_total_bytes": str(64 << 20)}

    def assert_quick_400(self, name, data, words):
        t0 = time.monotonic()
        st, h, body = self.put(name, data)
        took = time.monotonic() - t0
        p = self.problem(st, h, body, 400)
        self.assertTrue(any(w in p["detail"] for w in words), p["detail"])
        self.assertLess(took, 40, p["detail"])  # ~3 CPU seconds; the machine may be busy
        self.assertEqual(sorted(os.listdir(self.data_dir())), ["polis-example"])
        self.assertEqual(self.spool_leftovers(), [])

    def test_libhdf5_spin_is_cut_by_the_cpu_limit(self):
        # A fuzzer finding (tests/unit/h5r/data): libhdf5 1.10 spins in
        # H5HG_read reading its root attribute.
        with open(os.path.join(SRC, "tests", "unit", "h5r", "data", "hg_spin.h5ad"), "rb") as f:
            self.assert_quick_400("spin", f.read(), ["CPU time"])

    @unittest.skipIf(b"libasan" in subprocess.run(["ldd", os.environ.get("ADX_BIN", "/bin/true")],
                                                   capture_output=True).stdout,
                     "ASan builds run adx-h5check without RLIMIT_AS (shadow memory): libhdf5 "
                     "would really allocate and copy the 2 GiB")
    def test_libhdf5_allocation_is_cut_by_the_memory_limit(self):
        # A chunked string dataset whose first element claims 2 GiB: libhdf5
        # allocates (and copies) that before any check of the reader's.
        p = os.path.join(self.tmp, "vl.h5ad")
        a = anndata.AnnData(X=np.ones((2, 2), dtype="f4"))
        a.write_h5ad(p)
        with h5py.File(p, "r+") as f:
            d = f["uns"].create_dataset("s", data=np.array(["hello", "world"], dtype=object),
                                        dtype=h5py.string_dtype(), chunks=(2,))
            addr = d.id.get_chunk_info(0).byte_offset
        with open(p, "r+b") as f:
            f.seek(addr)
            self.assertEqual(struct.unpack("<I", f.read(4))[0], 5)
            f.seek(addr)
            f.write(struct.pack("<I", 0x7FFFFFF0))
        with open(p, "rb") as f:
            data = f.read()
        self.assert_quick_400("alloc", data, ["cannot read", "memory"])


class DatasetRoutes(Base):
    def test_list_and_summary_of_the_bundled_example(self):
        st, h, doc = self.d.json("GET", "/v1/datasets")
        self.assertEqual(st, 200, doc)
        names = [d["name"] for d in doc["datasets"]]
        self.assertEqual(names, ["polis-example"])
        m = polis_matrix()
        ex = doc["datasets"][0]
        self.assertEqual(ex["kind"], "polis")
        self.assertEqual((ex["n_obs"], ex["n_vars"]), m.shape)
        self.assertEqual(m.shape, (138, 46))
        st, h, s = self.d.json("GET", "/v1/datasets/polis-example")
        self.assertEqual(st, 200, s)
        for k in ("name", "kind", "size_bytes", "modified_at", "n_obs", "n_vars", "X", "obs",
                  "var", "obsm", "varm", "layers", "obsp", "varp", "uns", "raw"):
            self.assertIn(k, s)
        self.assertEqual(s["X"]["shape"], [138, 46])
        self.assertIn("content", s["var"])
        self.assertIn("votes_meta", s["uns"])
        st, h, _ = self.d.request("HEAD", "/v1/datasets/polis-example")
        self.assertEqual(st, 200)
        # the route label of the metrics
        st, _, text = self.d.request("GET", "/metrics")
        self.assertIn('route="/v1/datasets/{name}",status="200"', text.decode())
        self.assertIn('route="/v1/datasets",status="200"', text.decode())

    def test_put_h5ad_created_then_replaced(self):
        a = small_adata()
        st, h, body = self.put("cells", h5ad_bytes(a, self.tmp))
        self.assertEqual(st, 201, body)
        self.assertEqual(h["location"], "/v1/datasets/cells")
        s = json.loads(body)
        self.assertEqual((s["name"], s["kind"], s["n_obs"], s["n_vars"]), ("cells", "h5ad", 5, 3))
        self.assertEqual(sorted(s["obsm"]), ["X_umap", "other"])
        b = small_adata(1)[:4].copy()
        st, h, body = self.put("cells", h5ad_bytes(b, self.tmp, "b.h5ad"))
        self.assertEqual(st, 200, body)
        self.assertNotIn("location", h)
        st, _, s2 = self.d.json("GET", "/v1/datasets/cells")
        self.assertEqual(st, 200)
        self.assertEqual(s2["n_obs"], 4)
        self.assertEqual(s2, json.loads(body))
        st, _, doc = self.d.json("GET", "/v1/datasets")
        self.assertEqual([d["name"] for d in doc["datasets"]], ["cells", "polis-example"])
        # stored as uploaded, nothing else left in the data dir or the spool
        self.assertEqual(sorted(x for x in os.listdir(self.data_dir())),
                         ["cells.h5ad", "polis-example"])
        self.assertEqual(self.spool_leftovers(), [])

    def test_put_json_anndata(self):
        with open(os.path.join(SHARED, "fixtures", "polis_real.json")) as f:
            adata = json.load(f)["adata"]
        st, h, body = self.put("real", json.dumps(adata).encode(), "application/json")
        self.assertEqual(st, 201, body[:500])
        s = json.loads(body)
        ref = anndata.read_h5ad(os.path.join(SHARED, "fixtures", "polis_real.expected.h5ad"))
        self.assertEqual((s["kind"], s["n_obs"], s["n_vars"]), ("h5ad", ref.n_obs, ref.n_vars))
        self.assertEqual(sorted(s["obsm"]), sorted(ref.obsm.keys()))
        # a JSON body that is not an AnnData: 400 with a pointer, nothing stored
        st, h, body = self.put("bad", b'{"X": [[1, 2], [3]]}', "application/json")
        p = self.problem(st, h, body, 400)
        self.assertTrue(p["errors"][0]["pointer"].startswith("/X"), p)
        self.assertNotIn("bad.h5ad", os.listdir(self.data_dir()))
        self.assertEqual(self.spool_leftovers(), [])

    def test_put_gzip_bodies(self):
        """Content-Encoding: gzip on a PUT, as on any body: an h5ad and a JSON
        AnnData are stored decompressed; a gzip bomb is a 413 naming
        max_body_bytes; another coding is a 415; nothing is left behind."""
        import gzip
        a = small_adata()
        st, h, body = self.d.request("PUT", "/v1/datasets/gz", gzip.compress(h5ad_bytes(a, self.tmp)),
                                     {"Content-Type": "application/x-hdf5",
                                      "Content-Encoding": "gzip"})
        self.assertEqual(st, 201, body[:500])
        got = anndata.read_h5ad(os.path.join(self.data_dir(), "gz.h5ad"))
        np.testing.assert_array_equal(np.asarray(got.X), np.asarray(a.X))
        doc = gzip.compress(json.dumps({"X": [[1, 2], [3, 4]]}).encode())
        st, h, body = self.d.request("PUT", "/v1/datasets/gzj", doc,
                                     {"Content-Type": "application/json",
                                      "Content-Encoding": "gzip"})
        self.assertEqual(st, 201, body[:500])
        self.assertEqual(json.loads(body)["n_obs"], 2)
        st, h, body = self.d.request("PUT", "/v1/datasets/br", b"abc",
                                     {"Content-Type": "application/json",
                                      "Content-Encoding": "br"})
        self.problem(st, h, body, 415)
        self.assertEqual(self.spool_leftovers(), [])
        self.assertEqual(sorted(os.listdir(self.data_dir())),
                         ["gz.h5ad", "gzj.h5ad", "polis-example"])

    def test_put_gzip_bomb_is_413(self):
        with self.other_daemon("b", {"max_body_bytes": str(1 << 20)}) as d2:
            bomb = gzip.compress(b"{" + b" " * (8 << 20) + b"}")
            st, h, body = d2.request("PUT", "/v1/datasets/bomb", bomb,
                                     {"Content-Type": "application/json",
                                      "Content-Encoding": "gzip"})
            self.assertEqual(st, 413, body[:300])
            self.assertIn("max_body_bytes", json.loads(body)["detail"])
            self.assertEqual(os.listdir(os.path.join(d2.spool, "tmp")), [])
            self.assertNotIn("bomb.h5ad", os.listdir(os.path.join(d2.spool, "datasets")))

    def test_put_gzip_over_the_spool_quota_is_507(self):
        # the decompressed copy is charged to max_spool_bytes: a body that
        # fits compressed but not decompressed is a 507 to retry, not a 500
        with self.other_daemon("q", {"max_spool_bytes": str(2 << 20)}) as d2:
            doc = gzip.compress(b'{"X": [[1]], "uns": {"pad": "' + b"a" * (3 << 20) + b'"}}')
            st, h, body = d2.request("PUT", "/v1/datasets/big", doc,
                                     {"Content-Type": "application/json",
                                      "Content-Encoding": "gzip"})
            self.assertEqual(st, 507, body[:300])
            self.assertIn("retry-after", h)
            self.assertEqual(json.loads(body)["status"], 507)
            self.assertEqual(os.listdir(os.path.join(d2.spool, "tmp")), [])
            self.assertNotIn("big.h5ad", os.listdir(os.path.join(d2.spool, "datasets")))

    def test_names_unknown_methods_and_types(self):
        for name in ("..", ".hidden", "a%2Fb", "x" * 129, "sp%20ace", "%C3%A9", "%FF", "a/b"):
            for m in ("GET", "PUT", "DELETE"):
                st, h, body = self.d.request(m, "/v1/datasets/" + name, b"{}" if m == "PUT"
                                             else None, {"Content-Type": "application/json"})
                p = self.problem(st, h, body, 400)
                self.assertEqual(p["errors"][0]["pointer"], "/name", (name, p))
                self.assertIn("A-Z a-z 0-9", p["detail"])
        ok = "x" * 128
        st, h, body = self.d.request("GET", "/v1/datasets/" + ok)
        self.problem(st, h, body, 404)
        st, h, body = self.d.request("DELETE", "/v1/datasets/nope")
        p = self.problem(st, h, body, 404)
        self.assertEqual(p["errors"][0]["pointer"], "/name")
        st, h, body = self.put("t", b"abc", "text/plain")
        self.problem(st, h, body, 415)
        self.assertIn("application/x-hdf5", h["accept-put"])
        self.assertIn("application/json", h["accept-put"])
        st, h, body = self.d.request("PUT", "/v1/datasets/t", b"abc")
        self.problem(st, h, body, 415)
        st, h, body = self.d.request("POST", "/v1/datasets/t", b"{}",
                                     {"Content-Type": "application/json"})
        self.problem(st, h, body, 405)
        self.assertEqual(h["allow"], "GET, HEAD, PUT, DELETE, OPTIONS")
        st, h, body = self.d.request("DELETE", "/v1/datasets")
        self.problem(st, h, body, 405)
        self.assertEqual(h["allow"], "GET, HEAD, OPTIONS")
        # a PUT over the operator's Polis folder is refused
        st, h, body = self.put("polis-example", b'{"X": [[1]]}', "application/json")
        self.assertEqual(st, 409, body)
        self.assertNotIn("retry-after", {k.lower() for k in h}, h)
        self.assertTrue(os.path.isdir(os.path.join(self.data_dir(), "polis-example")))
        self.assertEqual(self.spool_leftovers(), [])

    def test_put_over_max_body_is_413_before_the_body(self):
        self.d.stop()
        self.d.config["max_body_bytes"] = "1K"
        self.d.start()
        st, h, body = self.put("big", b"\0" * 4096)
        self.problem(st, h, body, 413)
        self.assertEqual(self.spool_leftovers(), [])
        self.assertNotIn("big.h5ad", os.listdir(self.data_dir()))

    def test_corrupt_h5ad_put_and_post_leave_nothing(self):
        good = h5ad_bytes(small_adata(), self.tmp)
        bad_bodies = [b"not an hdf5 file at all", good[: len(good) // 2],
                      good[:512] + bytes(len(good) - 512)]
        jobs_before = os.listdir(os.path.join(self.d.spool, "jobs"))
        for bad in bad_bodies:
            st, h, body = self.put("broken", bad)
            self.problem(st, h, body, 400)
            st, h, body = self.d.request("POST", "/v1/exports?format=npz", bad,
                                         {"Content-Type": "application/x-hdf5"})
            self.problem(st, h, body, 400)
        self.assertEqual(sorted(os.listdir(self.data_dir())), ["polis-example"])
        self.assertEqual(self.spool_leftovers(), [])
        self.assertEqual(os.listdir(os.path.join(self.d.spool, "jobs")), jobs_before)
        st, _, doc = self.d.json("GET", "/v1/exports")
        self.assertEqual(doc["items"], [])

    def test_delete_then_404(self):
        st, _, _ = self.put("gone", h5ad_bytes(small_adata(), self.tmp))
        self.assertEqual(st, 201)
        st, h, body = self.d.request("DELETE", "/v1/datasets/gone")
        self.assertEqual(st, 204, body)
        st, h, body = self.d.request("GET", "/v1/datasets/gone")
        self.problem(st, h, body, 404)
        st, h, body = self.d.request("DELETE", "/v1/datasets/gone")
        self.problem(st, h, body, 404)
        self.assertEqual(sorted(os.listdir(self.data_dir())), ["polis-example"])


class ExportByReference(Base):
    def test_polis_example_to_npz_and_h5ad(self):
        m = polis_matrix()
        body = {"dataset": "polis-example", "include": ["var/content"], "format": "npz"}
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", body)
        self.assertEqual(st, 200, data[:500])
        self.assertEqual(h["content-type"], "application/zip")
        z = npz(data)
        x = z["X"]
        np.testing.assert_array_equal(x, m.to_numpy(dtype=float))
        self.assertEqual([int(i) for i in z["var/_index"]], list(m.columns))
        self.assertEqual([int(i) for i in z["obs/_index"]], list(m.index))
        cm = comments()
        self.assertEqual(list(z["var/content"]), [cm[c] for c in m.columns])
        self.assertFalse([f for f in z.files if f.startswith("uns/")], z.files)

        body = {"dataset": "polis-example", "include": ["var/content", "uns/votes_meta"],
                "format": "h5ad", "filename": "gitcoin.h5ad"}
        st, h, data = self.d.request("POST", "/v1/exports?wait=60", body)
        self.assertEqual(st, 200, data[:500])
        p = os.path.join(self.tmp, "g.h5ad")
        with open(p, "wb") as f:
            f.write(data)
        a = anndata.read_h5ad(p)
        np.testing.assert_array_equal(a.X, m.to_numpy(dtype=float))
        self.assertEqual(list(a.var.columns), ["content"])
        self.assertEqual(list(a.var["content"]), [cm[c] for c in m.columns])
        self.assertEqual(list(a.uns.keys()), ["votes_meta"])
        self.assertEqual(int(a.uns["votes_meta"]["n_votes"]), n_votes())

    def test_async_job_names_its_dataset_and_unknown_is_404(self):
        st, h, j = self.d.json("POST", "/v1/exports", {"dataset": "polis-example",
                                                        "format": "h5ad"})
        self.assertEqual(st, 202, j)
        self.assertEqual(j["dataset"], "polis-example")
        done = self.d.wait_job(j["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["summary"]["n_obs"], 138)
        st, h, body = self.d.request("POST", "/v1/exports", {"dataset": "missing"})
        p = self.problem(st, h, body, 404)
        self.assertEqual(p["errors"][0]["pointer"], "/dataset")
        st, h, body = self.d.request("POST", "/v1/exports", {"dataset": "../etc"})
        p = self.problem(st, h, body, 400)
        self.assertEqual(p["errors"][0]["pointer"], "/dataset")
        st, _, doc = self.d.json("GET", "/v1/exports")
        self.assertEqual(len(doc["items"]), 1)

    def test_h5ad_body_with_query_options(self):
        a = small_adata(3)
        data = h5ad_bytes(a, self.tmp)
        q = "/v1/exports?format=npz&include=obs/grp,obsm/X_*&include=uns/note&wait=60"
        st, h, out = self.d.request("POST", q, data, {"Content-Type": "application/x-hdf5"})
        self.assertEqual(st, 200, out[:500])
        z = npz(out)
        np.testing.assert_array_equal(z["X"], a.X)
        np.testing.assert_array_equal(z["obsm/X_umap"], a.obsm["X_umap"])
        self.assertNotIn("obsm/other", z.files)
        self.assertNotIn("obs/n", z.files)
        self.assertEqual(str(z["uns/note"][()]), "hello")
        self.assertEqual(list(z["obs/_index"]), list(a.obs_names))
        # h5ad out, asynchronously: 202 means the body and options are on disk
        q = ("/v1/exports?format=h5ad&filename=cells.h5ad&compression=lzf"
             "&categorical_columns=grp&strings_to_categoricals=false")
        st, h, j = self.d.json("POST", q, data, {"Content-Type": "application/x-hdf5"})
        self.assertEqual(st, 202, j)
        jd = os.path.join(self.d.spool, "jobs", j["id"])
        done = self.d.wait_job(j["id"])
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["filename"], "cells.h5ad")
        st, h, out = self.d.request("GET", "/v1/exports/%s/file" % j["id"])
        p = os.path.join(self.tmp, "o.h5ad")
        with open(p, "wb") as f:
            f.write(out)
        b = anndata.read_h5ad(p)
        np.testing.assert_array_equal(b.X, a.X)
        self.assertEqual(str(b.obs["grp"].dtype), "category")
        np.testing.assert_array_equal(b.obsm["other"], a.obsm["other"])
        with h5py.File(p) as f:  # the query's compression reached the writer
            self.assertEqual(f["X"].compression, "lzf")
        self.assertFalse(b.obs["grp"].cat.ordered)
        # the uploaded input and its options are gone once the job ran
        self.assertEqual(sorted(os.listdir(jd)), ["job.json", "result.h5ad"])

    def test_h5ad_body_option_errors_point_at_the_query(self):
        data = h5ad_bytes(small_adata(), self.tmp)
        cases = [("include=obs/a&include=nope/x", "/include/1", "include"),
                 ("include=obs/a,", "/include/1", "include"),
                 ("compression_opts=high", "/compression_opts", "compression_opts"),
                 ("compression=lzf&compression_opts=4", None, None),
                 ("format=xls", "/format", "format"),
                 ("strings_to_categoricals=maybe", "/strings_to_categoricals",
                  "strings_to_categoricals"),
                 ("format=npz&format=h5ad", "/format", "format"),
                 ("colour=red", "/colour", "colour"),
                 # bytes that are not UTF-8 still give a valid problem body
                 ("include=%FF", "/include", "include"),
                 ("filename=%C3", "/filename", "filename"),
                 ("%FF=1", "/?", "?")]
        for q, ptr, param in cases:
            st, h, body = self.d.request("POST", "/v1/exports?" + q, data,
                                         {"Content-Type": "application/x-hdf5"})
            p = self.problem(st, h, body, 400)
            if ptr:
                self.assertEqual(p["errors"][0]["pointer"], ptr, (q, p))
                self.assertIn(param, p["detail"], (q, p))
            self.assertIn("query parameter", p["detail"], (q, p))
        st, h, body = self.d.request("POST", "/v1/exports", b"x", {"Content-Type": "text/csv"})
        self.problem(st, h, body, 415)
        self.assertEqual(h["accept-post"], "application/json, multipart/form-data, application/x-hdf5")
        self.assertEqual(self.spool_leftovers(), [])
        st, _, doc = self.d.json("GET", "/v1/exports")
        self.assertEqual(doc["items"], [])


class AuthCorsProxy(Base):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        tokens = os.path.join(self.tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("tok\n")
        self.d = Daemon(self.tmp, {"tokens_file": tokens, "cors_origins": "https://app.example",
                                   "trusted_proxies": "127.0.0.0/8"})
        self.d.start()

    def test_tokens_cors_request_id_and_links(self):
        for m, path in (("GET", "/v1/datasets"), ("GET", "/v1/datasets/polis-example"),
                        ("DELETE", "/v1/datasets/polis-example"), ("PUT", "/v1/datasets/x")):
            st, h, body = self.d.request(m, path, b"{}" if m == "PUT" else None,
                                         {"Content-Type": "application/json"})
            self.problem(st, h, body, 401)
        # no token, no name check either: nothing about the data dir leaks
        st, h, body = self.d.request("GET", "/v1/datasets/..")
        self.problem(st, h, body, 401)
        auth = {"Authorization": "Bearer tok", "Origin": "https://app.example",
                "X-Request-ID": "ds-req-1"}
        st, h, body = self.d.request("GET", "/v1/datasets", headers=auth)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["access-control-allow-origin"], "https://app.example")
        self.assertEqual(h["x-request-id"], "ds-req-1")
        pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
        st, h, _ = self.d.request("OPTIONS", "/v1/datasets/cells", headers=pre)
        self.assertEqual(st, 204)
        self.assertIn("PUT", h["access-control-allow-methods"])
        self.assertIn("DELETE", h["access-control-allow-methods"])
        hdrs = dict(auth, **{"Content-Type": "application/x-hdf5", "X-Forwarded-Proto": "https",
                             "X-Forwarded-Host": "data.example.org",
                             "X-Forwarded-Prefix": "/adx"})
        st, h, body = self.d.request("PUT", "/v1/datasets/cells",
                                     h5ad_bytes(small_adata(), self.tmp), hdrs)
        self.assertEqual(st, 201, body)
        self.assertEqual(h["location"], "https://data.example.org/adx/v1/datasets/cells")
        self.assertIn("Location", h["access-control-expose-headers"])
        self.assertIn("ds-req-1", self.d.logs())


GATE = """#!/bin/sh
# Test stand-in for adx-h5check: holds while a hold file exists (polling is
# the helper's, not the test's), then runs the real helper.
case "$1" in
  *.upload) if [ -e "%(g)s/hold-upload" ] && mkdir "%(g)s/claimed" 2>/dev/null; then
              while [ -e "%(g)s/hold-upload" ]; do sleep 0.02; done
            fi ;;
  */input.h5ad) while [ -e "%(g)s/hold-run" ]; do sleep 0.02; done ;;
esac
exec "%(real)s" "$@"
"""


class Pins(Base):
    """A job that names a dataset pins it from acceptance until it ends.
    Jobs are held deterministically by an h5check stand-in that waits while
    a hold file exists: one for checks of uploads (validation), one for the
    check of a job's stored input (its run). Only the first upload check
    holds."""

    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name
        real = os.path.join(os.path.dirname(os.environ["ADX_BIN"]), "src", "h5r",
                            "adx-h5check")
        self.g = os.path.join(self.tmp, "gate")
        os.makedirs(self.g)
        gate = os.path.join(self.g, "h5check")
        with open(gate, "w") as f:
            f.write(GATE % {"g": self.g, "real": real})
        os.chmod(gate, 0o755)
        self.d = Daemon(self.tmp, {"workers": "1", "h5check": gate})
        self.d.start()

    def hold(self, which, on=True):
        p = os.path.join(self.g, "hold-" + which)
        if on:
            open(p, "w").close()
        elif os.path.exists(p):
            os.unlink(p)

    def wait_until(self, what, cond, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.02)
        raise AssertionError("timed out waiting for " + what)

    def readyz_queued(self):
        st, _, r = self.d.json("GET", "/readyz")
        return r["queued"]

    def job_state(self, jid):
        st, _, j = self.d.json("GET", "/v1/exports/" + jid)
        return j["state"]

    def test_queued_job_pins_its_dataset_across_a_restart(self):
        data = h5ad_bytes(small_adata(), self.tmp)
        st, _, _ = self.put("pinme", data)
        self.assertEqual(st, 201)
        self.hold("upload")
        self.hold("run")
        # V: its upload check holds (the only one that does), so it counts
        # as "validating" ...
        res = {}

        def post_v():
            res["v"] = self.d.json("POST", "/v1/exports", data,
                                   {"Content-Type": "application/x-hdf5"}, timeout=120)
        t = threading.Thread(target=post_v)
        t.start()
        # (the stand-in claims the hold before it waits: counting V as
        # validating is not enough, its check must be the one holding)
        self.wait_until("V holding", lambda: os.path.isdir(os.path.join(self.g, "claimed")))
        self.assertEqual(self.readyz_queued(), 1)
        # ... so A does not keep its model and reads its input again when it
        # runs: that check holds, and A keeps the only worker.
        st, _, a = self.d.json("POST", "/v1/exports", data, {"Content-Type": "application/x-hdf5"})
        self.assertEqual(st, 202, a)
        self.wait_until("A running", lambda: self.job_state(a["id"]) == "running")
        self.hold("upload", False)
        t.join(60)
        self.assertEqual(res["v"][0], 202, res["v"])
        # B names the dataset and waits behind A.
        st, _, b = self.d.json("POST", "/v1/exports", {"dataset": "pinme", "format": "npz"})
        self.assertEqual(st, 202, b)
        self.assertEqual(self.job_state(b["id"]), "queued")
        st, h, body = self.d.request("DELETE", "/v1/datasets/pinme")
        p = self.problem(st, h, body, 409)
        self.assertIn("retry-after", h)
        self.assertIn("pinme", p["detail"])
        st, h, body = self.put("pinme", data)
        self.problem(st, h, body, 409)
        self.assertIn("retry-after", h)
        # other datasets are free
        st, _, _ = self.put("other", data)
        self.assertEqual(st, 201)
        st, _, _ = self.d.request("DELETE", "/v1/datasets/other")
        self.assertEqual(st, 204)
        # crash and restart: B is queued again and pins again; V (the
        # oldest) runs first and holds like A did.
        self.d.stop(graceful=False)
        self.d.start()
        self.assertEqual(self.job_state(b["id"]), "queued")
        self.wait_until("V running", lambda: self.job_state(res["v"][2]["id"]) == "running")
        st, h, body = self.d.request("DELETE", "/v1/datasets/pinme")
        self.problem(st, h, body, 409)
        # a canceled queued job lets go of its pin
        st, _, c = self.d.json("POST", "/v1/exports", {"dataset": "pinme"})
        self.assertEqual(st, 202, c)
        st, _, _ = self.d.request("DELETE", "/v1/exports/" + c["id"])
        self.assertEqual(st, 204)
        st, h, body = self.d.request("DELETE", "/v1/datasets/pinme")
        self.problem(st, h, body, 409)  # B still holds it
        # release A: everything runs, B ends and the pin is gone
        self.hold("run", False)
        for jid in (a["id"], res["v"][2]["id"], b["id"]):
            self.assertEqual(self.d.wait_job(jid)["state"], "succeeded")
        z = npz(self.d.request("GET", "/v1/exports/%s/file" % b["id"])[2])
        self.assertEqual(z["X"].shape, (5, 3))
        st, _, _ = self.d.request("DELETE", "/v1/datasets/pinme")
        self.assertEqual(st, 204)


    def test_sigterm_waits_for_a_put_in_progress(self):
        data = h5ad_bytes(small_adata(), self.tmp)
        self.hold("upload")
        res = {}

        def put():
            res["put"] = self.put("late", data)
        t = threading.Thread(target=put)
        t.start()
        self.wait_until("PUT holding", lambda: os.path.isdir(os.path.join(self.g, "claimed")))
        self.d.signal(signal.SIGTERM)
        # draining (the listener is closed) while the PUT is on the pool:
        # the daemon waits for it instead of cutting it short
        self.wait_until("draining", lambda: '"shutting down"' in self.d.logs())
        self.assertIsNone(self.d.proc.poll())
        self.hold("upload", False)
        t.join(60)
        self.assertEqual(res["put"][0], 201, res["put"])
        self.assertEqual(self.d.wait_exit(60), 0)
        self.assertTrue(os.path.exists(os.path.join(self.d.spool, "datasets", "late.h5ad")))


class DataDirDefaults(unittest.TestCase):
    def setUp(self):
        self.tmpd = tempfile.TemporaryDirectory()
        self.tmp = self.tmpd.name

    def tearDown(self):
        self.tmpd.cleanup()

    def run_daemon(self, config, fn):
        d = Daemon(self.tmp, config)
        d.start()
        try:
            return fn(d)
        finally:
            rc = d.stop()
            if rc not in (0, None):
                sys.stderr.write(d.logs()[-4000:])
            self.assertIn(rc, (0, None))

    def names(self, d):
        st, _, doc = d.json("GET", "/v1/datasets")
        self.assertEqual(st, 200)
        return [x["name"] for x in doc["datasets"]]

    def test_default_is_seeded_configured_is_not(self):
        dd = os.path.join(self.tmp, "spool", "datasets")
        self.assertEqual(self.run_daemon({}, self.names), ["polis-example"])
        for f in ("votes.csv", "comments.csv"):
            with open(os.path.join(dd, "polis-example", f), "rb") as a, \
                    open(os.path.join(EXAMPLE, f), "rb") as b:
                self.assertEqual(a.read(), b.read())
        self.assertEqual([x for x in os.listdir(dd) if x.startswith(".")], [])

        # deleted by its user and restarted: an empty default dir is seeded again
        def delete(d):
            st, _, _ = d.request("DELETE", "/v1/datasets/polis-example")
            self.assertEqual(st, 204)
        self.run_daemon({}, delete)
        self.assertEqual(os.listdir(dd), [])
        self.assertEqual(self.run_daemon({}, self.names), ["polis-example"])

        # a default dir holding another dataset is left alone
        def swap(d):
            st, _, _ = d.request("PUT", "/v1/datasets/mine", h5ad_bytes(small_adata(), self.tmp),
                                 {"Content-Type": "application/x-hdf5"})
            self.assertEqual(st, 201)
            st, _, _ = d.request("DELETE", "/v1/datasets/polis-example")
            self.assertEqual(st, 204)
        self.run_daemon({}, swap)
        self.assertEqual(self.run_daemon({}, self.names), ["mine"])

        # a configured directory is never seeded (and is created when missing)
        conf = os.path.join(self.tmp, "configured")
        self.assertEqual(self.run_daemon({"data_dir": conf}, self.names), [])
        self.assertEqual(os.listdir(conf), [])
        env_dir = os.path.join(self.tmp, "from-env")
        d = Daemon(self.tmp, {}, env={"ANNDATA_EXPORTD_DATA_DIR": env_dir})
        d.start()
        try:
            self.assertEqual(self.names(d), [])
        finally:
            self.assertIn(d.stop(), (0, None))

    def test_h5check_setting_and_missing_helper(self):
        # an explicit helper that does not exist: a clear start failure
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:0\nspool_dir = %s/spool\nh5check = %s/nope\n"
                    % (self.tmp, self.tmp))
        r = subprocess.run([os.environ["ADX_BIN"], "serve", "--config", conf],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("h5check", r.stderr)
        self.assertIn("not an executable file", r.stderr)
        r = subprocess.run([os.environ["ADX_BIN"], "serve", "--help"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--h5check", r.stdout)
        self.assertIn("--data-dir", r.stdout)


def readme_commands():
    """The shell lines of the code blocks of "### Stored datasets" in
    README.md (continuations joined, comments dropped)."""
    with open(os.path.join(SRC, "README.md")) as f:
        text = f.read()
    m = re.search(r"(?ms)^### Stored datasets\n(.*?)(?=^##|\Z)", text)
    assert m, "README.md has no '### Stored datasets' section"
    cmds, cur = [], ""
    for line in m.group(1).splitlines():
        if not line.startswith("    "):
            continue
        s = line[4:]
        if not cur and (not s.strip() or s.lstrip().startswith("#")):
            continue
        if s.rstrip().endswith("\\"):
            cur += s.rstrip()[:-1] + " "
            continue
        cur += s
        cmds.append(cur.strip())
        cur = ""
    return cmds


class ReadmeCommands(Base):
    def test_readme_stored_datasets_section_runs_as_written(self):
        cmds = readme_commands()
        self.assertTrue(any(c.startswith("curl") and "-X PUT" in c for c in cmds), cmds)
        work = os.path.join(self.tmp, "work")
        os.makedirs(work)
        outputs = []
        for c in cmds:
            # the daemon of this test, and the interpreter that has anndata
            c = c.replace("127.0.0.1:8080", "127.0.0.1:%d" % self.d.port)
            c = re.sub(r"^python3 ", PY + " ", c)
            if c.startswith("curl "):
                c = "curl --fail-with-body " + c[5:]
            r = subprocess.run(c, shell=True, cwd=work, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(r.returncode, 0, "%s\n%s\n%s" % (c, r.stdout, r.stderr))
            outputs.append((c, r.stdout))
        files = os.listdir(work)
        npzs = [f for f in files if f.endswith(".npz")]
        h5s = [f for f in files if f.endswith(".h5ad")]
        self.assertTrue(npzs and h5s, files)
        m = polis_matrix()
        for f in npzs:
            with np.load(os.path.join(work, f), allow_pickle=False) as z:
                np.testing.assert_array_equal(z["X"], m.to_numpy(dtype=float))
        for f in h5s:
            a = anndata.read_h5ad(os.path.join(work, f))
            np.testing.assert_array_equal(a.X, m.to_numpy(dtype=float))
        # the one-liners printed what they open
        printed = "".join(o for c, o in outputs if c.startswith(PY))
        self.assertIn("(138, 46)", printed)
        st, _, doc = self.d.json("GET", "/v1/datasets")
        self.assertGreaterEqual(len(doc["datasets"]), 2, doc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
