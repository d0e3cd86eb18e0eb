"""Compare ad_fmt_pyfloat (through pyfloat_driver) with Python's repr(float),
and ad_fmt_npfloat32 with numpy's str(np.float32).

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
    # float32: random bit patterns and decimals near numpy's 1e-4 / 1e16
    # switch, which numpy decides on the value, not on the digits.
    import numpy as np
    f32 = [np.float32(v) for v in (1e-4, 9.9999e-5, 1e16, 9.99e15, 0.1, 3.4028235e38, 1e-45)]
    for _ in range(n):
        f32.append(np.frombuffer(struct.pack("<I", r.getrandbits(32)), dtype="<f4")[0])
        f32.append(np.float32(r.uniform(-1e6, 1e6)))
    lines = [struct.pack(">d", v).hex() for v in vals]
    lines += [struct.pack(">f", float(v)).hex() for v in f32]
    want = [repr(v) for v in vals] + [str(v) for v in f32]
    data = "".join(x + "\n" for x in lines)
    out = subprocess.run([driver], input=data.encode(), capture_output=True, check=True)
    got = out.stdout.decode().split("\n")
    bad = 0
    for x, w, g in zip(lines, want, got):
        if w != g:
            bad += 1
            if bad <= 20:
                print(f"{x}: Python/numpy {w}, ours {g}")
    if len(got) < len(lines):
        print("driver answered too few lines", file=sys.stderr)
        return 1
    print(f"{len(vals)} doubles and {len(f32)} float32 compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
