#!/usr/bin/env python3
"""scripts/seeds-cpython.py - the source material's experiments in CPython,
on this machine, for the README's tables next to `racelab bench seeds`.

    python3 scripts/seeds-cpython.py [--base URL] [--runs N]

factorize: the four numbers * 4, factors by trial division over every
candidate (as the source does); sha256: ten 1 MiB buffers with hashlib
(which releases the GIL); rc4: ten 64 KiB buffers in pure Python (smaller
than racelab's ten 149-384 KB: pure-Python RC4 runs about 1 MB/s);
flags: the 21 flags from a flagserver (BASE, default: start
build/release/bin/flagserver --latency-ms 100) with urllib.  Each mode
prints the median of N runs and the speedup over sequential.  Not a test:
it only reports.
"""
import argparse
import concurrent.futures as cf
import hashlib
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
import urllib.request

NUMBERS = [2139079, 1214759, 1516637, 1852285] * 4
CODES = "CN IN US ID BR PK NG BD RU JP KR MX PH VN ET EG DE IR TR CD FR".split()


def factorize(number):
    return [i for i in range(1, number + 1) if number % i == 0]


def sha256(buf):
    return hashlib.sha256(buf).hexdigest()


def rc4(args):
    key, data = args
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray(len(data))
    i = j = 0
    for k, byte in enumerate(data):
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out[k] = byte ^ s[(s[i] + s[j]) % 256]
    return bytes(out)


def fetch(item):
    base, cc = item
    url = f"{base}/flags/{cc.lower()}/{cc.lower()}.gif"
    with urllib.request.urlopen(url, timeout=10) as r:
        return len(r.read())


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_modes(name, fn, items, runs, counts=(1, 2, 4)):
    seq = statistics.median(timed(lambda: list(map(fn, items))) for _ in range(runs))
    print(f"{name:10} sequential      1  {seq:8.3f} s   1.00x")
    kinds = [("threads", cf.ThreadPoolExecutor)]
    kinds.append(("processes", lambda n: cf.ProcessPoolExecutor(n, mp_context=mp.get_context("forkserver"))))
    for label, make in kinds:
        for n in counts:
            with make(n) as ex:
                list(ex.map(fn, items[:n]))  # start the workers first
                t = statistics.median(timed(lambda: list(ex.map(fn, items))) for _ in range(runs))
            print(f"{name:10} {label:12} {n:4}  {t:8.3f} s {seq / t:6.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print(f"CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {a.runs} runs")
    run_modes("factorize", factorize, NUMBERS, a.runs)
    bufs = [os.urandom(1 << 20) for _ in range(10)]
    run_modes("sha256", sha256, bufs, a.runs)
    rc4_items = [(os.urandom(16), os.urandom(64 << 10)) for _ in range(10)]
    run_modes("rc4", rc4, rc4_items, a.runs)
    server = None
    base = a.base
    if not base:
        exe = os.path.join(os.path.dirname(__file__), "..", "build", "release", "bin", "flagserver")
        server = subprocess.Popen([exe, "--latency-ms", "100"], stdout=subprocess.PIPE, text=True)
        base = server.stdout.readline().split()[-1]
    try:
        run_modes("flags", fetch, [(base, cc) for cc in CODES], a.runs, counts=(1, 4, 21))
    finally:
        if server:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
