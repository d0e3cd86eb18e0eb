"""Compare utf8_valid (through utf8_driver) with Python's strict UTF-8
codec, which anndata, h5py and numpy's "U" dtype rely on.

Usage: utf8_vs_python.py <utf8_driver> [n_random]

Byte strings: every 1- and 2-byte string whose first byte is not ASCII,
every lead byte followed by boundary continuations, random mixes of valid
text and stray bytes. Either both accept, or both reject at the same
offset (UnicodeDecodeError.start). Exits 1 on any difference.
"""
import random
import subprocess
import sys


def main():
    driver = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    r = random.Random(7)
    cases = [b""]
    for a in range(0x80, 0x100):
        cases.append(bytes([a]))
        for b in range(0x100):
            cases.append(bytes([a, b]))
    edges = [0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0x41, 0xC0]
    for lead in range(0xC0, 0x100):
        for b in edges:
            for c in edges:
                cases.append(bytes([lead, b, c]))
                for d in (0x80, 0xBF, 0x41):
                    cases.append(bytes([lead, b, c, d]))
    alphabet = ["a", "é", "€", "😀", "\u07ff", "\uffff", "\U0010ffff", "\ud7ff", "\ue000"]
    for _ in range(n):
        parts = []
        for _ in range(r.randint(0, 12)):
            if r.random() < 0.8:
                parts.append(r.choice(alphabet).encode())
            else:
                parts.append(bytes([r.randint(0x80, 0xFF)]))
        s = b"".join(parts)
        if r.random() < 0.3 and s:
            s = s[: r.randint(0, len(s) - 1)]  # cut, perhaps inside a sequence
        cases.append(s)
    data = "".join((c.hex() or "-") + "\n" for c in cases)
    out = subprocess.run([driver], input=data.encode(), capture_output=True, check=True)
    got = out.stdout.decode().split("\n")
    if len(got) < len(cases):
        print("driver answered too few lines", file=sys.stderr)
        return 1
    bad = 0
    for c, g in zip(cases, got):
        try:
            c.decode("utf-8")
            want = "ok"
        except UnicodeDecodeError as e:
            want = str(e.start)
        if want != g:
            bad += 1
            if bad <= 20:
                print(f"{c.hex()}: python {want}, utf8_valid {g}")
    print(f"{len(cases)} byte strings compared, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
