"""Compare the decoder's typing of uns lists with numpy's np.array on the
same values (null given to numpy as NaN, as payload.md's Matrix rules say),
and of plain DataFrame columns with pandas' Series (payload.md "Column":
booleans with null are nullable-boolean, strings alone a string array, every
other object column is left to sanitize).

Random rectangular nested lists of ints, reals, booleans, nulls and strings;
ragged lists must become one JSON cell (numpy refuses them). Deterministic
seed, so a failure reproduces. Usage: test_numpy_inference.py JDEC_INFER
"""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pandas as pd


def leaf(rng, kinds):
    k = rng.choice(kinds)
    if k == "int":
        return rng.randint(-5, 5)
    if k == "real":
        return rng.choice([0.5, -1.25, 3.0, 1e-7, 2.5e10])
    if k == "bool":
        return rng.random() < 0.5
    if k == "null":
        return None
    return rng.choice(["a", "bb", "", "x y"])


def nested(rng, shape, kinds):
    if not shape:
        return leaf(rng, kinds)
    return [nested(rng, shape[1:], kinds) for _ in range(shape[0])]


def flat(x):
    if isinstance(x, list):
        for y in x:
            yield from flat(y)
    else:
        yield x


def expected(value):
    """(encoding, dtype, shape) the decoder must produce."""
    vals = list(flat(value))
    kinds = {type(v) for v in vals}
    np_val = json.loads(json.dumps(value).replace("null", "NaN"))  # None -> nan for numpy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arr = np.array(np_val)
    shape = ",".join(str(d) for d in arr.shape)
    if not vals:
        return ("array", "float64", shape)
    has_num = any(t in (int, float) for t in kinds)
    if str in kinds:
        if kinds == {str}:
            assert arr.dtype.kind == "U"
            return ("string-array", "str", shape)
        return ("object", "-", shape)
    if type(None) in kinds and not has_num:
        return ("object", "-", shape)  # bools / all null with null: sanitize decides
    # numeric or bool: numpy decides
    name = {"b": "bool", "i": "int64", "f": "float64"}[arr.dtype.kind]
    return ("array", name, shape)


def expected_column(values):
    if not values:
        return ("array", "float64", "0")
    n = str(len(values))
    kinds = {type(v) for v in values}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = pd.Series(values).dtype
    if dt.kind in "ifb":
        return ("array", {"i": "int64", "f": "float64", "b": "bool"}[dt.kind], n)
    assert dt == object
    if kinds == {str}:
        return ("string-array", "str", n)
    if kinds == {bool, type(None)}:
        return ("nullable-boolean", "-", "")
    return ("object", "-", n)


def main():
    driver = sys.argv[1]
    rng = random.Random(20261123)
    kinds_pool = [["int"], ["real"], ["bool"], ["int", "real"], ["int", "null"],
                  ["bool", "int"], ["bool", "real", "null"], ["str"], ["str", "null"],
                  ["str", "int"], ["null"], ["bool", "null"], ["int", "real", "bool", "null"]]
    cases = {}
    for i in range(300):
        nd = rng.randint(1, 3)
        shape = [rng.randint(0 if rng.random() < 0.1 else 1, 4) for _ in range(nd)]
        cases["c%d" % i] = nested(rng, shape, rng.choice(kinds_pool))
    columns = {}
    for i in range(300):
        n = rng.randint(0 if rng.random() < 0.05 else 1, 6)
        columns["f%d" % i] = [leaf(rng, rng.choice(kinds_pool)) for _ in range(n)] \
            if rng.random() < 0.3 else nested(rng, [n], rng.choice(kinds_pool))
    frames = {k: {"encoding-type": "dataframe", "columns": {"v": v}} for k, v in columns.items()}
    ragged = {"r0": [[1, 2], [3]], "r1": [1, [2]], "r2": [[1], [{"a": 1}]], "r3": [{"k": None}]}
    # what pandas itself writes with to_json, split and records
    df = pd.DataFrame({"i": [1, 2, 3], "f": [0.5, np.nan, 2.0], "s": ["a", "b", "c"],
                       "b": [True, False, True], "o": ["x", None, "z"], "m": [1, "a", 2.5]},
                      index=[10, 20, 30])
    frames["df_split"] = dict(json.loads(df.to_json(orient="split")), **{"encoding-type": "dataframe"})
    frames["df_records"] = {"encoding-type": "dataframe", "data": json.loads(df.to_json(orient="records"))}
    want_cols = {"i": ("array", "int64"), "f": ("array", "float64"), "s": ("string-array", "str"),
                 "b": ("array", "bool"), "o": ("object", "-"), "m": ("object", "-")}
    doc = {"adata": {"uns": dict(cases, **ragged, **frames)}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
        path = f.name
    try:
        out = subprocess.run([driver, path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if out.returncode != 0:
        print("driver failed:", out.stderr)
        return 1
    got = {}
    bad = 0
    for line in out.stdout.splitlines():
        parts = line.split(" ")
        if parts[0].startswith("df_") and parts[1] == "rows":
            want_index = ["10", "20", "30"] if parts[0] == "df_split" else ["0", "1", "2"]
            if parts[2] != "3" or parts[4:] != want_index:
                bad += 1
                print("MISMATCH frame rows/index", line)
            continue
        got[parts[0]] = (parts[1], parts[2], parts[3] if len(parts) > 3 else "")
    for form in ("df_split", "df_records"):
        for c, w in want_cols.items():
            if got.get(form + "/" + c) != w + ("",):
                bad += 1
                print("MISMATCH", form, c, "want", w, "got", got.get(form + "/" + c))
    for k, v in cases.items():
        want = expected(v)
        if got.get(k) != want:
            bad += 1
            print("MISMATCH", k, json.dumps(v), "want", want, "got", got.get(k))
    for k, v in columns.items():
        want = expected_column(v)
        if got.get(k) != want:
            bad += 1
            print("MISMATCH column", k, json.dumps(v), "want", want, "got", got.get(k))
    for k in ragged:
        if got.get(k) != ("object", "-", ""):
            bad += 1
            print("MISMATCH ragged", k, "got", got.get(k))
    print("%d cases, %d mismatches" % (len(cases) + len(ragged) + len(columns), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
