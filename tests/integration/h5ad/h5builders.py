"""h5ad files laid out exactly as anndata's writers of other versions laid
them out, built with h5py (anndata's own source is the reference, cited per
builder), plus fuzzed variants of each kind. Used by test_h5ad_layouts.py.

Each builder takes a path and writes one file; the *_expected helpers give
what the exporter must turn it into.
"""
import h5py
import numpy as np
import scipy.sparse as sp

VSTR = h5py.string_dtype()  # variable-length UTF-8, what h5py writes for str


def _enc(obj, t, v):
    obj.attrs["encoding-type"] = t
    obj.attrs["encoding-version"] = v


def _h5sparse(g, m):
    """anndata < 0.7 sparse matrices (anndata/h5py/h5sparse.py): a group with
    data/indices/indptr and h5sparse_format / h5sparse_shape attributes."""
    g.attrs["h5sparse_format"] = m.format
    g.attrs["h5sparse_shape"] = np.array(m.shape)
    g["data"], g["indices"], g["indptr"] = m.data, m.indices, m.indptr


def v06_objects(n=6, m=4, seed=0):
    """The values a 0.6 file of this shape holds (shared by the builder and
    the expectations)."""
    rng = np.random.default_rng(seed)
    o = {
        "X": rng.normal(size=(n, m)).astype(np.float32),
        "obs_names": [f"cell{i}" for i in range(n)],
        "var_names": [f"gene{j}" for j in range(m)],
        "n_genes": rng.integers(0, 100, size=n),
        "grp_codes": np.array([i % 3 for i in range(n)], dtype=np.int8),
        "grp_categories": ["A", "B", "C"],
        "name": [f"n{i}ü" for i in range(n)],
        "X_pca": rng.normal(size=(n, 3)).astype(np.float32),
        "X_umap": rng.normal(size=(n, 2)),
        "PCs": rng.normal(size=(m, 3)),
        "conn": sp.random(n, n, density=0.4, format="csr", random_state=seed),
        "dist": sp.random(n, n, density=0.4, format="csr", random_state=seed + 1),
        "names": [(f"g{i}a", f"g{i}b") for i in range(5)],
        "scores": rng.normal(size=(5, 2)).astype(np.float32),
        "counts": rng.integers(0, 9, size=(n, m)).astype(np.float32),
        "raw_X": rng.normal(size=(n, m + 2)),
        "raw_var_names": [f"rg{j}" for j in range(m + 2)],
        "raw_PCs": rng.normal(size=(m + 2, 2)),
    }
    return o


def write_v06(path, o, legacy_obsm=True, compound_raw_varm=False):
    """anndata 0.6 (readwrite/write.py _write_h5ad with
    _to_dict_fixed_width_arrays, var_len_str=True): obs/var as compound
    datasets (field "index", variable-length strings, categoricals as codes
    with uns["<col>_categories"]); obsm/varm as compound datasets whose
    fields hold matrices (BoundRecArr, anndata ≤ 0.6.19); sparse matrices in
    the h5sparse layout; uns scalars as 1-element arrays (preprocess_writing),
    string scalars fixed-length (np.array(['x']) with h5py 2's bytes);
    scanpy's rank_genes_groups record arrays with fixed-length byte strings
    (the TypeError fallback: 'S' fields); neighbors graphs in uns; raw as
    raw.X / raw.var / raw.varm / raw.cat."""
    n, m = o["X"].shape
    with h5py.File(path, "w") as f:
        f["X"] = o["X"]
        odt = np.dtype([("index", VSTR), ("n_genes", "<i8"), ("grp", "i1"), ("name", VSTR)])
        rec = np.empty(n, dtype=odt)
        rec["index"], rec["n_genes"] = o["obs_names"], o["n_genes"]
        rec["grp"], rec["name"] = o["grp_codes"], o["name"]
        f["obs"] = rec
        vrec = np.empty(m, dtype=[("index", VSTR)])
        vrec["index"] = o["var_names"]
        f["var"] = vrec
        if legacy_obsm:
            odt = np.dtype([("X_pca", "<f4", (3,)), ("X_umap", "<f8", (2,))])
            om = np.empty(n, dtype=odt)
            om["X_pca"], om["X_umap"] = o["X_pca"], o["X_umap"]
            f["obsm"] = om
            vm = np.empty(m, dtype=[("PCs", "<f8", (3,))])
            vm["PCs"] = o["PCs"]
            f["varm"] = vm
        else:
            f["obsm/X_pca"], f["obsm/X_umap"] = o["X_pca"], o["X_umap"]
            f["varm/PCs"] = o["PCs"]
        f["layers/counts"] = o["counts"]
        u = f.create_group("uns")
        u["grp_categories"] = np.array(o["grp_categories"], dtype=VSTR)
        _h5sparse(u.create_group("neighbors/connectivities"), o["conn"])
        _h5sparse(u.create_group("neighbors/distances"), o["dist"])
        u["neighbors/params/n_neighbors"] = np.array([15])
        u["neighbors/params/method"] = np.array([b"umap"], dtype="S4")
        names = np.array(o["names"], dtype=[("0", "S4"), ("1", "S4")])
        u["rank_genes_groups/names"] = names
        sc = np.empty(5, dtype=[("0", "<f4"), ("1", "<f4")])
        sc["0"], sc["1"] = o["scores"][:, 0], o["scores"][:, 1]
        u["rank_genes_groups/scores"] = sc
        u["title"] = np.array([b"hello"], dtype="S5")
        f["raw.X"] = o["raw_X"]
        rv = np.empty(m + 2, dtype=[("index", VSTR)])
        rv["index"] = o["raw_var_names"]
        f["raw.var"] = rv
        if compound_raw_varm:
            # anndata 0.8's Raw cannot take this one (AxisArrays without
            # convert_to_dict); the exporter reads it like obsm
            rvm = np.empty(m + 2, dtype=[("PCs", "<f8", (2,))])
            rvm["PCs"] = o["raw_PCs"]
            f["raw.varm"] = rvm
        else:
            f["raw.varm/PCs"] = o["raw_PCs"]
        f.create_group("raw.cat")


def write_v07_recarray(path, seed=0):
    """anndata 0.7 (_io/h5ad.py write_array / _to_hdf5_vlen_strings): a
    np.recarray in uns is an untagged compound dataset whose string fields
    are variable-length UTF-8; frames are dataframe 0.1.0 with categoricals
    as code datasets referring to __categories/<col>; raw is a group."""
    rng = np.random.default_rng(seed)
    n, m = 5, 3
    with h5py.File(path, "w") as f:
        _enc(f, "anndata", "0.1.0")
        f["X"] = rng.normal(size=(n, m))
        for name, idx in (("obs", [f"c{i}" for i in range(n)]), ("var", [f"g{j}" for j in range(m)])):
            g = f.create_group(name)
            _enc(g, "dataframe", "0.1.0")
            g.attrs["_index"] = "_index"
            g.attrs["column-order"] = np.array([], dtype=np.float64)
            g["_index"] = np.array(idx, dtype=VSTR)
        rdt = np.dtype([("names", VSTR), ("scores", "<f4"), ("hit", "?"), ("rank", "<i8")])
        r = np.empty(4, dtype=rdt)
        r["names"] = ["α", "b", "", "dd"]
        r["scores"] = rng.normal(size=4)
        r["hit"] = [True, False, True, False]
        r["rank"] = [3, 1, 2, 0]
        f["uns/rank"] = r
        g = f.create_group("raw")
        _enc(g, "raw", "0.1.0")
        g["X"] = rng.normal(size=(n, m))
        v = g.create_group("var")
        _enc(v, "dataframe", "0.1.0")
        v.attrs["_index"] = "_index"
        v.attrs["column-order"] = np.array([], dtype=np.float64)
        v["_index"] = np.array([f"g{j}" for j in range(m)], dtype=VSTR)


def write_new_encodings(path, with_awkward=True):
    """anndata 0.11/0.12 (src/anndata/_io/specs/methods.py on main):
    nullable-string-array (write_nullable for pd.arrays.StringArray: a group
    with values as string-array, "" under the mask, mask as bool, attribute
    na-value), null (write_null_h5py: h5py.Empty("f")), bytes (read as
    read_scalar), string / numeric scalars, dataframe 0.2.0, and an
    awkward-array group that anndata 0.8 cannot hold."""
    n, m = 4, 2
    with h5py.File(path, "w") as f:
        _enc(f, "anndata", "0.1.0")
        f["X"] = np.arange(n * m, dtype=np.float32).reshape(n, m)
        _enc(f["X"], "array", "0.2.0")
        for name, idx in (("obs", [f"c{i}" for i in range(n)]), ("var", [f"g{j}" for j in range(m)])):
            g = f.create_group(name)
            _enc(g, "dataframe", "0.2.0")
            g.attrs["_index"] = "_index"
            cols = ["label"] if name == "obs" else []
            g.attrs["column-order"] = (np.array(cols, dtype=object).astype(VSTR) if cols
                                       else np.array([], dtype=np.float64))
            g["_index"] = np.array(idx, dtype=VSTR)
            _enc(g["_index"], "string-array", "0.2.0")
        lab = f["obs"].create_group("label")
        _enc(lab, "nullable-string-array", "0.1.0")
        lab.attrs["na-value"] = "NA"
        lab["values"] = np.array(["x", "", "zé", ""], dtype=VSTR)
        _enc(lab["values"], "string-array", "0.2.0")
        lab["mask"] = np.array([False, True, False, False])
        _enc(lab["mask"], "array", "0.2.0")
        u = f.create_group("uns")
        _enc(u, "dict", "0.1.0")
        u.create_dataset("nothing", data=h5py.Empty("f"))
        _enc(u["nothing"], "null", "0.1.0")
        u.create_dataset("raw_bytes", data=np.bytes_(b"abc"))
        _enc(u["raw_bytes"], "bytes", "0.2.0")
        u.create_dataset("s", data="text", dtype=VSTR)
        _enc(u["s"], "string", "0.2.0")
        u["k"] = np.int64(5)
        _enc(u["k"], "numeric-scalar", "0.2.0")
        nested = u.create_group("nested")
        _enc(nested, "dict", "0.1.0")
        nested.create_dataset("none", data=h5py.Empty("f"))
        _enc(nested["none"], "null", "0.1.0")
        if with_awkward:
            a = u.create_group("awk")
            _enc(a, "awkward-array", "0.1.0")
            a.attrs["length"] = 3
            a.attrs["form"] = '{"class": "NumpyArray", "primitive": "int64"}'
            a["node0-data"] = np.arange(3)
        for k in ("obsm", "varm", "layers", "obsp", "varp"):
            _enc(f.create_group(k), "dict", "0.1.0")


# ---------------------------------------------------------------- fuzzing

def _rec_base(f):
    f["X"] = np.ones((3, 2), dtype=np.float32)


def fuzz_cases():
    """(name, writer) pairs: each writes a file whose structure lies in one
    way (wrong member types, missing fields, lying shapes). Every one must
    be refused with a 400 naming an element (CLI exit 2)."""
    def rec_subarray(f):
        _rec_base(f)
        d = f.create_dataset("uns/r", data=np.zeros(3, dtype=[("a", "<f8", (2,))]))
        _enc(d, "rec-array", "0.2.0")

    def rec_not_compound(f):
        _rec_base(f)
        _enc(f.create_dataset("uns/r", data=np.arange(3)), "rec-array", "0.2.0")

    def rec_2d(f):
        _rec_base(f)
        d = f.create_dataset("uns/r", data=np.zeros((2, 2), dtype=[("a", "<i4")]))
        _enc(d, "rec-array", "0.2.0")

    def rec_bad_enum(f):
        _rec_base(f)
        et = h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2}, basetype="i1")
        d = f.create_dataset("uns/r", shape=(3,), dtype=np.dtype([("c", et)]))
        _enc(d, "rec-array", "0.2.0")

    def rec_bad_utf8(f):
        _rec_base(f)
        d = f.create_dataset("uns/r", data=np.array([(b"\xff\xfe",)], dtype=[("s", "S2")]))
        _enc(d, "rec-array", "0.2.0")

    def obsm_compound_rows(f):
        _rec_base(f)  # 3 obs
        f["obsm"] = np.zeros(5, dtype=[("X_pca", "<f4", (2,))])

    def obsm_compound_strings(f):
        _rec_base(f)
        f["obsm"] = np.zeros(3, dtype=[("X_s", "S3", (2,))])

    def obs_compound_2d(f):
        _rec_base(f)
        f["obs"] = np.zeros((3, 1), dtype=[("index", "S3")])

    def nstr_mask_length(f):
        _rec_base(f)
        g = f.create_group("uns/s")
        _enc(g, "nullable-string-array", "0.1.0")
        g["values"] = np.array(["a", "b", "c"], dtype=VSTR)
        g["mask"] = np.array([True, False])

    def nstr_numeric_values(f):
        _rec_base(f)
        g = f.create_group("uns/s")
        _enc(g, "nullable-string-array", "0.1.0")
        g["values"] = np.arange(3)
        g["mask"] = np.zeros(3, dtype=bool)

    def nstr_missing_mask(f):
        _rec_base(f)
        g = f.create_group("uns/s")
        _enc(g, "nullable-string-array", "0.1.0")
        g["values"] = np.array(["a", "b", "c"], dtype=VSTR)

    def nstr_obs_rows(f):
        _rec_base(f)
        o = f.create_group("obs")
        o.attrs["_index"] = "_index"
        o["_index"] = np.array(["a", "b", "c"], dtype=VSTR)
        g = o.create_group("s")
        _enc(g, "nullable-string-array", "0.1.0")
        g["values"] = np.array(["a", "b"], dtype=VSTR)
        g["mask"] = np.zeros(2, dtype=bool)

    def null_with_data(f):
        _rec_base(f)
        _enc(f.create_dataset("uns/n", data=np.arange(3)), "null", "0.1.0")

    def bytes_array(f):
        _rec_base(f)
        _enc(f.create_dataset("uns/b", data=np.array([1, 2])), "bytes", "0.2.0")

    def neighbors_wrong_shape(f):
        _rec_base(f)
        _h5sparse(f.create_group("uns/neighbors/connectivities"), sp.random(4, 4, 0.5, "csr"))

    def awkward_in_obsm(f):
        _rec_base(f)
        _enc(f.create_group("obsm/awk"), "awkward-array", "0.1.0")

    def legacy_scalar_lies(f):
        _rec_base(f)
        f["uns/t"] = np.array([b"\xc3"], dtype="S1")  # truncated UTF-8

    return [(k, v) for k, v in locals().items() if callable(v)]


def write_fuzz(path, writer):
    with h5py.File(path, "w") as f:
        writer(f)
