"""h5r_read on damaged and hostile h5ad files: each must be rejected with a
clear error (type, element pointer, message) and without a crash, a leak or
any output on stderr (under the ASan build every finding goes to stderr).

usage: test_h5read_corrupt.py <model_dump>
"""
import os
import shutil
import struct
import sys
import tempfile
import time
import warnings

import anndata
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5cmp import run_dump  # noqa: E402

warnings.filterwarnings("ignore")
BIN = sys.argv[1]


def base_file(path):
    n, m = 6, 4
    obs = pd.DataFrame({"grp": pd.Categorical(list("abcabc")),
                        "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64")},
                       index=[f"c{i}" for i in range(n)])
    a = anndata.AnnData(X=sp.random(n, m, density=0.5, format="csr", random_state=0),
                        obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(m)]))
    a.obsm["X_umap"] = np.zeros((n, 2))
    a.layers["dense"] = np.ones((n, m))
    a.uns["k"] = {"a": 1}
    a.write_h5ad(path)


def set_attr(obj, name, value):
    del obj.attrs[name]
    obj.attrs[name] = value


def mut_truncate(frac):
    def f(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            fh.truncate(int(size * frac) if frac < 1 else frac)
    return f


def mut_bytes(data):
    def f(path):
        with open(path, "wb") as fh:
            fh.write(data)
    return f


def h5(fn):
    def f(path):
        with h5py.File(path, "r+") as fh:
            fn(fh)
    return f


def replace_ds(group, name, data):
    attrs = dict(group[name].attrs)
    del group[name]
    group[name] = data
    for k, v in attrs.items():
        group[name].attrs[k] = v


def nest(fh, depth):
    g = fh["uns"]
    for i in range(depth):
        g = g.create_group(f"d{i}")


def external_storage(fh):
    ext = os.path.join(os.path.dirname(fh.filename), "ext.bin")
    with open(ext, "wb") as e:
        e.write(b"\0" * 16)
    fh["uns"].create_dataset("ext", shape=(2,), dtype="f8", external=[(ext, 0, 16)])


def corrupt_chunk(path):
    # A gzip-compressed dataset whose compressed bytes are overwritten.
    with h5py.File(path, "r+") as fh:
        d = fh["uns"].create_dataset("z", data=np.arange(5000, dtype="f8"), compression="gzip",
                                     chunks=(5000,))
        off = d.id.get_offset() if d.id.get_offset() is not None else None
        info = d.id.get_chunk_info(0)
        off, size = info.byte_offset, info.size
    with open(path, "r+b") as fh:
        fh.seek(off + 8)
        fh.write(b"\xff" * min(64, size - 8))


# Byte patches of HDF5 metadata, as the fuzzer makes them. h5py writes
# version-1 object headers: a 16-byte prefix, then messages of type (2
# bytes), size (2), flags and 3 reserved bytes, then the message body.
def header_messages(path, name):
    with h5py.File(path, "r") as fh:
        addr = h5py.h5o.get_info(fh[name].id).addr
    with open(path, "rb") as fh:
        b = fh.read()
    size = struct.unpack_from("<I", b, addr + 8)[0]
    i, end, out = addr + 16, addr + 16 + size, {}
    while i < end:
        t, sz = struct.unpack_from("<HH", b, i)
        out.setdefault(t, i + 8)
        i += 8 + sz
    return out


def patch(path, off, data):
    with open(path, "r+b") as fh:
        fh.seek(off)
        fh.write(data)


def chunked_indptr(path):
    with h5py.File(path, "r+") as fh:
        d = fh["X/indptr"][:]
        del fh["X/indptr"]
        fh["X"].create_dataset("indptr", data=d, chunks=(len(d),))


def scalar_chunked_indptr(path):
    # The case: the dataspace says scalar (rank byte 0), the layout
    # stays chunked; libhdf5 1.10's H5Dread then loops allocating forever.
    chunked_indptr(path)
    patch(path, header_messages(path, "X/indptr")[1] + 1, b"\0")


def chunk_rank_0(path):
    # Layout message v3: version, class (2 = chunked), dimensionality (chunk
    # rank + 1, the last "dimension" is the element size).
    chunked_indptr(path)
    lay = header_messages(path, "X/indptr")[8]
    with open(path, "rb") as fh:
        fh.seek(lay)
        assert fh.read(3) == b"\x03\x02\x02"
    patch(path, lay + 2, b"\x01")


def huge_vlen_length(path):
    # The first string of the obs index claims 2 GiB: libhdf5 would allocate
    # that before reading the (tiny) heap object.
    with h5py.File(path, "r") as fh:
        off = fh["obs/_index"].id.get_offset()
    patch(path, off, struct.pack("<I", 0x7FFFFFF0))


def huge_vlen_length_after_user_block(path):
    # The same in a file with a 512-byte user block before the superblock:
    # HDF5's raw-data offsets already count it.
    tmp = path + ".ub"
    with h5py.File(path, "r") as src, h5py.File(tmp, "w", userblock_size=512) as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for k in src:
            src.copy(src[k], dst, k)
    os.replace(tmp, path)
    huge_vlen_length(path)


def huge_default_index(path):
    # No obs: the default index of 2^31 - 1 rows (X's shape) would be built
    # uncharged (~40 GB).
    with h5py.File(path, "r+") as fh:
        del fh["obs"]
        del fh["obsm"]
        del fh["layers"]
        del fh["X"]
        g = fh.create_group("X")
        g.attrs["encoding-type"] = "csc_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array([2**31 - 1, 4])
        g["data"] = np.zeros(0, "f4")
        g["indices"] = np.zeros(0, "i4")
        g["indptr"] = np.zeros(5, "i8")


# (name, mutation, expected error type, expected pointer, word in the detail)
CASES = [
    ("truncated half", mut_truncate(0.5), "schema", "", "truncated"),
    ("truncated 100 bytes", mut_truncate(100), None, "", ""),
    ("not hdf5", mut_bytes(b"PK\x03\x04 not an hdf5 file at all" * 10), "schema", "", "HDF5"),
    ("empty file", mut_bytes(b""), "schema", "", "HDF5"),
    ("indptr past nnz", h5(lambda f: f["X/indptr"].__setitem__(-1, 10**6)), "schema", "/X",
     "indptr"),
    ("indptr decreasing", h5(lambda f: f["X/indptr"].__setitem__(2, 0)), "schema", "/X",
     "indptr"),
    ("indptr not from 0", h5(lambda f: f["X/indptr"].__setitem__(0, 1)), "schema", "/X",
     "indptr[0]"),
    ("indptr wrong length", h5(lambda f: replace_ds(f["X"], "indptr", f["X/indptr"][:-2])),
     "shape-mismatch", "/X", "indptr"),
    ("index out of range", h5(lambda f: f["X/indices"].__setitem__(0, 99)), "schema", "/X",
     "indices"),
    ("negative index", h5(lambda f: f["X/indices"].__setitem__(0, -3)), "schema", "/X",
     "indices"),
    ("negative shape", h5(lambda f: set_attr(f["X"], "shape", np.array([-6, 4]))), "schema",
     "/X", "negative"),
    ("huge shape", h5(lambda f: set_attr(f["X"], "shape", np.array([2**62, 4]))), "limit-exceeded",
     "/X", "max_dim"),
    ("shape of 3", h5(lambda f: set_attr(f["X"], "shape", np.array([6, 4, 1]))), "schema",
     "/X", "2 integers"),
    ("code out of range", h5(lambda f: f["obs/grp/codes"].__setitem__(0, 7)), "schema",
     "/obs/grp", "code 7"),
    ("code below -1", h5(lambda f: f["obs/grp/codes"].__setitem__(1, -5)), "schema",
     "/obs/grp", "code -5"),
    ("duplicate categories", h5(lambda f: replace_ds(f["obs/grp"], "categories", np.array(["a", "b", "a"], dtype=object).astype(h5py.string_dtype()))),
     "schema", "/obs/grp", "distinct"),
    ("NaN category", h5(lambda f: replace_ds(f["obs/grp"], "categories", np.array([1.0, np.nan, 2.0]))),
     "schema", "/obs/grp", "NaN"),
    ("missing index", h5(lambda f: f["obs"].__delitem__("_index")), "schema", "/obs", ""),
    ("missing categories", h5(lambda f: f["obs/grp"].__delitem__("categories")), "schema",
     "/obs/grp/categories", "missing"),
    ("unknown encoding", h5(lambda f: set_attr(f["obsm/X_umap"], "encoding-type", "awkward-array")),
     "schema", "/obsm/X_umap", "awkward-array"),
    ("unknown group encoding", h5(lambda f: set_attr(f["uns/k"], "encoding-type", "sparse-tensor")),
     "schema", "/uns/k", "sparse-tensor"),
    ("wrong-rank X", h5(lambda f: (f.__delitem__("X"), f.__setitem__("X", np.zeros(6)))),
     "schema", "/X", "2-d"),
    ("X shape vs obs", h5(lambda f: set_attr(f["X"], "shape", np.array([5, 4]))), None, "/X", ""),
    ("string X", h5(lambda f: (f.__delitem__("X"), f.__setitem__("X", np.array([["a"] * 4] * 6, dtype="S1")))),
     "schema", "/X", "numeric"),
    ("encoding-type not a string", h5(lambda f: set_attr(f["obs"], "encoding-type", 5)),
     "schema", "/obs", "encoding-type"),
    ("_index not a string", h5(lambda f: set_attr(f["obs"], "_index", np.array([1, 2]))),
     "schema", "/obs", "_index"),
    ("column-order names a missing column",
     h5(lambda f: set_attr(f["obs"], "column-order", np.array(["grp", "n", "ghost"], dtype=object).astype(h5py.string_dtype()))),
     "schema", "/obs/ghost", "missing"),
    ("column-order escapes the frame",
     h5(lambda f: set_attr(f["obs"], "column-order", np.array(["/X/data"], dtype=object).astype(h5py.string_dtype()))),
     "schema", "/obs", "not a member name"),
    ("_index escapes the frame", h5(lambda f: set_attr(f["obs"], "_index", "../var/_index")), "schema",
     "/obs", "not a member name"),
    ("column too short", h5(lambda f: replace_ds(f["obs/n"], "values", f["obs/n/values"][:3])),
     "shape-mismatch", "/obs/n", "mask"),
    ("obsm rows", h5(lambda f: replace_ds(f["obsm"], "X_umap", np.zeros((5, 2)))), "shape-mismatch",
     "/obsm/X_umap", "expected 6 rows"),
    ("layer shape", h5(lambda f: replace_ds(f["layers"], "dense", np.ones((6, 3)))), "shape-mismatch",
     "/layers/dense", "expected 6 x 4"),
    ("soft link", h5(lambda f: f["uns"].__setitem__("loop", h5py.SoftLink("/uns"))), "schema",
     "/uns/loop", "link"),
    ("external link", h5(lambda f: f["uns"].__setitem__("ext", h5py.ExternalLink("/etc/passwd", "/x"))),
     "schema", "/uns/ext", "link"),
    ("external storage", h5(external_storage), "schema", "/uns/ext", "external"),
    ("hard-link cycle", h5(lambda f: f["uns/k"].__setitem__("again", f["uns"])), "limit-exceeded",
     "/uns/k/again/k/again", "max_depth"),
    ("nesting too deep", h5(lambda f: nest(f, 70)), "limit-exceeded", "/uns/d0/d1", "max_depth"),
    ("corrupt gzip chunk", corrupt_chunk, "schema", "/uns/z", "filter"),
    ("non-bool enum", h5(lambda f: f["uns"].create_dataset(
        "e", data=np.array([0, 1, 2], dtype="i1"), dtype=h5py.enum_dtype({"A": 0, "B": 1, "C": 2}, basetype="i1"))),
     "schema", "/uns/e", "enum"),
    ("scalar dataspace, chunked layout", scalar_chunked_indptr, "schema", "/X/indptr",
     "scalar dataspace"),
    ("chunk rank differs from the dataspace's", chunk_rank_0, "schema", "/X/indptr",
     "rank 0 for a dataspace of rank 1"),
    ("string length past the file", huge_vlen_length, "schema", "/obs/_index",
     "more than the whole file"),
    ("string length past the file, user block", huge_vlen_length_after_user_block, "schema",
     "/obs/_index", "more than the whole file"),
    ("default index of 2^31 rows", huge_default_index, "limit-exceeded", "/obs",
     "default index"),
    ("bool mask as float", h5(lambda f: replace_ds(f["obs/n"], "mask", np.zeros(6))), "schema",
     "/obs/n", "mask must be bool"),
]


def main():
    failures = []
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "base.h5ad")
        base_file(base)
        j = run_dump(BIN, "h5ad", base)
        if not j["ok"]:
            print(f"the unmodified base file must read: {j['error']}")
            sys.exit(1)
        for i, (name, mut, etype, ptr, word) in enumerate(CASES):
            p = os.path.join(d, f"case{i}.h5ad")
            shutil.copy(base, p)
            mut(p)
            t0 = time.monotonic()
            try:
                j = run_dump(BIN, "h5ad", p)
            except AssertionError as e:  # crash or sanitizer output
                failures.append(f"{name}: {e}")
                continue
            if j["ok"]:
                failures.append(f"{name}: accepted")
                continue
            e = j["error"]
            bad = []
            if etype and e["type"] != etype:
                bad.append(f"type {e['type']} (want {etype})")
            if ptr is not None and ptr and not e["pointer"].startswith(ptr):
                bad.append(f"pointer {e['pointer']!r} (want {ptr!r})")
            if word and word.lower() not in e["detail"].lower():
                bad.append(f"detail {e['detail']!r} lacks {word!r}")
            if not e["detail"]:
                bad.append("empty detail")
            took = time.monotonic() - t0
            if took > 10:  # hostile files must be refused before the work, not after
                bad.append(f"took {took:.1f} s")
            if bad:
                failures.append(f"{name}: " + "; ".join(bad))
            else:
                print(f"ok {name}: {e['type']} {e['pointer']} {e['detail']}")
    if failures:
        print("FAILURES:\n" + "\n".join(failures))
        sys.exit(1)
    print(f"{len(CASES)} corrupt variants rejected")


if __name__ == "__main__":
    main()
