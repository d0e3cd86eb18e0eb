"""The decoder's numbers against Python's: every token the generator makes is
parsed by num_driver (jn_parse on the bare token, and the whole parser on a
JSON array of the valid ones) and compared with what json.loads gives:
int → int64 / uint64 / out of range, real → the bits of float(token), and
the tokens JSON does not allow (leading zeros, "1.", ".5", "+1", ...)
refused. Deterministic seed. Usage: num_vs_python.py NUM_DRIVER [COUNT]
"""
import json
import random
import re
import struct
import subprocess
import sys

GRAMMAR = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")

EDGES = [
    "0", "-0", "0.0", "-0.0", "0e0", "-0e-5", "1e308", "1.7976931348623157e308",
    "1.7976931348623158e308", "1.7976931348623159e308", "1e309", "-1e400", "1e-400",
    "4.9e-324", "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
    "2.2250738585072011e-308", "2.2250738585072014e-308", "9007199254740993",
    "9007199254740993.0", "1e23", "8.98846567431158e307", "0.1", "0.3", "1e22", "1e-22",
    "123456789012345678901234567890", "123456789012345678901234567890.5",
    "1e0000000000000000000010", "1E+2", "1e-0", "1.000000000000000000000000001",
    "0.000000000000000000000000000000000000000000001", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "-18446744073709551615",
    "140737488355327", "140737488355328", "-140737488355328", "-140737488355329",
    "3.141592653589793238462643383279", "2.718281828459045", "1e-7", "123.456e-789",
    "7.2057594037927933e16", "1" + "0" * 400, "0." + "0" * 400 + "1",
    "1e99999", "-1e99999", "1e-99999",
    # not JSON
    "01", "-01", "00", "1.", ".5", "+1", "1e", "1e+", "--1", "-", "", "0x10", "1.5e3.2",
    "Infinity", "NaN", "1.e5", "1e5.0", "-.5", "1_000", "١",
]


def expected(tok):
    if not GRAMMAR.fullmatch(tok):
        return "BAD"
    v = json.loads(tok)
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return "I %d" % v
        if 2**63 <= v < 2**64:
            return "U %d" % v
        return "RANGE"
    return "R %016x" % struct.unpack("<Q", struct.pack("<d", v))[0]


def rand_token(rng):
    k = rng.random()
    sign = "-" if rng.random() < 0.3 else ""
    if k < 0.2:  # integers of every width
        return sign + str(rng.randrange(0, 10 ** rng.randint(1, 21)))
    nd = rng.choice([1, 2, 3, 5, 8, 12, 15, 16, 17, 18, 19, 20, 25, 40])
    digits = "".join(rng.choice("0123456789") for _ in range(nd)).lstrip("0") or "0"
    point = rng.randint(0, len(digits))
    intpart, frac = digits[:point] or "0", digits[point:]
    tok = sign + intpart
    if frac or rng.random() < 0.5:
        tok += "." + (frac or "0")
    if rng.random() < 0.6:
        e = rng.choice([rng.randint(-30, 30), rng.randint(-340, 310), rng.randint(-400, 400)])
        es = str(abs(e))
        if rng.random() < 0.05:
            es = "0" * rng.randint(1, 30) + es  # long exponents
        tok += rng.choice("eE") + ("-" if e < 0 else rng.choice(["", "+"])) + es
    if rng.random() < 0.01:  # a malformed one now and then
        tok = rng.choice(["0", "+", "."]) + tok
    return tok


def run(driver, mode, tokens):
    out = subprocess.run([driver, mode], input="\n".join(tokens) + "\n", capture_output=True,
                         text=True, check=True).stdout.split("\n")[:-1]
    assert len(out) == len(tokens), (len(out), len(tokens))
    return out


def main():
    driver = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    rng = random.Random(20261202)
    tokens = EDGES + [rand_token(rng) for _ in range(count)]
    want = [expected(t) for t in tokens]
    bad = 0
    for tok, w, g in zip(tokens, want, run(driver, "tok", tokens)):
        if w != g:
            bad += 1
            if bad <= 20:
                print("token %r: python %s, decoder %s" % (tok, w, g))
    valid = [(t, w) for t, w in zip(tokens, want) if w not in ("BAD", "RANGE")]
    for (tok, w), g in zip(valid, run(driver, "doc", [t for t, _ in valid])):
        if w != g:
            bad += 1
            if bad <= 40:
                print("in a document, token %r: python %s, decoder %s" % (tok, w, g))
    print("%d tokens (%d valid), %d mismatches" % (len(tokens), len(valid), bad))
    sys.exit(1 if bad else 0)


main()
