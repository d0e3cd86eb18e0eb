"""anndata's own test objects sent as JSON payloads, in every form of
payload.md, and compared with what anndata itself writes.

gen_adata (anndata.tests.helpers) makes objects with sparse and dense
matrices of several dtypes, categorical (ordered too), uint8, bool,
nullable-integer and nullable-boolean columns, DataFrames in obsm/varm,
obsp/varp, a record array and nested dicts in uns. Each object is turned
into an export request by `to_request` below, which picks a payload form
for every element from a seeded generator (nested arrays, typed blocks with
flat or nested "data", base64, .npy or raw binary parts passed with
--part, csr/csc parts as plain arrays or typed blocks, the three DataFrame
forms where the columns allow), so each seed exercises another mix. The
expected result is the same object written by anndata's write_h5ad and
read back; `assert_equal` compares that with our output read back. The
CLI runs one mix of seeds; the daemon another, as JSON or multipart
bodies."""

import base64
import io
import json
import os
import random
import shutil
import tempfile
import unittest
import uuid

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal, gen_adata

import sys
sys.dont_write_bytecode = True
from adxcli import CliCase
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from srvharness import Daemon  # noqa: E402


class Builder:
    """Turns AnnData elements into payload JSON; binary parts are written
    into `dir` and listed in `parts` for --part."""

    def __init__(self, seed, dir):
        self.rng = random.Random(seed)
        self.dir = dir
        self.parts = []

    def pick(self, *forms):
        return self.rng.choice(forms)

    def part(self, arr, npy):
        name = "p%d" % len(self.parts)
        path = os.path.join(self.dir, name + (".npy" if npy else ".bin"))
        if npy:
            # Fortran order too: payload.md accepts it and stores row-major.
            np.save(path, np.asfortranarray(arr) if arr.ndim == 2 and self.pick(0, 1) else arr)
        else:
            with open(path, "wb") as f:
                f.write(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())
        self.parts.append("%s=%s" % (name, path))
        return name

    @staticmethod
    def cells(arr):
        """Values as JSON cells: NaN as null or "NaN", infinities as text."""
        def one(x):
            if isinstance(x, float) and not np.isfinite(x):
                return None if np.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
            return x
        if arr.ndim == 0:
            return one(arr.item())
        return [Builder.cells(r) if arr.ndim > 1 else one(r) for r in
                (arr if arr.ndim > 1 else arr.tolist())]

    def typed(self, arr, shape=True):
        """A typed block (dtype always given) for a numeric array."""
        arr = np.asarray(arr)
        blk = {"dtype": arr.dtype.name}
        form = self.pick("nested", "flat", "base64", "npy", "raw")
        if shape or form == "raw":  # a raw part needs its shape
            blk["shape"] = list(arr.shape)
        if form == "nested":
            blk["data"] = self.cells(arr)
        elif form == "flat":
            blk["data"] = self.cells(arr.reshape(-1))
        elif form == "base64":
            blk["base64"] = base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()
        else:
            blk["part"] = self.part(arr, form == "npy")
            if form == "npy" and self.pick(0, 1):  # dtype/shape come from the header
                blk.pop("dtype")
                blk.pop("shape", None)
        return blk

    def dense(self, arr):
        arr = np.asarray(arr)
        inferable = arr.dtype in (np.float64, np.int64, np.bool_)
        if inferable and arr.ndim == 2 and self.pick(0, 1):
            return self.cells(arr)  # plain nested arrays, typed by inference
        return dict({"encoding-type": "array"}, **self.typed(arr))

    def array1(self, arr):
        """One of a sparse matrix's Arrays."""
        arr = np.asarray(arr)
        if arr.dtype in (np.int64, np.float64) and self.pick(0, 1):
            return arr.tolist()
        return self.typed(arr, shape=False)

    def matrix(self, m):
        if sp.issparse(m):
            m = m.tocsc() if self.pick(0, 1) else m.tocsr()
            return {"encoding-type": m.format + "_matrix", "shape": list(m.shape),
                    "data": self.array1(m.data), "indices": self.array1(m.indices),
                    "indptr": self.array1(m.indptr)}
        if isinstance(m, pd.DataFrame):
            return self.frame(m, wrapped=True)
        return self.dense(m)

    def column(self, s):
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            return {"encoding-type": "categorical", "categories": cats.tolist(),
                    "codes": s.cat.codes.tolist(), "ordered": bool(s.cat.ordered)}
        if isinstance(s.dtype, pd.BooleanDtype):
            return {"encoding-type": "nullable-boolean",
                    "values": [None if v is pd.NA else bool(v) for v in s]}
        if isinstance(s.dtype, pd.core.arrays.integer.IntegerDtype):
            return {"encoding-type": "nullable-integer", "dtype": s.dtype.numpy_dtype.name,
                    "values": [None if v is pd.NA else int(v) for v in s]}
        v = s.to_numpy()
        if v.dtype in (np.int64, np.float64, np.bool_) and self.pick(0, 1):
            return self.cells(v)
        if v.dtype == object:
            return {"encoding-type": "string-array", "values": v.tolist()}
        return dict({"encoding-type": "array"}, **self.typed(v, shape=False))

    def frame(self, df, wrapped=False):
        """obs/var take the body itself; elsewhere (wrapped) a DataFrame is
        told from a matrix by its encoding-type."""
        plain = all(df[c].dtype in (np.int64, np.float64, np.bool_, object) for c in df.columns)
        form = self.pick("columns", "split", "records") if plain else "columns"
        index = df.index.tolist()
        if form == "records":
            recs = []
            for name, r in zip(index, df.itertuples(index=False)):
                d = {"_index": name}
                d.update({c: self.cells(np.asarray(x)) for c, x in zip(df.columns, r)})
                recs.append(d)
            return {"encoding-type": "dataframe", "data": recs} if wrapped else recs
        if form == "split":
            body = {"index": index, "columns": list(df.columns),
                    "data": [[self.cells(np.asarray(x)) for x in r]
                             for r in df.itertuples(index=False)]}
        else:
            body = {"index": index, "columns": {c: self.column(df[c]) for c in df.columns}}
        if df.index.name is not None:
            body["index_name"] = df.index.name
        return dict({"encoding-type": "dataframe"}, **body) if wrapped else body

    def uns(self, v):
        if isinstance(v, dict):
            return {k: self.uns(x) for k, x in v.items()}
        if isinstance(v, np.ndarray) and v.dtype.names:
            return {"encoding-type": "rec-array",
                    "fields": {n: v[n].tolist() if v[n].dtype == object else self.array1(v[n])
                               for n in v.dtype.names}}
        if isinstance(v, np.ndarray):
            if v.dtype in (np.int64, np.float64, np.bool_) and self.pick(0, 1):
                return self.cells(v)
            return self.dense(v)
        if sp.issparse(v) or isinstance(v, pd.DataFrame):
            return self.matrix(v)
        return v  # str, int, float, bool

    def adata(self, a):
        d = {"X": self.matrix(a.X), "obs": self.frame(a.obs), "var": self.frame(a.var)}
        for ns in ("obsm", "varm", "layers", "obsp", "varp"):
            d[ns] = {k: self.matrix(v) for k, v in getattr(a, ns).items()}
        d["uns"] = self.uns(dict(a.uns))
        if a.raw is not None:
            d["raw"] = {"X": self.matrix(a.raw.X), "var": self.frame(a.raw.var),
                        "varm": {k: self.matrix(v) for k, v in a.raw.varm.items()}}
        return d


def plain_frame(index, rng):
    """gen_adata's frames all hold categoricals, which only the columnar form
    can carry; this one can travel as pandas split and records too."""
    n = len(index)
    return pd.DataFrame({"count": rng.integers(-5, 5, n), "score": rng.normal(size=n),
                         "flag": rng.random(n) < 0.5,
                         "label": ["s%d" % (i % 3) for i in range(n)]}, index=index)


X_KINDS = [(sp.csr_matrix, np.float32), (np.array, np.float64), (sp.csc_matrix, np.int64),
           (np.array, np.int32), (sp.csr_matrix, np.float64), (np.array, np.uint8),
           (np.array, np.float32), (sp.csc_matrix, np.int16)]


def make(shape, seed, raw):
    np.random.seed(seed)  # gen_adata draws from numpy's global state
    x_type, x_dtype = X_KINDS[seed % len(X_KINDS)]
    a = gen_adata(shape, X_type=x_type, X_dtype=x_dtype)
    rng = np.random.default_rng(seed)
    a.obsm["plain"] = plain_frame(a.obs_names, rng)
    a.uns["frame"] = plain_frame(["r%d" % i for i in range(4)], rng)
    if raw:
        a.raw = a
        a = a[:, : max(1, shape[1] - 2)].copy()
    return a


class GenAdataPayload(CliCase):
    def roundtrip(self, shape, seed, raw=False, compression="gzip"):
        a = make(shape, seed, raw)
        b = Builder(seed, self.dir)
        req = {"adata": b.adata(a), "compression": compression,
               # anndata writes string columns as they are; so do we here
               "strings_to_categoricals": False}
        extra = []
        for p in b.parts:
            extra += ["--part", p]
        r = self.export(req, out=os.path.join(self.dir, "ours.h5ad"), extra=extra)
        self.assertEqual(r.rc, 0, r.stderr.decode(errors="replace")[:3000])
        exp = os.path.join(self.dir, "anndata.h5ad")
        a.copy().write_h5ad(exp)
        want = anndata.read_h5ad(exp)
        got = anndata.read_h5ad(os.path.join(self.dir, "ours.h5ad"))
        assert_equal(want, got)
        # assert_equal does not look at dtypes of dense arrays it compares by
        # value; the payload named them, so they must survive exactly.
        for ns in ("obsm", "varm", "layers", "obsp", "varp"):
            for k, v in getattr(want, ns).items():
                if isinstance(v, np.ndarray):
                    self.assertEqual(getattr(got, ns)[k].dtype, v.dtype, "%s/%s" % (ns, k))
        self.assertEqual(got.X.dtype, want.X.dtype)
        for c in want.obs.columns:
            self.assertEqual(got.obs[c].dtype, want.obs[c].dtype, "obs/" + c)
        return req

    def test_seeds(self):
        forms = set()
        for seed in range(6):
            with self.subTest(seed=seed):
                req = self.roundtrip((23 + seed, 17 + 2 * seed), seed, raw=seed % 2 == 1,
                                     compression=("gzip", "lzf", None)[seed % 3])
                text = json.dumps(req)
                for f in ('"base64"', '"part"', '"csc_matrix"', '"csr_matrix"', '"_index"',
                          '"data": [[', '"nullable-integer"'):
                    if f in text:
                        forms.add(f)
        # the seeds between them used every form this test knows
        self.assertEqual(len(forms), 7, forms)

    def test_large_enough_for_the_compression_helpers(self):
        # arrays past the writer's threshold for its helper threads
        self.roundtrip((700, 450), 21, raw=True)

    def test_single_row_and_column(self):
        # degenerate shapes: one observation, one variable
        self.roundtrip((1, 6), 11)
        self.roundtrip((7, 1), 12)


class GenAdataDaemon(unittest.TestCase):
    """The same requests POSTed to the daemon: JSON bodies, and multipart
    bodies (the request part and one part per array) when there are parts."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="adx-genadata-d-")
        cls.d = Daemon(cls.tmp).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, True)

    def test_seeds(self):
        kinds = set()
        for seed in range(100, 106):
            with self.subTest(seed=seed):
                work = tempfile.mkdtemp(dir=self.tmp)
                a = make((19 + seed % 7, 13 + seed % 5), seed, raw=seed % 2 == 0)
                b = Builder(seed, work)
                req = json.dumps({"adata": b.adata(a), "strings_to_categoricals": False}).encode()
                if b.parts:
                    fields = [("request", req, "application/json")]
                    for p in b.parts:
                        name, path = p.split("=", 1)
                        with open(path, "rb") as f:
                            fields.append((name, f.read(), "application/octet-stream"))
                    body, ctype = multipart(fields)
                else:
                    body, ctype = req, "application/json"
                kinds.add(ctype.split(";")[0])
                st, _, data = self.d.request("POST", "/v1/exports?wait=120", body,
                                             {"Content-Type": ctype}, timeout=180)
                self.assertEqual(st, 200, data[:2000])
                ours = os.path.join(work, "ours.h5ad")
                with open(ours, "wb") as f:
                    f.write(data)
                exp = os.path.join(work, "anndata.h5ad")
                a.copy().write_h5ad(exp)
                assert_equal(anndata.read_h5ad(exp), anndata.read_h5ad(ours))
        self.assertIn("multipart/form-data", kinds)


def multipart(fields):
    """fields: [(name, bytes, content type)] -> (body, Content-Type)."""
    boundary = "adx-" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, data, ctype in fields:
        out.write(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                  b"Content-Type: %s\r\n\r\n" % (boundary.encode(), name.encode(),
                                                   name.encode(), ctype.encode()))
        out.write(data)
        out.write(b"\r\n")
    out.write(b"--%s--\r\n" % boundary.encode())
    return out.getvalue(), "multipart/form-data; boundary=%s" % boundary


if __name__ == "__main__":
    unittest.main()
