"""The zigzag stage through the full k-NN path against an independent pipeline: numpy k-NN (direct
differences, ties by index), itertools cliques, the intersection zigzag built from science.md §1,
and Dionysus 2 for the barcode. Also the layer summaries recomputed from the bars."""
import itertools
import random
import shutil

import h5py
import numpy as np
import pytest

from conftest import run_lmtopo
from zigzag_oracle import dionysus_bars


def write_activations(path, x):
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "test", "git_sha": "test",
                        "git_dirty": 0, "config_json": "{}", "created_by": "{}"})
        d = f.create_dataset("activations/h", data=x.astype(np.float32))
        d.attrs["points"] = [f"layer{i}" for i in range(x.shape[0])]
        d.attrs["pooling"] = "last"
        d.attrs["hook"] = "h"
        n = x.shape[1]
        f["prompts/id"] = np.array([f"p{i}".encode() for i in range(n)])
        f["prompts/lang"] = np.array([b"en"] * n)
        f["prompts/group"] = np.arange(n, dtype=np.int64)
        f["prompts/n_tokens"] = np.ones(n, dtype=np.int64)


def knn_graph(points, k, metric):
    p = points.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(p, axis=1, keepdims=True)
        p = np.where(norms > 0, p / np.where(norms > 0, norms, 1), 0)
        d = 1.0 - p @ p.T
    else:
        d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    n = len(p)
    edges = set()
    for i in range(n):
        order = sorted((j for j in range(n) if j != i), key=lambda j: (d[i, j], j))
        for j in order[:k]:
            edges.add((min(i, j), max(i, j)))
    return edges


def flag_complex(n, edges, max_dim):
    adj = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    simplices = [(v,) for v in range(n)] + sorted(edges)
    for size in range(3, max_dim + 2):
        for c in itertools.combinations(range(n), size):
            if all(b in adj[a] for a, b in itertools.combinations(c, 2)):
                simplices.append(c)
    return set(simplices)


def intersection_zigzag(layers):
    L = len(layers)
    allsimp = sorted(set().union(*layers), key=lambda s: (len(s), s))
    order = {s: i for i, s in enumerate(allsimp)}
    last = 2 * L - 1

    def present(s, t):
        if t % 2 == 1:
            return s in layers[(t - 1) // 2]
        l = t // 2 - 1
        return s in layers[l] and s in layers[l + 1]

    events = []
    for s in allsimp:
        t = 1
        while t <= last:
            if present(s, t):
                b = t
                while b + 1 <= last and present(s, b + 1):
                    b += 1
                events.append((t, 1, len(s) - 1, order[s], True, s))
                events.append((b + 1, 0, -(len(s) - 1), order[s], False, s))
                t = b + 1
            else:
                t += 1
    events.sort(key=lambda e: e[:4])
    return [(e[4], e[5]) for e in events], [e[0] for e in events]


def expected_position_bars(x, k, max_dim, metric):
    L, n, _ = x.shape
    layers = [flag_complex(n, knn_graph(x[l], k, metric), max_dim) for l in range(L)]
    ops, times = intersection_zigzag(layers)
    m = len(ops)
    bars = []
    for dim, b, d in dionysus_bars(ops):
        birth = times[b - 1]
        death = times[d] if d < m else 2 * L
        if birth != death:
            bars.append((dim, birth, death))
    return sorted(bars)


def cases(seed, count):
    rng = random.Random(seed)
    for i in range(count):
        L, n, dim = rng.randint(2, 6), rng.randint(8, 22), rng.randint(2, 7)
        k, max_dim = rng.randint(1, 4), rng.choice([2, 2, 3])
        metric = rng.choice(["euclidean", "cosine"])
        g = np.random.default_rng(seed * 1000 + i)
        x = [g.normal(size=(n, dim))]
        for _ in range(L - 1):
            x.append(x[-1] + rng.choice([0.1, 0.4, 1.0]) * g.normal(size=(n, dim)))
        yield i, np.stack(x), k, max_dim, metric


@pytest.mark.parametrize("reducer,ranks,precision,dualize", [("twist", None, "mixed", "auto"),
                                                             ("distributed", 2, "mixed", "true"),
                                                             ("distributed", 4, "mixed", "false"),
                                                             ("chunk", None, "mixed", "true"),
                                                             ("distributed", 3, "mixed", "auto"),
                                                             ("twist", None, "float64", "true"),
                                                             ("distributed", 2, "mixed", "hybrid"),
                                                             ("chunk", None, "mixed", "hybrid")])
def test_knn_zigzag_matches_independent_pipeline(tmp_path, reducer, ranks, precision, dualize):
    n_cases = 25 if reducer == "twist" and precision == "mixed" else 8
    # A fixed seed per parameter set (Python's hash() is salted per process: a failure must reproduce).
    seed = {"twist": 11, "distributed": 23, "chunk": 37}[reducer] + (500 if precision == "float64" else 0) + (ranks or 0)
    # The steps in index order also go through the speculative pipeline (runs of 2) at 3 ranks, and
    # with the rows split over the ranks at 2.
    speculate = {3: ["--speculate-runs", "2"], 2: ["--row-split"]}.get(ranks, []) if reducer == "distributed" else []
    for i, x, k, max_dim, metric in cases(seed, n_cases):
        act, out = tmp_path / f"a{i}.h5", tmp_path / f"z{i}.h5"
        write_activations(act, x)
        dims = ",".join(str(p) for p in range(max_dim))
        run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", out, "-k", k, "--max-dim", max_dim,
                   "--dims", dims, "--metric", metric, "--reducer", reducer, "--knn-precision", precision,
                   "--dualize", dualize, *speculate, ranks=ranks)
        with h5py.File(out, "r") as f:
            got = sorted(tuple(int(v) for v in row) for row in f["bars/position"][:])
            mode = f.attrs["dualize_mode"]
            mode = mode.decode() if isinstance(mode, bytes) else str(mode)
            # auto on these small inputs (under 200,000 cone columns): the boundary matrix itself
            assert mode == {"true": "dualized", "false": "primal", "hybrid": "hybrid", "auto": "primal"}[dualize]
            assert int(f.attrs["dualize"]) == (0 if mode == "primal" else 1)
        assert got == expected_position_bars(x, k, max_dim, metric), f"case {i}: k={k} m={max_dim} {metric}"


def test_fzz_export_is_the_independent_intersection_zigzag(tmp_path):
    """`zigzag --fzz-output` writes the operation stream the stage reduced: the same operations, in the
    same order, as the intersection zigzag built here from numpy k-NN graphs and itertools cliques, and
    `lmtopo barcode` of the file gives Dionysus's bars of that stream."""
    for i, x, k, max_dim, metric in cases(71, 6):
        act, out, fzz, bars = tmp_path / f"a{i}.h5", tmp_path / f"z{i}.h5", tmp_path / f"f{i}.fzz", tmp_path / f"b{i}.txt"
        write_activations(act, x)
        # Odd cases: the distributed reducer, whose ranks make their own layers' operations and
        # send them to rank 0 for the file in turn (4 ranks: some own no layer when L < 4).
        extra = ["--reducer", "distributed"] if i % 2 else []
        run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", out, "-k", k, "--max-dim", max_dim,
                   "--metric", metric, "--fzz-output", fzz, *extra, ranks=(2, 4)[i // 2 % 2] if i % 2 else None)
        L, n, _ = x.shape
        layers = [flag_complex(n, knn_graph(x[l], k, metric), max_dim) for l in range(L)]
        ops, _ = intersection_zigzag(layers)
        lines = fzz.read_text().splitlines()
        assert int(lines[0]) == len(ops)
        got = [(line[0] == "i", tuple(int(v) for v in line.split()[1:])) for line in lines[1:]]
        assert got == ops, f"case {i}"
        run_lmtopo("barcode", fzz, "-o", bars)
        got_bars = sorted(tuple(int(v) for v in line.split()) for line in bars.read_text().splitlines())
        assert got_bars == sorted(dionysus_bars(ops)), f"case {i}"


def check_image_inter_layer_and_births(group, lb, L):
    """The remaining summaries re-derived with numpy from the effective bars lb = [(b, d)] (science.md
    section 1): the (L+1)x(L+1) image by np.add.at, Z(l,i) = PHSim/beta(l), Z-bar_alpha with the stated
    weights for alpha in -1, 0, 0.5, 1, 2, and the births' two readings."""
    b = np.array([x for x, _ in lb], dtype=int)
    d = np.array([y for _, y in lb], dtype=int)
    image = np.zeros((L + 1, L + 1), dtype=np.int64)
    np.add.at(image, (d, b), 1)
    assert np.array_equal(group["image"][:], image)
    ls = np.arange(L)
    alive = (b[None, :] <= ls[:, None]) & (d[None, :] > ls[:, None])  # [layer, bar]
    phsim = (alive[:, None, :] & alive[None, :, :]).sum(-1)  # holes alive at both, hence in between
    beta = np.diag(phsim).astype(float)
    z = np.divide(phsim, beta[:, None], out=np.zeros((L, L)), where=beta[:, None] > 0)
    assert np.allclose(group["similarity"][:], z)
    for a, alpha in enumerate([-1.0, 0.0, 0.5, 1.0, 2.0]):
        dist = np.abs(ls[:, None] - ls[None, :]).astype(float)
        with np.errstate(divide="ignore"):
            w = np.where(dist > 0, dist ** alpha, {True: 1e-10, False: 1.0 if alpha == 0 else 0.0}[alpha < 0])
        want = (w * z).sum(1) / w.sum(1)
        np.testing.assert_allclose(group["inter_layer"][a], want, rtol=1e-12, atol=1e-15, err_msg=f"alpha {alpha}")
    n = max(len(lb), 1)
    assert np.allclose(group["births_by_birth"][:], np.bincount(b, minlength=L)[:L] / n)
    assert np.allclose(group["births_by_death"][:], np.bincount(d, minlength=L + 1)[:L + 1] / n)


def test_summaries_follow_from_the_bars(tmp_path):
    _, x, k, _, metric = next(cases(77, 1))
    act, out = tmp_path / "a.h5", tmp_path / "z.h5"
    write_activations(act, x)
    run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", out, "-k", 3, "--metric", metric)
    L = x.shape[0]
    with h5py.File(out, "r") as f:
        bars = f["bars/position"][:]
        for p in (0, 1):
            lb = [(b // 2, d // 2) for dim, b, d in bars if dim == p and b // 2 != d // 2]
            betti = [sum(1 for b, d in lb if b <= l < d) for l in range(L)]
            assert list(f[f"summaries/h{p}/betti"][:]) == betti
            phsim = [[sum(1 for b, d in lb if b <= min(a, c) and d > max(a, c)) for c in range(L)] for a in range(L)]
            assert f[f"summaries/h{p}/phsim"][:].tolist() == phsim
            sbar = [sum(phsim[l][m] / betti[m] for m in range(L) if betti[m] > 0) / L for l in range(L)]
            assert np.allclose(f[f"summaries/h{p}/avg_similarity"][:], sbar)
            check_image_inter_layer_and_births(f[f"summaries/h{p}"], lb, L)
        assert int(f.attrs["k"]) == 3 and f.attrs["metric"].decode() in ("euclidean", "cosine")
    run_lmtopo("validate", out)


def test_bad_inputs_are_clear_errors(tmp_path):
    x = np.random.default_rng(1).normal(size=(3, 6, 4))
    act = tmp_path / "a.h5"
    write_activations(act, x)
    proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", "-k", 6, check=False)
    assert proc.returncode == 2 and "--k" in proc.stderr
    proc = run_lmtopo("zigzag", "--activations", act, "--hook", "nope", "-o", tmp_path / "z.h5", check=False)
    assert proc.returncode == 2 and "/activations/nope" in proc.stderr
    proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", "--dims", "0,2", check=False)
    assert proc.returncode == 2 and "--dims" in proc.stderr
    for extra, words in ((["--knn-precision", "half"], "--knn-precision"), (["--knn-device", "gpu"], "--knn-device"),
                         (["--knn-device", "cuda", "--knn-precision", "float64"], "mixed")):
        proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", *extra, check=False)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if not shutil.which("nvidia-smi"):  # no GPU here: a one-line failure (1; 2 where built without nvcc)
        proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", "--knn-device", "cuda",
                          check=False)
        assert proc.returncode in (1, 2) and "CUDA" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    x[1, 2, 0] = np.nan
    write_activations(act, x)
    proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", ranks=2, check=False)
    assert proc.returncode == 2 and "layer 1" in proc.stderr and "non-finite" in proc.stderr
    assert not (tmp_path / "z.h5").exists()


def test_memory_guard_refuses_before_building(tmp_path):
    x = np.random.default_rng(2).normal(size=(2, 40, 3))
    act = tmp_path / "a.h5"
    write_activations(act, x)
    proc = run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / "z.h5", "-k", 30,
                      "--max-dim", 6, "--dims", "0", "--mem-limit", 0.001, check=False)
    assert proc.returncode == 2 and "--mem-limit" in proc.stderr and "simplices" in proc.stderr


def test_permuted_prompts_null_draws_match_the_independent_pipeline(tmp_path):
    """--null-draws: each draw's layers hold the prompts in a permutation of their own (recorded in
    /null/prompts, a permutation per layer, and not the identity); its bars are the independent
    pipeline's on those permuted layers, and its S̄ and Betti curves follow from them."""
    from test_aggregate import summaries
    _, x, k, max_dim, metric = next(cases(71, 1))
    x = np.concatenate([x, x[-1:] + 0.3], axis=0)  # at least 3 layers
    act, out = tmp_path / "a.h5", tmp_path / "z.h5"
    write_activations(act, x)
    run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", out, "-k", k, "--max-dim", 2, "--dims", "0,1",
               "--metric", metric, "--null-draws", 2, "--null-seed", 5, ranks=2)
    run_lmtopo("validate", out)
    L, n = x.shape[:2]
    with h5py.File(out, "r") as f:
        rows = f["null/prompts"][:]
        sbar, betti = f["null/h1/avg_similarity"][:], f["null/h1/betti"][:]
        assert sorted(tuple(int(v) for v in r) for r in f["bars/position"][:]) == expected_position_bars(x, k, 2, metric)
    assert rows.shape == (2, L, n)
    for d in range(2):
        assert all(sorted(rows[d, l]) == list(range(n)) for l in range(L))
        assert any(list(rows[d, l]) != list(range(n)) for l in range(L))
        permuted = np.stack([x[l][rows[d, l]] for l in range(L)])
        want_sbar, want_betti = summaries(expected_position_bars(permuted, k, 2, metric), L)
        np.testing.assert_allclose(sbar[d], want_sbar, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(betti[d], want_betti)
