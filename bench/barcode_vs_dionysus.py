#!/usr/bin/env python3
"""`lmtopo barcode` against Dionysus 2's zigzag_homology_persistence on the same k-NN intersection
zigzags (L layers of N drifting random points in dimension 64, k-NN graph symmetrised by OR, flag
complexes to dimension 2), serial on both sides, in this one run. GUDHI's zigzag module is not in
its PyPI builds (3.13 has none and PyPI has no source distribution), so Dionysus 2 is the named
baseline. Reports wall seconds and peak RSS of each side (each in its own process, /usr/bin/time),
Dionysus' seconds inside zigzag_homology_persistence alone, the ratios, and checks the bars agree.

Usage: .venv/bin/python bench/barcode_vs_dionysus.py [L N [L N ...]]   (default: 4 500 6 1000 12 2000)
Environment: DIONYSUS_CAP_S (default 900): Dionysus runs longer than this are stopped and reported
as "> cap" (the speed-up is then a lower bound and the bars are not compared).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The intersection zigzag exactly as the tests rebuild it from science.md §1 (one definition).
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from test_zigzag_knn import intersection_zigzag  # noqa: E402
LMTOPO = os.path.join(ROOT, "build", "lmtopo")
K, MAX_DIM = 10, 2

DIONYSUS = r"""
import math, sys, time
import dionysus as d
ops = []
with open(sys.argv[1]) as f:
    for line in f:
        p = line.split()
        if p and p[0] in ("i", "d"):
            ops.append(tuple(sorted(int(v) for v in p[1:])))
times, order = {}, []
for k, s in enumerate(ops, start=1):
    if s not in times:
        times[s] = []
        order.append(s)
    times[s].append(k)
f = d.Filtration([d.Simplex(list(s)) for s in order])
tl = [times[tuple(sorted(s))] for s in f]
t0 = time.perf_counter()
_, dgms, _ = d.zigzag_homology_persistence(f, tl)
t1 = time.perf_counter()
m = len(ops)
with open(sys.argv[2], "w") as out:
    for dim, dgm in enumerate(dgms):
        for p in dgm:
            death = m if math.isinf(p.death) else int(p.death) - 1
            out.write(f"{dim} {int(p.birth)} {death}\n")
print(f"zigzag_homology_persistence {t1 - t0:.3f}")
"""


def layer_complex(x):
    """Flag complex (vertices, edges, triangles) of the OR-symmetrised exact k-NN graph."""
    n = len(x)
    idx = NearestNeighbors(n_neighbors=K + 1).fit(x).kneighbors(x, return_distance=False)
    adj = [set() for _ in range(n)]
    for i in range(n):
        for j in idx[i][1:]:
            if j != i:
                adj[i].add(int(j))
                adj[int(j)].add(i)
    simplices = {(v,) for v in range(n)}
    for a in range(n):
        for b in adj[a]:
            if b > a:
                simplices.add((a, b))
                if MAX_DIM >= 2:
                    for c in adj[a] & adj[b]:
                        if c > b:
                            simplices.add((a, b, c))
    return simplices


def timed(cmd, cap=None):
    """Wall seconds and peak RSS (MiB) of one command, via GNU time; None when it ran past `cap`."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib %M", *cmd], capture_output=True, text=True,
                              timeout=cap)
    except subprocess.TimeoutExpired:
        return None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{proc.stderr}")
    rss = int(re.search(r"maxrss_kib (\d+)", proc.stderr).group(1)) / 1024
    return wall, rss, proc.stdout


def read_bars(path):
    with open(path) as f:
        return sorted(tuple(map(int, line.split())) for line in f if line.strip())


def main():
    args = [int(a) for a in sys.argv[1:]] or [4, 500, 6, 1000, 12, 2000]
    cap = float(os.environ.get("DIONYSUS_CAP_S", "900"))
    print(f"k = {K}, max_dim = {MAX_DIM}; lmtopo barcode --reducer twist (serial); Dionysus 2 "
          f"zigzag_homology_persistence (serial)")
    print(f"{'L x N':<12}{'ops':>10}{'lmtopo s':>10}{'lmtopo MiB':>12}{'primal s':>10}{'Dionysus s':>12}"
          f"{'(zigzag only)':>14}{'Dionysus MiB':>14}{'speed-up':>10}{'memory':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for L, N in zip(args[::2], args[1::2]):
            g = np.random.default_rng(0)
            x = g.normal(size=(N, 64))
            layers = []
            for _ in range(L):
                layers.append(layer_complex(x))
                x = x + 0.3 * g.normal(size=(N, 64))
            ops = [("i" if inserted else "d", s) for inserted, s in intersection_zigzag(layers)[0]]
            fzz = os.path.join(tmp, f"z{L}x{N}.fzz")
            with open(fzz, "w") as f:
                f.write(f"{len(ops)}\n")
                for kind, s in ops:
                    f.write(kind + " " + " ".join(map(str, s)) + "\n")
            mine, theirs, primal = (os.path.join(tmp, n) for n in ("mine.bars", "theirs.bars", "primal.bars"))
            t_l, rss_l, _ = timed([LMTOPO, "barcode", "--format", "fzz", fzz, "-o", mine, "--reducer", "twist"])
            t_p, _, _ = timed([LMTOPO, "barcode", "--format", "fzz", fzz, "-o", primal, "--reducer", "twist",
                               "--dualize", "false"])
            script = os.path.join(tmp, "dio.py")
            with open(script, "w") as f:
                f.write(DIONYSUS)
            dio = timed([sys.executable, script, fzz, theirs], cap=cap)
            if dio is None:
                print(f"{f'{L} x {N}':<12}{len(ops):>10,}{t_l:>10.2f}{rss_l:>12.1f}{t_p:>10.2f}{f'> {cap:.0f}':>12}{'':>14}"
                      f"{'':>14}{f'> {cap / t_l:.0f}':>9}x" + ("" if read_bars(mine) == read_bars(primal) else "   BARS DIFFER"))
                continue
            t_d, rss_d, out = dio
            t_dz = float(re.search(r"zigzag_homology_persistence ([0-9.]+)", out).group(1))
            same = read_bars(mine) == read_bars(theirs) == read_bars(primal)
            print(f"{f'{L} x {N}':<12}{len(ops):>10,}{t_l:>10.2f}{rss_l:>12.1f}{t_p:>10.2f}{t_d:>12.2f}{t_dz:>14.2f}"
                  f"{rss_d:>14.1f}{t_dz / t_l:>9.1f}x{rss_l / rss_d:>8.2f}" + ("" if same else "   BARS DIFFER"))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
