"""Compare ad_fmt_pyfloat (through pyfloat_driver) with Python's repr(float).

Usage: pyfloat_vs_python.py <pyfloat_driver> [n_random]

Doubles: random bit patterns (every exponent, subnormals, NaN payloads,
infinities), random "human" decimals like 0.1 * k and 10**k boundaries where
repr switches between fixed and exponent notation. Exits 1 on any
difference.
"""
import random
import struct
import subprocess
import sys


def main():
    driver = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    r = random.Random(11)
    vals = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 5e-324, -5e-324,
            2.2250738585072014e-308, 1.7976931348623157e308]
    for e in range(-330, 310):
        for m in (1.0, 9.999999999999999, 1.5, 9.5):
            try:
                vals.append(float(f"{m}e{e}"))
            except OverflowError:
                pass
    for _ in range(n):
        vals.append(struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0])
        vals.append(round(r.uniform(-1e6, 1e6), r.randint(0, 12)))
        vals.append(r.randint(-10**17, 10**17) / 10 ** r.randint(0, 20))
    data = "".join(struct.pack(">d", v).hex() + "\n" for v in vals)
    out = subprocess.run([driver], input=data.encode(), capture_output=True, check=True)
    got = out.stdout.decode().split("\n")
    bad = 0
    for v, g in zip(vals, got):
        if repr(v) != g:
            bad += 1
            if bad <= 20:
                print(f"{struct.pack('>d', v).hex()}: repr {repr(v)}, ad_fmt_pyfloat {g}")
    if len(got) < len(vals):
        print("driver answered too few lines", file=sys.stderr)
        return 1
    print(f"{len(vals)} doubles compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
