"""Compare ad_natural_cmp (through natsort_driver) with what anndata 0.8
does to order categories: natsort.natsorted over pandas' sorted categories.

Usage: natsort_vs_python.py <natsort_driver> [n_lists]

Random lists mix ASCII text and digits with accented letters (precomposed
and decomposed), Hangul syllables, Arabic-Indic and fullwidth digits and
superscripts, so NFD, Unicode decimals and single non-decimal digits are all
exercised. Exits 1 listing every list sorted differently.
"""
import random
import subprocess
import sys

from natsort import natsorted

PIECES = ["a", "b", "A", "z", "x", " ", ".", "-", "_", "0", "1", "2", "9", "00", "10", "007",
          "123456789012345678901", "é", "e\u0301", "É", "f", "ñ", "n", "à", "한", "가", "ᄀ",
          "٣", "٠", "١٢", "１", "２", "²", "³", "①", "Ω", "ω", "ä", "a\u0308"]


def rand_str(r):
    return "".join(r.choice(PIECES) for _ in range(r.randint(0, 4)))


def enc(s):
    return s.encode().hex() if s else "-"


def main():
    driver = sys.argv[1]
    n_lists = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    r = random.Random(7)
    lists = []
    for _ in range(n_lists):
        vals = sorted({rand_str(r) for _ in range(r.randint(2, 25))})  # pandas' categories
        try:
            want = natsorted(vals)
        except TypeError:  # natsort itself cannot order it: no reference
            continue
        lists.append((vals, want))
    data = "".join("".join(enc(s) + "\n" for s in vals) + "\n" for vals, _ in lists)
    out = subprocess.run([driver], input=data.encode(), capture_output=True, check=True)
    blocks = out.stdout.decode().split("\n\n")
    bad = 0
    for (vals, want), block in zip(lists, blocks):
        got = ["" if h == "-" else bytes.fromhex(h).decode() for h in block.split("\n") if h]
        if got != want:
            bad += 1
            print("want", want, "\n got", got)
    print(f"{len(lists)} lists compared, {bad} ordered differently")
    if len(lists) < n_lists // 2:
        print("too few comparable lists", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
