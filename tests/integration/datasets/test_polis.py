"""polis_read_dir on the real Polis export fixture, compared with
  1. the same matrix built with pandas (stable sort by timestamp,
     drop_duplicates keep last, pivot), and
  2. polis_real.json, which valency-anndata's loader built from this export;
plus hand-made exports with quoting, CRLF, BOM, missing comments, text ids
and malformed files that must fail with a pointer to file/record/column.

usage: test_polis.py <model_dump>
"""
import json
import os
import sys
import tempfile

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5cmp import Cmp, json_array, run_dump, same_values  # noqa: E402

BIN = sys.argv[1]
SHARED = os.environ["ADX_SHARED"]
FIX = os.path.join(SHARED, "fixtures", "polis_real")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def pandas_reference(d):
    votes = pd.read_csv(os.path.join(d, "votes.csv"))
    s = votes.sort_values("timestamp", kind="stable")
    s = s.drop_duplicates(subset=["voter-id", "comment-id"], keep="last")
    m = s.pivot(index="voter-id", columns="comment-id", values="vote")
    return s.reset_index(drop=True), m


def col_values(j):
    """A model column as a list with None for missing cells."""
    enc = j["encoding-type"]
    if enc == "object":
        return j["cells"]
    if enc == "nullable-boolean":
        v = json_array(j["values"]).tolist()
        m = json_array(j["mask"]).tolist()
        return [None if mm else vv for vv, mm in zip(v, m)]
    return json_array(j).tolist()


def norm(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    return v


def test_fixture():
    j = run_dump(BIN, "polis", FIX)
    assert j["ok"], j
    a = j["adata"]
    sorted_votes, m = pandas_reference(FIX)

    # 1. pandas
    X = json_array(a["X"])
    check(a["X"]["dtype"] == "float64", "X must be float64")
    check(X.shape == m.shape, f"X shape {X.shape} vs pandas {m.shape}")
    check(same_values(X, m.to_numpy(dtype=float)), "X differs from the pandas pivot")
    check(a["obs"]["index"] == [str(x) for x in m.index], "obs index differs from pivot")
    check(a["var"]["index"] == [str(x) for x in m.columns], "var index differs from pivot")
    check(a["obs"]["index_name"] == "voter-id", "obs index name")
    check(a["var"]["index_name"] == "comment-id", "var index name")
    uv = a["uns"]["votes"]
    check(uv["column_order"] == list(sorted_votes.columns), "uns votes columns")
    check(uv["index"] == [str(i) for i in range(len(sorted_votes))], "uns votes index")
    for c in sorted_votes.columns:
        check([norm(x) for x in col_values(uv["columns"][c])] ==
              [norm(x) for x in sorted_votes[c]], f"uns votes column {c} differs from pandas")
    check(uv["columns"]["timestamp"]["dtype"] == "int64", "timestamp is int64")
    check(uv["columns"]["datetime"]["dtype"] == "str", "datetime is text")

    # 2. polis_real.json (what the reference loader built from this export)
    ref = json.load(open(os.path.join(SHARED, "fixtures", "polis_real.json")))["adata"]
    RX = np.array([[np.nan if v is None else v for v in row] for row in ref["X"]], dtype=float)
    check(same_values(X, RX), "X differs from polis_real.json")
    check(a["obs"]["index"] == ref["obs"]["index"], "obs index differs from polis_real.json")
    check(a["var"]["index"] == ref["var"]["index"], "var index differs from polis_real.json")
    check(a["obs"]["index_name"] == ref["obs"]["index_name"], "obs index_name vs json")
    check(a["var"]["index_name"] == ref["var"]["index_name"], "var index_name vs json")
    for c in ("content", "participant_id_authored", "created_date", "moderation_state"):
        check([norm(x) for x in col_values(a["var"]["columns"][c])] == ref["var"]["columns"][c],
              f"var column {c} differs from polis_real.json")
    # is_seed / is_meta come only from columns the export has (this one has neither)
    check("is_seed" not in a["var"]["columns"], "is_seed must not be invented")
    rv = ref["uns"]["votes"]
    check(len(uv["index"]) == len(rv["index"]), "uns votes length vs json")
    check(uv["index"] == rv["index"], "uns votes index vs json")
    # The reference sorted with pandas' default (unstable) quicksort, so rows
    # with equal timestamps may be in another order: compare as multisets and
    # the timestamp order exactly.
    ours = sorted(zip(*[col_values(uv["columns"][c]) for c in rv["columns"]]))
    theirs = sorted(zip(*[rv["columns"][c] for c in rv["columns"]]))
    check(ours == theirs, "uns votes rows differ from polis_real.json")
    check(col_values(uv["columns"]["timestamp"]) == rv["columns"]["timestamp"],
          "uns votes timestamps order")
    us, rs = a["uns"]["statements"], ref["uns"]["statements"]
    check(us["index"] == rs["index"], "uns statements index vs json")
    for c in us["column_order"]:
        check(c in rs["columns"], f"statements column {c} not in json")
        if c in rs["columns"]:
            check([norm(x) for x in col_values(us["columns"][c])] == rs["columns"][c],
                  f"uns statements column {c} differs from polis_real.json")
    check(a["uns"]["votes_meta"]["items"]["n_votes"]["data"] == [ref["uns"]["votes_meta"]["n_votes"]],
          "votes_meta n_votes")
    print("ok polis fixture")


def write(d, name, text, raw=False):
    with open(os.path.join(d, name), "wb") as f:
        f.write(text if raw else text.encode())


def test_tricky(base):
    d = os.path.join(base, "tricky")
    os.mkdir(d)
    # BOM, CRLF, quoted separators / quotes / newlines, a re-vote, a vote on a
    # comment missing from comments.csv, a comment nobody voted on, an empty
    # text cell and an empty vote.
    write(d, "votes.csv", b"\xef\xbb\xbftimestamp,datetime,comment-id,voter-id,vote\r\n"
          b"10,x,1,5,1\r\n"
          b"11,\"a, b\",1,5,-1\r\n"
          b"5,x,2,10,0\r\n"
          b"12,x,9,5,1\r\n"
          b"12,x,2,5,\r\n", raw=True)
    write(d, "comments.csv",
          "timestamp,comment-id,author-id,moderated,comment-body,is-seed\n"
          "1,1,5,1,\"He said \"\"hi\"\", then\nleft\",True\n"
          "2,2,10,-1,,False\n"
          "3,3,10,0,never voted on,\n")
    j = run_dump(BIN, "polis", d)
    assert j["ok"], j
    a = j["adata"]
    check(a["obs"]["index"] == ["5", "10"], f"tricky obs index {a['obs']['index']}")
    check(a["var"]["index"] == ["1", "2", "9"], f"tricky var index {a['var']['index']}")
    X = json_array(a["X"])
    want = np.array([[-1, np.nan, 1], [np.nan, 0, np.nan]])
    check(same_values(X, want), f"tricky X {X.tolist()}")
    cont = col_values(a["var"]["columns"]["content"])
    check(cont == ['He said "hi", then\nleft', None, None], f"tricky content {cont}")
    seed = col_values(a["var"]["columns"]["is_seed"])
    check(seed == [True, False, None], f"tricky is_seed {seed}")
    auth = col_values(a["var"]["columns"]["participant_id_authored"])
    check(same_values(auth, [5.0, 10.0, np.nan]), f"tricky author (float with NaN) {auth}")
    dt = col_values(a["uns"]["votes"]["columns"]["datetime"])
    check(dt == ["x", "a, b", "x", "x"], f"tricky kept datetimes {dt}")
    ts = col_values(a["uns"]["votes"]["columns"]["timestamp"])
    check(ts == [5, 11, 12, 12], f"tricky kept votes in time order {ts}")
    check(any(e["action"] == "missing_statement" for e in j["report"]), "missing comment reported")

    # text ids sort bytewise and stay text
    d2 = os.path.join(base, "textids")
    os.mkdir(d2)
    write(d2, "votes.csv", "timestamp,comment-id,voter-id,vote\n1,c,p2,1\n2,a,p1,-1\n")
    write(d2, "comments.csv", "comment-id,comment-body\na,A\nc,C\n")
    j = run_dump(BIN, "polis", d2)
    assert j["ok"], j
    check(j["adata"]["obs"]["index"] == ["p1", "p2"], "text voter ids")
    check(j["adata"]["var"]["index"] == ["a", "c"], "text comment ids")
    print("ok polis tricky inputs")


BAD = [
    ("ragged", "timestamp,comment-id,voter-id,vote\n1,1,1,1\n2,1,2\n", None,
     "/votes.csv/3", "fields"),
    ("bad vote", "timestamp,comment-id,voter-id,vote\n1,1,1,1\n2,1,2,yes\n", None,
     "/votes.csv/3/vote", "not a number"),
    ("bad timestamp", "timestamp,comment-id,voter-id,vote\nnow,1,1,1\n", None,
     "/votes.csv/2/timestamp", "timestamp"),
    ("unterminated quote", "timestamp,comment-id,voter-id,vote\n1,1,1,\"1\n", None,
     "/votes.csv/2", "unterminated"),
    ("no vote column", "timestamp,comment-id,voter-id\n1,1,1\n", None, "/votes.csv/1", "vote"),
    ("empty id", "timestamp,comment-id,voter-id,vote\n1,,1,1\n", None,
     "/votes.csv/2/comment-id", "empty id"),
    ("duplicate comment", "timestamp,comment-id,voter-id,vote\n1,1,1,1\n",
     "comment-id,comment-body\n1,a\n1,b\n", "/comments.csv/3/comment-id", "duplicate"),
    ("text after quote", "timestamp,comment-id,voter-id,vote\n1,\"1\"x,1,1\n", None,
     "/votes.csv/2", "closing quote"),
    ("empty file", "", None, "/votes.csv/1", "header"),
    ("bad utf8", b"timestamp,comment-id,voter-id,vote\n1,1,1,1\xff\n", None, "/votes.csv/1", "UTF-8"),
]


def test_bad(base):
    for i, (name, votes, comments, ptr, word) in enumerate(BAD):
        d = os.path.join(base, f"bad{i}")
        os.mkdir(d)
        write(d, "votes.csv", votes, raw=isinstance(votes, bytes))
        write(d, "comments.csv", comments or "comment-id,comment-body\n1,a\n")
        j = run_dump(BIN, "polis", d)
        if j["ok"]:
            failures.append(f"bad polis '{name}' was accepted")
            continue
        e = j["error"]
        check(e["pointer"] == ptr, f"bad polis '{name}': pointer {e['pointer']!r}, want {ptr!r}")
        check(word.lower() in e["detail"].lower(), f"bad polis '{name}': detail {e['detail']!r}")
    d = os.path.join(base, "missing")
    os.mkdir(d)
    write(d, "votes.csv", "timestamp,comment-id,voter-id,vote\n")
    j = run_dump(BIN, "polis", d)
    check(not j["ok"] and j["error"]["type"] == "not-found" and
          j["error"]["pointer"] == "/comments.csv", f"missing comments.csv: {j}")
    print("ok polis malformed inputs")


def test_random_ties(base):
    """Many re-votes and equal timestamps: X and the kept votes must be what
    pandas' stable sort + drop_duplicates(keep='last') + pivot give."""
    d = os.path.join(base, "random")
    os.mkdir(d)
    rng = np.random.default_rng(3)
    n = 20000
    v = pd.DataFrame({"timestamp": rng.integers(0, 300, n), "comment-id": rng.integers(0, 60, n),
                      "voter-id": rng.integers(0, 200, n), "vote": rng.integers(-1, 2, n)})
    v.to_csv(os.path.join(d, "votes.csv"), index=False)
    pd.DataFrame({"comment-id": range(60), "comment-body": ["x"] * 60}).to_csv(
        os.path.join(d, "comments.csv"), index=False)
    s, m = pandas_reference(d)
    j = run_dump(BIN, "polis", d)
    assert j["ok"], j
    check(same_values(json_array(j["adata"]["X"]), m.to_numpy(dtype=float)), "random X vs pandas")
    cols = j["adata"]["uns"]["votes"]["columns"]
    for c in v.columns:
        check(json_array(cols[c]).tolist() == s[c].tolist(), f"random kept votes column {c}")
    print("ok polis random re-votes and ties")


def test_rewrite(base):
    """Model -> sanitize -> h5w_write -> anndata.read_h5ad, as an export of a
    stored Polis dataset would go."""
    import anndata
    _, m = pandas_reference(FIX)
    out = os.path.join(base, "polis.h5ad")
    j = run_dump(BIN, "polis", FIX, out)
    assert j["ok"], j
    ad = anndata.read_h5ad(out)
    check(same_values(ad.X, m.to_numpy(dtype=float)), "rewritten X differs from pandas")
    check(list(ad.obs_names) == [str(x) for x in m.index], "rewritten obs names")
    check(list(ad.var_names) == [str(x) for x in m.columns], "rewritten var names")
    check(ad.obs.index.name == "voter-id" and ad.var.index.name == "comment-id",
          "rewritten index names")
    check(len(ad.uns["votes"]) == len(json_array(j["adata"]["X"])[~np.isnan(json_array(j["adata"]["X"]))]),
          "uns votes rows = seen cells")
    out2 = os.path.join(base, "tricky.h5ad")
    j = run_dump(BIN, "polis", os.path.join(base, "tricky"), out2)
    assert j["ok"], j
    ad = anndata.read_h5ad(out2)
    check(list(ad.var["content"]) == ['He said "hi", then\nleft', "", ""],
          f"sanitized content {list(ad.var['content'])}")
    check(any(e["path"] == "/var/content" and e["action"] == "null_to_empty_string" and
              e["count"] == 2 for e in j["report"]), f"sanitize report {j['report']}")
    seed = [None if pd.isna(x) else bool(x) for x in ad.var["is_seed"]]
    check(seed == [True, False, None] and str(ad.var["is_seed"].dtype) == "boolean",
          f"nullable is_seed {seed} {ad.var['is_seed'].dtype}")
    print("ok polis rewritten through sanitize + h5w_write")


def main():
    test_fixture()
    with tempfile.TemporaryDirectory() as base:
        test_tricky(base)
        test_bad(base)
        test_random_ties(base)
        test_rewrite(base)
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
