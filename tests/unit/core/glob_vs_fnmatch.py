"""Compare glob_match (through glob_driver) with Python's fnmatch.fnmatchcase.

Usage: glob_vs_fnmatch.py <glob_driver> [n_random]

Cases: a hand list of bracket quirks plus seeded random patterns and names
over an alphabet that hits every construct ("*", "?", "[abc]", "[!a]",
"[a-z]", "[z-a]", "[]]", "[!]]", unclosed "[", backslashes, "/", non-ASCII),
and long ones: segments between stars longer than 64 code points (several
words of the bit-parallel search), over names made from the pattern with
noise, so that the leftmost placement of each segment is put to the test.
Exits 1 listing every disagreement.
"""
import fnmatch
import random
import subprocess
import sys

HAND = [
    ("*", ""), ("*", "abc"), ("?", ""), ("?", "a"), ("??", "a"), ("a*b", "a/x/b"),
    ("[abc]", "b"), ("[abc]", "d"), ("[!a]", "a"), ("[!a]", "b"), ("[!a]", "/"),
    ("[a-z]", "m"), ("[a-z]", "M"), ("[z-a]", "m"), ("[z-a]", "z"), ("[z-a]", "-"),
    ("[]]", "]"), ("[]]", "a"), ("[!]]", "]"), ("[!]]", "a"), ("[]a]", "a"),
    ("[", "["), ("[a", "[a"), ("[!", "[!"), ("a[", "a["), ("[]", "[]"), ("[!]", "[!]"),
    ("\\", "\\"), ("\\*", "\\x"), ("\\*", "*"), ("[\\]", "\\"), ("[\\]]", "\\]"),
    ("[a-]", "-"), ("[-a]", "-"), ("[a-c-e]", "d"), ("[a-c-e]", "-"), ("[a-c-e]", "e"),
    ("[c-a-e]", "b"), ("[c-a-e]", "d"), ("[c-a-e]", "-"), ("[--0]", "."), ("[---]", "-"),
    ("[a--]", "-"), ("[a--]", "+"), ("[!a-c]", "b"), ("[!a-c]", "d"), ("[%--]", "+"),
    ("[é]", "é"), ("?", "é"), ("??", "é"), ("[à-ü]", "é"), ("*é", "café"), ("[!é]", "e"),
    ("✓*", "✓ok"), ("[✓]", "✓"), ("a/b", "a/b"), ("a?b", "a/b"), ("[/]", "/"),
    ("X_*", "X_pca"), ("X_*", "x_pca"), ("kmeans_*", "kmeans_polis"), ("*_*", "_"),
    ("**", ""), ("*a*a*a*", "aaa"), ("*a*a*a*", "aa"), ("[[]", "["), ("[*]", "*"),
    ("[?]", "?"), ("[?]", "a"), ("[!!]", "!"), ("[!!]", "a"), ("[a-a]", "a"),
    ("[^a]", "^"), ("[^a]", "b"), ("[a-c", "[a-c"), ("a]", "a]"), ("]", "]"),
    ("[b-a]", "a"), ("[b-a]", "-"), ("[z-a0]", "0"), ("[0z-a]", "0"), ("[z-a-]", "-"),
    ("[-z-a]", "-"), ("[a-z-]", "-"), ("[a-z-0]", "0"), ("[a-b-c-d]", "c"), ("[d-c-b-a]", "b"),
    ("[d-c-b-a]", "-"), ("[d-c-b-a]", "d"), ("[d-c-b-a]", "a"), ("[a-]]", "-]"),
    # merging an empty range can move a "!" to the front: translate() then
    # negates ("[z-b!-]" is "[^-]"), or leaves "!" alone (matches anything)
    ("[z-b!-]", "x"), ("[z-b!-]", "-"), ("[c-0!a]", "y"), ("[c-0!a]", "a"), ("[b-!!]", "b"),
    ("[z-a!z]", "]"), ("[!z-a-b]", "-"), ("[!z-a-b]", "c"), ("[!z-a]", "q"), ("[a-z-a]", "-"),
    ("[b-a-a]", "-"), ("[b-a-a]", "b"),
]

ALPHA_P = ["a", "b", "z", "-", "]", "[", "!", "*", "?", "\\", "/", "é", "✓", "0", "^"]
ALPHA_S = ["a", "b", "c", "m", "z", "-", "]", "[", "!", "\\", "/", "é", "✓", "0", "^", "*", "?"]


def rand_pattern(r):
    parts = []
    for _ in range(r.randint(0, 6)):
        k = r.random()
        if k < 0.25:
            # a bracket expression, sometimes unclosed
            inner = "".join(r.choice(ALPHA_P) for _ in range(r.randint(0, 4)))
            neg = "!" if r.random() < 0.3 else ""
            close = "]" if r.random() < 0.85 else ""
            parts.append("[" + neg + inner + close)
        elif k < 0.4:
            parts.append(r.choice("*?"))
        else:
            parts.append(r.choice(ALPHA_P))
    return "".join(parts)


def rand_bracket_case(r):
    # dense in "-" and "!" so that chunk merging and late negation happen
    inner = "".join(r.choice("ab-z]![é0c") for _ in range(r.randint(0, 10)))
    pat = "[" + inner + "]" + ("*" if r.random() < 0.3 else "")
    name = r.choice("abcz-]![é0xy") + ("" if r.random() < 0.7 else r.choice("ab]"))
    return pat, name


LONG_ATOMS = ["a", "b", "a", "b", "?", "[ab]", "[!a]", "[a-b]", "[b-a-]", "é", "[é]"]


def rand_long_case(r):
    elems = []
    for _ in range(r.randint(1, 300)):
        elems.append("*" if r.random() < 0.02 else r.choice(LONG_ATOMS))
    pat = "".join(elems)
    out = []
    for e in elems:
        if e == "*":
            out.append("".join(r.choice("abé") for _ in range(r.randint(0, 40))))
        elif e in ("?", "[ab]", "[a-b]"):
            out.append(r.choice("ab"))
        elif e == "[!a]":
            out.append(r.choice("bé"))
        elif e == "[b-a-]":
            out.append("-")  # the merge leaves "[-]"
        elif e == "[é]":
            out.append("é")
        else:
            out.append(e)
        if r.random() < 0.002:
            out.append(r.choice("abé"))  # noise: a near miss, or a shifted match
    name = "".join(out)
    if r.random() < 0.3:
        name = "".join(r.choice("ab") for _ in range(r.randint(0, 3))) + name
    return pat, name


def repro_cases():
    # the shapes that were quadratic, scaled down for Python's sake
    run = "a" * 3000
    return [("*" + "a" * 400 + "c*", run + "7"), ("*" + "a" * 400 + "c*", run + "c"),
            ("*" + "[a]" * 130 + "c*", run + "c"), ("*" + "a?" * 200 + "c*", run + "c"),
            ("*" + "a?" * 200 + "c*", run), ("*" + "[ab]" * 100 + "c*", run + "bc"),
            ("*a" * 200 + "*", run), ("*a" * 200 + "b", run + "b")]


def rand_name(r, pattern):
    if r.random() < 0.3:
        # derive from the pattern so that matches are common
        return "".join(c for c in pattern if c not in "[]!*?") or "a"
    return "".join(r.choice(ALPHA_S) for _ in range(r.randint(0, 5)))


def main():
    driver = sys.argv[1]
    n_random = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    r = random.Random(20240611)
    cases = list(HAND) + repro_cases()
    for _ in range(n_random):
        p = rand_pattern(r)
        cases.append((p, rand_name(r, p)))
        cases.append(rand_bracket_case(r))
    for _ in range(n_random // 5):
        cases.append(rand_long_case(r))
    expected = []
    kept = []
    for pat, name in cases:
        try:
            expected.append(fnmatch.fnmatchcase(name, pat))
        except Exception:  # a pattern translate() rejects has no reference answer
            continue
        kept.append((pat, name))
    cases = kept
    data = "".join(
        pat.encode().hex() + " " + name.encode().hex() + "\n" for pat, name in cases
    )
    out = subprocess.run([driver], input=data.encode(), capture_output=True, check=True)
    got = [line == "1" for line in out.stdout.decode().split()]
    if len(got) != len(cases):
        print(f"driver answered {len(got)} of {len(cases)} cases", file=sys.stderr)
        return 1
    bad = [(c, e) for c, e, g in zip(cases, expected, got) if e != g]
    for (pat, name), e in bad:
        print(f"fnmatchcase({name!r}, {pat!r}) is {e}, glob_match says {not e}")
    n_true = sum(expected)
    print(f"{len(cases)} cases ({n_true} matching), {len(bad)} disagreements")
    # a generator that never produces matches (or never non-matches) would
    # make this test unable to fail
    if n_true < len(cases) // 10 or n_true > len(cases) * 9 // 10:
        print("case mix is degenerate", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
