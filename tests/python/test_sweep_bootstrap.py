"""`lmtopo sweep --bootstrap`: percentile intervals over prompts, against an independent recomputation.

The oracle regenerates the draws (a pure-Python MT19937-64, checked against the value the C++
standard fixes for it), resamples the data in numpy as docs/methods.md defines each metric's draw —
rows recomputed (CKA, paired cosine family), per-prompt scores of the full set averaged (mutual k-NN,
retrieval), per-prompt TwoNN ratios refitted, and for LRDS/SADS the resampled parallel set itself
with a sentence's own copies not counted as pairs — and takes numpy's percentiles. lmtopo computes
LRDS/SADS from weighted sentence-pair sums instead, so that case compares two different
computations. Then the aggregate carries the intervals onto its depth grid, at 1 and 2 ranks."""
import csv

import h5py
import numpy as np
import pytest

from conftest import run_lmtopo
from test_aggregate import barcode, on_grid
from test_sweep import cka_biased, cka_unbiased, cos_paired, f32, write_activations

MASK = (1 << 64) - 1
B = 40
LEVEL = 0.9


class MT19937_64:
    """The 64-bit Mersenne Twister as the C++ standard specifies std::mt19937_64."""

    def __init__(self, seed):
        self.mt = [seed & MASK]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK)
        self.i = 312

    def __call__(self):
        if self.i >= 312:
            mt = self.mt
            for k in range(312):
                x = (mt[k] & 0xFFFFFFFF80000000) | (mt[(k + 1) % 312] & 0x7FFFFFFF)
                mt[k] = mt[(k + 156) % 312] ^ (x >> 1) ^ (0xB5026F5AA96619E9 if x & 1 else 0)
            self.i = 0
        x = self.mt[self.i]
        self.i += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & MASK


def test_the_oracle_generator_is_the_standard_one():
    g = MT19937_64(5489)
    for _ in range(9999):
        g()
    assert g() == 9981545732273789042  # [rand.predef]: the 10000th output of a default-constructed mt19937_64


def draws_of(dataset, units):
    seed = int(dataset.attrs["seed"].decode().split()[0])
    g = MT19937_64(seed)
    return np.array([[g() % units for _ in range(units)] for _ in range(B)])


def interval(replicates):
    return np.percentile(np.asarray(replicates), [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])


def knn_sets(z, k):
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = zn @ zn.T
    out = []
    for i in range(len(z)):
        order = [j for j in np.lexsort((np.arange(len(z)), -s[i])) if j != i]
        out.append(set(order[:k]))
    return out


def mutual_knn_scores(x, y, k):
    return np.array([len(a & b) / k for a, b in zip(knn_sets(x, k), knn_sets(y, k))])


def twonn_ratios(x):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    s = np.sort(d, axis=1)
    return s[:, 1] / s[:, 0]


def twonn_fit(mu, discard=0.1):
    mu = np.sort(mu)
    n = len(mu)
    keep = min(n - 1, int(np.floor(n * (1 - discard))))
    xs = np.log(mu[:keep])
    ys = -np.log(1 - np.arange(1, keep + 1) / n)
    return (xs @ ys) / (xs @ xs)


def answer_ranks(x, y):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    s = xn @ yn.T
    return np.array([np.sum((s[i] > s[i, i]) | ((s[i] == s[i, i]) & (np.arange(len(s)) < i))) for i in range(len(s))])


def lrds_sads_resampled(per_language, draw):
    """LRDS and SADS of the parallel set resampled by sentences: rows keep their sentence's id, so a
    copy of a translation is a translation and a sentence is never paired with its own copy."""
    x = np.concatenate([rows[draw] for rows in per_language])
    langs = np.repeat(np.arange(len(per_language)), len(draw))
    groups = np.tile(draw, len(per_language))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = xn @ xn.T
    same_l, same_g = langs[:, None] == langs[None, :], groups[:, None] == groups[None, :]
    other = ~same_l & ~same_g
    return c[same_l & ~same_g].mean() - c[other].mean(), c[~same_l & same_g].mean() - c[other].mean()


def run_sweep(tmp_path, files, pairs, metrics, ranks, name="out"):
    args = ["sweep", "--hook", "h", "--pairs", pairs, "-o", tmp_path / f"{name}.h5", "--knn", "4",
            "--bootstrap", B, "--confidence", LEVEL, "--seed", 7]
    for f in files:
        args += ["--activations", f]
    for m in metrics:
        args += ["--metric", m]
    run_lmtopo(*args, ranks=ranks)
    run_lmtopo("validate", tmp_path / f"{name}.h5")
    return h5py.File(tmp_path / f"{name}.h5", "r")


@pytest.fixture(scope="module")
def layers():
    g = np.random.default_rng(11)
    x = [g.normal(size=(30, 10))]
    for _ in range(2):
        x.append(np.tanh(x[-1] @ g.normal(size=(10, 10)) * 0.5) + 0.2 * g.normal(size=(30, 10)))
    return f32(np.stack(x))


@pytest.mark.parametrize("ranks", [None, 2])
def test_layer_layer_intervals_equal_the_resampled_recomputation(tmp_path, layers, ranks):
    f = write_activations(tmp_path / "a.h5", layers)
    metrics = ["cka_linear_biased", "cka_linear_unbiased", "cosine", "angular_distance", "block_influence", "mutual_knn", "twonn"]
    with run_sweep(tmp_path, [f], "layer_layer", metrics, ranks) as h:
        got = {m: h["layer_layer"][m + "_ci"][()] for m in metrics}
        draws = draws_of(h["layer_layer/cka_linear_biased_ci"], layers.shape[1])
        assert h["layer_layer/mutual_knn_ci"].attrs["unit"].decode() == "prompt"
    P = layers.shape[0]
    for a in range(P):
        for b in range(P):
            x, y = layers[a], layers[b]
            cos = [cos_paired(x[d], y[d]) for d in draws]
            expect = {
                "cka_linear_biased": interval([cka_biased(x[d], y[d]) for d in draws]),
                "cka_linear_unbiased": interval([cka_unbiased(x[d], y[d]) for d in draws]),
                "cosine": interval([c.mean() for c in cos]),
                "angular_distance": interval([(np.arccos(np.clip(c, -1, 1)) / np.pi).mean() for c in cos]),
                "block_influence": interval([1 - c.mean() for c in cos]),
                "mutual_knn": interval([mutual_knn_scores(x, y, 4)[d].mean() for d in draws]),
            }
            for m, e in expect.items():
                np.testing.assert_allclose(got[m][a, b], e, atol=1e-9, err_msg=f"{m} {a} {b}")
        ratios = twonn_ratios(layers[a])
        np.testing.assert_allclose(got["twonn"][a], interval([twonn_fit(ratios[d]) for d in draws]), rtol=1e-9)
    # a representation against itself: every draw gives 1
    assert np.all(got["cka_linear_biased"][[0, 1, 2], [0, 1, 2]] == pytest.approx(1.0, abs=1e-12))
    # the intervals are not degenerate elsewhere
    assert np.all(got["cka_linear_biased"][0, 2, 1] > got["cka_linear_biased"][0, 2, 0])


def parallel_set(seed=5, G=24, W=12):
    g = np.random.default_rng(seed)
    meaning = g.normal(size=(G, W))
    langs, groups, rows = [], [], []
    for lang in ["de", "en", "fr"]:
        shift = g.normal(size=W)
        for gi in range(G):
            langs.append(lang)
            groups.append(gi)
            rows.append(meaning[gi] + 0.8 * shift + 0.9 * g.normal(size=W))
    x = np.array(rows)
    order = g.permutation(len(x))
    x, langs, groups = x[order], [langs[i] for i in order], [groups[i] for i in order]
    return f32(np.stack([x, np.tanh(1.5 * x)])), langs, groups


@pytest.mark.parametrize("ranks", [None, 2])
def test_language_language_intervals_resample_parallel_sentences(tmp_path, ranks):
    xs, langs, groups = parallel_set()
    f = write_activations(tmp_path / "l.h5", xs, langs, groups)
    metrics = ["cka_linear_biased", "mutual_knn", "retrieval", "lrds", "sads", "twonn"]
    with run_sweep(tmp_path, [f], "language_language", metrics, ranks) as h:
        order = list(h["labels/languages"].asstr()[()])
        got = {m: h["language_language"][m + "_ci"][()] for m in
               ["cka_linear_biased", "mutual_knn", "retrieval_top1", "retrieval_top5", "lrds", "sads", "twonn"]}
        values = {m: h["language_language"][m][()] for m in ["lrds", "sads"]}
        G = 24
        draws = draws_of(h["language_language/sads_ci"], G)
        assert h["language_language/sads_ci"].attrs["unit"].decode().startswith("parallel sentence")
    for p in range(2):
        per = []
        for lang in order:
            idx = sorted((groups[i], i) for i in range(len(langs)) if langs[i] == lang)
            per.append(xs[p][[i for _, i in idx]])
        for a in range(3):
            for b in range(3):
                x, y = per[a], per[b]
                np.testing.assert_allclose(got["cka_linear_biased"][p, a, b], interval([cka_biased(x[d], y[d]) for d in draws]), atol=1e-9)
                scores = mutual_knn_scores(x, y, 4)
                np.testing.assert_allclose(got["mutual_knn"][p, a, b], interval([scores[d].mean() for d in draws]), atol=1e-12)
                ranks_ab = answer_ranks(x, y)
                np.testing.assert_allclose(got["retrieval_top1"][p, a, b], interval([(ranks_ab[d] < 1).mean() for d in draws]), atol=1e-12)
                np.testing.assert_allclose(got["retrieval_top5"][p, a, b], interval([(ranks_ab[d] < 5).mean() for d in draws]), atol=1e-12)
            ratios = twonn_ratios(per[a])
            np.testing.assert_allclose(got["twonn"][p, a], interval([twonn_fit(ratios[d]) for d in draws]), rtol=1e-9)
        both = np.array([lrds_sads_resampled(per, d) for d in draws])
        np.testing.assert_allclose(got["lrds"][p], interval(both[:, 0]), atol=1e-10)
        np.testing.assert_allclose(got["sads"][p], interval(both[:, 1]), atol=1e-10)
        assert got["sads"][p][0] < values["sads"][p] < got["sads"][p][1]  # a smooth mean: inside its interval


def test_intervals_reach_the_aggregate_grid(tmp_path):
    """Checkpoint CKA with the final checkpoint and SADS carry their intervals onto the depth axis, each
    bound interpolated as numpy does (the grid of test_aggregate)."""
    g = np.random.default_rng(4)
    base = g.normal(size=(4, 30, 8))
    ckpts = []
    for step, noise in enumerate([1.0, 0.3, 0.0]):
        ckpts.append(write_activations(tmp_path / f"c{step}.h5", f32(base + noise * g.normal(size=base.shape))))
    with run_sweep(tmp_path, ckpts, "checkpoint_checkpoint", ["cka_linear_unbiased"], None, name="ck") as h:
        cka_ci = h["checkpoint_checkpoint/cka_linear_unbiased_ci"][()]
        labels = list(h["labels/checkpoints"].asstr()[()])
    xs, langs, groups = parallel_set(G=20)
    lang_file = write_activations(tmp_path / "l.h5", xs, langs, groups)
    with run_sweep(tmp_path, [lang_file], "language_language", ["sads"], None, name="ll") as h:
        sads_ci = h["language_language/sads_ci"][()]
    bars = barcode(tmp_path / "b.csv", 8, 4, 2)
    run_lmtopo("aggregate", "--input", f"m@2={bars}", "--sweep", f"m@2={tmp_path / 'll.h5'}", "--checkpoint-sweep",
               f"m={tmp_path / 'ck.h5'}", "-o", tmp_path / "agg.h5")
    run_lmtopo("validate", tmp_path / "agg.h5")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        assert [c.decode() for c in f["cka_final/checkpoint"][:]] == labels
        for c in range(3):
            for e in range(2):
                np.testing.assert_allclose(f["cka_final/ci"][c, :, e], on_grid(cka_ci[:, c, 2, e]), rtol=1e-12)
        for e in range(2):
            np.testing.assert_allclose(f["sweeps/sads_ci"][0, :, e], on_grid(sads_ci[:, e]), rtol=1e-12)
        assert np.isnan(f["sweeps/twonn_ci"][()]).all()  # the sweep did not compute TwoNN
    assert cka_ci[:, 2, 2] == pytest.approx(np.ones((4, 2)))  # the last checkpoint against itself


@pytest.mark.parametrize("extra, message", [
    (["--bootstrap", "-1"], "--bootstrap: expected a number of draws >= 0"),
    (["--bootstrap", "10", "--confidence", "1"], "--confidence: expected a level between 0 and 1"),
])
def test_bad_bootstrap_options_are_one_line_exit_2(tmp_path, layers, extra, message):
    f = write_activations(tmp_path / "a.h5", layers)
    proc = run_lmtopo("sweep", "--hook", "h", "--activations", f, "-o", tmp_path / "o.h5", *extra, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.h5").exists()


def test_bootstrap_is_refused_on_a_blocked_checkpoint_sweep(tmp_path, layers):
    files = [write_activations(tmp_path / f"c{i}.h5", layers) for i in range(2)]
    proc = run_lmtopo("sweep", "--hook", "h", "--pairs", "checkpoint_checkpoint", "--activations", files[0], "--activations",
                      files[1], "--block-size", "1", "--block", "0,1", "--bootstrap", "5", "-o", tmp_path / "o.h5", check=False)
    assert proc.returncode == 2 and "--bootstrap: not with --block-size" in proc.stderr, proc.stderr


def test_bootstrap_metric_chooses_which_metrics_get_intervals(tmp_path):
    """Intervals for SADS only: no CKA interval is written, SADS's equals the one of a run where every
    metric has intervals (the same draws), and the CSV leaves CKA's interval columns empty."""
    xs, langs, groups = parallel_set(G=16)
    f = write_activations(tmp_path / "l.h5", xs, langs, groups)
    base = ["sweep", "--hook", "h", "--pairs", "language_language", "--activations", f, "--metric", "cka_linear_biased,sads",
            "--bootstrap", "30"]
    run_lmtopo(*base, "-o", tmp_path / "all.h5")
    run_lmtopo(*base, "--bootstrap-metric", "sads", "-o", tmp_path / "sads.h5")
    with h5py.File(tmp_path / "all.h5", "r") as a, h5py.File(tmp_path / "sads.h5", "r") as s:
        assert "cka_linear_biased_ci" in a["language_language"] and "cka_linear_biased_ci" not in s["language_language"]
        np.testing.assert_array_equal(a["language_language/sads_ci"][()], s["language_language/sads_ci"][()])
    rows = list(csv.DictReader(open(tmp_path / "sads.csv")))
    assert all(r["ci_low"] == "" for r in rows if r["metric"] == "cka_linear_biased")
    assert all(r["ci_low"] != "" for r in rows if r["metric"] == "sads")
    proc = run_lmtopo(*base, "--bootstrap-metric", "twonn", "-o", tmp_path / "x.h5", check=False)
    assert proc.returncode == 2 and "--bootstrap-metric: 'twonn' is not among the sweep's metrics" in proc.stderr, proc.stderr
