"""Regenerate the seed corpora under tests/fuzz/corpus/ (committed; run
again only to change them): small valid inputs for each target, so that
fuzzing starts from the formats' real structure.

usage: /usr/bin/python3 tests/fuzz/make_seeds.py
"""
import json
import os
import warnings

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


REQUESTS = {
    "nested": {"adata": {"X": [[1.0, 2.0], [3.0, None]],
                         "obs": {"index": ["a", "b"], "columns": {"label": ["x", None]}},
                         "uns": {"gone": None}}, "filename": "small.h5ad"},
    "typed": {"adata": {"X": {"encoding-type": "array", "dtype": "float32", "shape": [2, 3],
                              "base64": "AACAPwAAAEAAAEBAAACAQAAAoEAAAMBA"},
                        "var": {"index": ["g1", "g2", "g3"],
                                "columns": {"n": {"encoding-type": "nullable-integer",
                                                  "dtype": "int64", "values": [1, None, 3]}}}},
              "format": "npz", "compression": None},
    "sparse": {"adata": {"X": {"encoding-type": "csr_matrix", "shape": [3, 4],
                               "data": [1, 2, 3], "indices": [0, 2, 3],
                               "indptr": {"dtype": "int32", "data": [0, 1, 2, 3]}},
                         "obsm": {"X_umap": [[0.5, 1], [2, 3], [4, 5]]},
                         "layers": {"c": {"encoding-type": "csc_matrix", "shape": [3, 4],
                                          "data": [], "indices": [], "indptr": [0, 0, 0, 0, 0]}}},
               "include": ["obsm/X_*", "layers/[a-c]"], "format": "csv"},
    "frames": {"adata": {"shape": [3, 2],
                         "obs": [{"kmeans_k": 1, "s": "a"}, {"kmeans_k": -1, "s": 2},
                                 {"kmeans_k": None, "s": [1]}],
                         "var": {"index": ["x", "y"], "columns": ["b"], "data": [[True], [False]]},
                         "uns": {"df": {"encoding-type": "dataframe", "index": ["0"],
                                        "columns": {"v": [1.5]}},
                                 "cat": {"encoding-type": "categorical", "categories": [0, 1, -1],
                                         "codes": [0, 2, -1], "ordered": False},
                                 "vals": {"encoding-type": "categorical",
                                          "values": ["b", "a", None], "ordered": True},
                                 "nb": {"encoding-type": "nullable-boolean",
                                        "values": [True, None]},
                                 "sa": {"encoding-type": "string-array", "values": ["p", "q"]},
                                 "nd": [[[1, 2]], [[3, 4]]], "f": "NaN", "t": True,
                                 "d": {"deep": {"x": [1, "y", None]}}}},
               "include": ["obs/kmeans_*", "uns/*", "var/b"], "strings_to_categoricals": True,
               "categorical_columns": ["s"]},
    "raw": {"adata": {"X": [[1, 0], [0, 1]],
                      "raw": {"X": [[1, 0, 2], [0, 1, 3]], "var": {"index": ["a", "b", "c"]},
                              "varm": {"m": [[1], [2], [3]]}},
                      "obsp": {"d": [[0, 1], [1, 0]]}, "varp": {"e": [[1, 0], [0, 1]]}},
            "format": "txt", "filename": "r.zip"},
    "floats": {"adata": {"X": {"encoding-type": "array", "dtype": "float64", "shape": [1, 4],
                               "data": ["NaN", "Infinity", "-inf", 1e308]}},
               "compression": "lzf"},
}

OPTIONS = {
    "full": {"adata": {}, "include": ["obs/a", "uns/*"], "format": "h5ad",
             "filename": "x.h5ad", "compression": "gzip", "compression_opts": 9,
             "categorical_columns": ["kmeans_*"], "strings_to_categoricals": False},
    "dataset": {"dataset": "polis-1", "format": "npz", "compression": None},
    "options": {"format": "txt", "filename": "b.ZIP", "compression": "none"},
    "bad": {"adata": {}, "filename": "a/..", "compression": "lzf", "compression_opts": 1},
}

GLOBS = [("obsm/X_*", "obsm/X_umap"), ("[!a-c]?*", "déjà"), ("*[]]*", "a]b"),
         ("[z-a-]", "-"), ("[!]", "!"), ("k*_*_[0-9]", "kmeans_1_2"), ("*a*a*a*b", "aaaaaaaaaa"),
         ("[", "["), ("[ä-ö]*", "écrit")]


def polis_seed():
    ex = os.path.join(ROOT, "data", "polis-example")
    with open(os.path.join(ex, "votes.csv"), "rb") as f:
        votes = f.read().split(b"\n")
    with open(os.path.join(ex, "comments.csv"), "rb") as f:
        comments = f.read().split(b"\n")
    put("polis", "example", b"\n".join(votes[:40]) + b"\n\0" + b"\n".join(comments[:8]) + b"\n")
    put("polis", "quoted",
        b"timestamp,voter-id,comment-id,vote,extra\r\n1,p1,0,1,\"a,b\"\r\n2,p2,0,-1,\"x\"\"y\"\r\n"
        b"3,p1,1,,\r\n\0\xef\xbb\xbfcomment-id,comment-body,author-id,is-seed,is-meta,moderated,"
        b"timestamp\n0,\"line\nbreak\",p1,True,false,1,5\n1,hi,p2,FALSE,TRUE,-1,6\n")
    put("polis", "textids", b"timestamp,voter-id,comment-id,vote\n1.5,a,x,0\n1.5,b,y,1\n\0"
        b"comment-id\nx\ny\nz\n")


def h5ad_seeds(tmp):
    n, m = 5, 3
    obs = pd.DataFrame({"grp": pd.Categorical(list("abcab")),
                        "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
                        "b": pd.array([True, None, False, True, True], dtype="boolean"),
                        "s": list("vwxyz"), "f": np.arange(n, dtype="f4")},
                       index=[f"c{i}" for i in range(n)])
    var = pd.DataFrame({"k": [1, 2, 3]}, index=[f"g{i}" for i in range(m)])
    a = anndata.AnnData(X=sp.random(n, m, density=0.5, format="csr", random_state=0,
                                    dtype="f4"), obs=obs, var=var)
    a.obsm["X_umap"] = np.zeros((n, 2))
    a.varm["pcs"] = sp.csc_matrix(np.eye(m))
    a.layers["dense"] = np.ones((n, m), dtype="i2")
    a.obsp["d"] = sp.csr_matrix(np.eye(n))
    a.uns["k"] = {"a": 1, "s": "text", "arr": np.array(["p", "q"], dtype=object),
                  "nd": np.zeros((2, 2, 2), dtype="u1"), "df": pd.DataFrame({"v": [1.5]})}
    a.raw = a
    files = {}
    p = os.path.join(tmp, "full.h5ad")
    a.write_h5ad(p)
    files["full"] = p
    small = anndata.AnnData(X=np.arange(6, dtype="f8").reshape(2, 3))
    p = os.path.join(tmp, "dense.h5ad")
    small.write_h5ad(p)
    files["dense"] = p
    p = os.path.join(tmp, "gzip.h5ad")
    a2 = anndata.AnnData(X=np.ones((4, 2)), obs=pd.DataFrame({"c": pd.Categorical(["x", "y"] * 2)},
                                                             index=list("abcd")))
    a2.write_h5ad(p, compression="gzip")
    files["gzip"] = p
    # pre-0.8 layout: no encoding attributes, legacy categories in uns
    p = os.path.join(tmp, "legacy.h5ad")
    with h5py.File(p, "w") as f:
        f["X"] = np.ones((2, 2))
        g = f.create_group("obs")
        g.attrs["_index"] = "index"
        g["index"] = np.array([b"a", b"b"])
        g["grp"] = np.array([0, 1], dtype="i1")
        u = f.create_group("uns")
        u["grp_categories"] = np.array([b"x", b"y"])
        f["var"] = np.array([(b"g1", 1.0), (b"g2", 2.0)], dtype=[("index", "S2"), ("v", "f8")])
    files["legacy"] = p
    for name, path in files.items():
        with open(path, "rb") as f:
            put("h5r", name, f.read())


def main():
    import tempfile
    for k, v in REQUESTS.items():
        put("request", k + ".json", json.dumps(v))
    for k, v in OPTIONS.items():
        put("options", k + ".json", json.dumps(v))
    for i, (p, s) in enumerate(GLOBS):
        put("glob", f"g{i}", p.encode() + b"\0" + s.encode())
    polis_seed()
    with tempfile.TemporaryDirectory() as d:
        h5ad_seeds(d)


if __name__ == "__main__":
    main()
