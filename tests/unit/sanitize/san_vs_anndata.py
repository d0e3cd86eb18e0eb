"""Sanitize + strings_to_categoricals on the Polis fixture, against the file
anndata 0.8 wrote for the same request (polis_real.expected.h5ad).

Usage: san_vs_anndata.py <san_dump>   (ADX_SHARED names the shared folder)

Checks, for obs, var and every uns DataFrame the expected file holds: the
same columns; string and categorical columns identical (values, categories
and their order, codes and codes dtype); and the report entries the
sanitization of this fixture must produce.
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

fails = []


def check(cond, msg):
    if not cond:
        fails.append(msg)


def text(a):
    return [x.decode() if isinstance(x, bytes) else str(x) for x in a]


def main():
    shared = os.environ["ADX_SHARED"]
    req = os.path.join(shared, "fixtures", "polis_real.json")
    exp = h5py.File(os.path.join(shared, "fixtures", "polis_real.expected.h5ad"), "r")
    out = subprocess.run([sys.argv[1], req], capture_output=True, check=True)
    got = json.loads(out.stdout)
    frames = got["frames"]

    n_compared = 0
    for name in ["obs", "var"] + ["uns/" + k for k in exp["uns"]
                                  if exp["uns"][k].attrs.get("encoding-type") == "dataframe"]:
        g = exp[name]
        check(name in frames, f"{name}: no such DataFrame after sanitize")
        if name not in frames:
            continue
        mine = frames[name]
        want_cols = list(g.attrs["column-order"])
        check(sorted(mine) == sorted(want_cols), f"{name}: columns {sorted(mine)} != {sorted(want_cols)}")
        for col in want_cols:
            if col not in mine:
                continue
            e, m = g[col], mine[col]
            enc = e.attrs["encoding-type"]
            where = f"{name}/{col}"
            if enc == "categorical":
                check(m["kind"] == "categorical", f"{where}: {m['kind']}, anndata wrote categorical")
                if m["kind"] != "categorical":
                    continue
                cats = e["categories"][...]
                if cats.dtype.kind in "OSU":
                    check(m["categories"]["values"] == text(cats),
                          f"{where}: categories {m['categories']['values'][:8]} != {text(cats)[:8]}")
                check(m["codes"]["values"] == e["codes"][...].tolist(), f"{where}: codes differ")
                check(m["codes"]["dtype"] == str(e["codes"].dtype),
                      f"{where}: codes {m['codes']['dtype']} != {e['codes'].dtype}")
                n_compared += 1
            elif enc == "string-array":
                check(m["kind"] == "string-array", f"{where}: {m['kind']}, anndata wrote string-array")
                if m["kind"] == "string-array":
                    check(m["values"] == text(e[...]), f"{where}: values differ")
                    n_compared += 1
            else:
                # numeric columns are the decoder's; sanitize must not have
                # turned them into text
                check(m["kind"] not in ("string-array", "categorical", "object"),
                      f"{where}: {m['kind']}, anndata wrote {enc}")

    rep = {(e["path"], e["action"]): e["count"] for e in got["report"]}
    n_stmt = exp["uns/statements/_index"].shape[0]
    expect = {
        ("/var/is_seed", "null_to_empty_string"): 46,
        ("/var/is_meta", "null_to_empty_string"): 46,
        ("/uns/statements/is-seed", "null_to_empty_string"): n_stmt,
        ("/uns/statements/mixed", "mixed_to_string"): 23,
        ("/uns/source/base_url", "dropped_null"): 1,
    }
    lang = exp["uns/statements/lang"][...]
    expect[("/uns/statements/lang", "null_to_empty_string")] = sum(1 for x in lang if x in (b"", ""))
    for k, v in expect.items():
        check(rep.get(k) == v, f"report {k}: {rep.get(k)} != {v}")
    check("source" in got["uns_keys"], "uns/source was dropped entirely")
    check(not any(a == "nested_to_json_string" for _, a in rep), "unexpected nested_to_json entry")

    print(f"{n_compared} string/categorical columns compared, {len(got['report'])} report entries")
    for f in fails:
        print("FAIL", f)
    if n_compared < 5:
        print("FAIL too few columns compared", file=sys.stderr)
        return 1
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
