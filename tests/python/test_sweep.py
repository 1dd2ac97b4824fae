"""`lmtopo sweep` against independent Python computations: numpy for CKA (Kornblith's feature-space
formula for the biased estimator, Song et al.'s closed form for the unbiased one — lmtopo uses
centred Gram matrices), scikit-learn's NearestNeighbors for mutual k-NN and TwoNN's neighbour
distances, plain numpy for retrieval, LRDS/SADS and the paired cosine family; known answers; the
PETSc-distributed path at 1, 2 and 4 ranks against 1 rank; degenerate and bad inputs."""
import csv

import h5py
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from conftest import run_lmtopo

ALL = ["cka_linear_biased", "cka_linear_unbiased", "cosine", "angular_distance", "block_influence", "mutual_knn",
       "retrieval", "lrds", "sads", "twonn"]


def f32(x):
    """Values as the file stores them (float32), back in float64 for the references."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def write_activations(path, x, langs=None, groups=None, hook="h"):
    """An activations/1-shaped file: x [points, prompts, width] (callers pass f32-rounded values)."""
    P, N, W = x.shape
    langs = langs if langs is not None else ["en"] * N
    groups = groups if groups is not None else list(range(N))
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "test", "git_sha": "test", "git_dirty": 0,
                        "config_json": "{}", "created_by": "{}"})
        d = f.create_dataset(f"activations/{hook}", data=x.astype(np.float32))
        d.attrs["points"] = [f"layers.{i}" for i in range(P)]
        d.attrs["pooling"] = "last"
        d.attrs["hook"] = hook
        f.create_dataset("prompts/id", data=[f"p{i}" for i in range(N)])
        f.create_dataset("prompts/lang", data=langs)
        f.create_dataset("prompts/group", data=np.array(groups, dtype=np.int64))
        f.create_dataset("prompts/n_tokens", data=np.ones(N, dtype=np.int64))
    return path


def sweep(tmp_path, files, pairs, metrics=ALL, ranks=None, name="out", extra=()):
    args = ["sweep", "--hook", "h", "--pairs", pairs, "-o", tmp_path / f"{name}.h5", "--knn", "4", *extra]
    for f in files:
        args += ["--activations", f]
    for m in metrics:
        args += ["--metric", m]
    run_lmtopo(*args, ranks=ranks)
    with h5py.File(tmp_path / f"{name}.h5", "r") as f:
        return {k: f[pairs][k][()] for k in f[pairs]}


# ---- independent references ----
def cka_biased(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def hsic_unbiased(k, l):
    n = k.shape[0]
    k = k - np.diag(np.diag(k))
    l = l - np.diag(np.diag(l))
    return (np.trace(k @ l) + k.sum() * l.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * (k @ l).sum()) / (n * (n - 3))


def cka_unbiased(x, y):
    k, l = x @ x.T, y @ y.T
    return hsic_unbiased(k, l) / np.sqrt(hsic_unbiased(k, k) * hsic_unbiased(l, l))


def cos_paired(x, y):
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def mutual_knn(x, y, k):
    def nbrs(z):
        idx = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(z).kneighbors(z, return_distance=False)
        return [set(r[r != i][:k]) for i, r in enumerate(idx)]
    a, b = nbrs(x), nbrs(y)
    return np.mean([len(s & t) / k for s, t in zip(a, b)])


def retrieval(x, y, k):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    s = xn @ yn.T
    return np.mean([(np.argsort(-s[i], kind="stable")[:k] == i).any() for i in range(len(x))])


def twonn(x, discard=0.1):
    d, _ = NearestNeighbors(n_neighbors=3).fit(x).kneighbors(x)
    mu = np.sort(d[:, 2] / d[:, 1])
    n = len(mu)
    keep = int(np.floor(n * (1 - discard)))
    xs = np.log(mu[:keep])
    ys = -np.log(1 - np.arange(1, n + 1)[:keep] / n)
    return (xs @ ys) / (xs @ xs)


def lrds_sads(x, langs, groups):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = xn @ xn.T
    langs, groups = np.array(langs), np.array(groups)
    same_l = langs[:, None] == langs[None, :]
    same_g = groups[:, None] == groups[None, :]
    off = ~np.eye(len(x), dtype=bool)
    other = ~same_l & ~same_g
    return c[same_l & off].mean() - c[other].mean(), c[~same_l & same_g].mean() - c[other].mean()


# ---- tests ----
@pytest.fixture(scope="module")
def layers():
    g = np.random.default_rng(0)
    x = [g.normal(size=(37, 12))]
    for _ in range(3):
        x.append(np.tanh(x[-1] @ g.normal(size=(12, 12)) * 0.5) + 0.1 * g.normal(size=(37, 12)))
    return np.stack(x).astype(np.float32).astype(np.float64)


def test_layer_layer_metrics_match_numpy_and_sklearn(tmp_path, layers):
    f = write_activations(tmp_path / "a.h5", layers)
    got = sweep(tmp_path, [f], "layer_layer")
    P = len(layers)
    for a in range(P):
        for b in range(P):
            x, y = layers[a], layers[b]
            assert got["cka_linear_biased"][a, b] == pytest.approx(cka_biased(x, y), abs=1e-10)
            assert got["cka_linear_unbiased"][a, b] == pytest.approx(cka_unbiased(x, y), abs=1e-10)
            c = cos_paired(x, y)
            assert got["cosine"][a, b] == pytest.approx(c.mean(), abs=1e-10)
            assert got["angular_distance"][a, b] == pytest.approx((np.arccos(np.clip(c, -1, 1)) / np.pi).mean(), abs=1e-7)
            assert got["block_influence"][a, b] == pytest.approx(1 - c.mean(), abs=1e-10)
            assert got["mutual_knn"][a, b] == pytest.approx(mutual_knn(x, y, 4), abs=1e-12)
    for a in range(P):
        assert got["twonn"][a] == pytest.approx(twonn(layers[a]), rel=1e-9)
    # the nulls sit beside, and are far from the diagonal's 1
    assert got["cka_linear_biased_null"].shape == (P, P)
    assert np.all(np.diag(got["cka_linear_biased"]) > 0.999999) and np.all(np.diag(got["cka_linear_biased_null"]) < 0.8)
    subprocess_validate(tmp_path / "out.h5")
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert {r["metric"] for r in rows} >= {"cka_linear_biased", "twonn"}
    one = [r for r in rows if r["metric"] == "cka_linear_unbiased" and r["row"] == "layers.1" and r["column"] == "layers.2"][0]
    assert float(one["value"]) == pytest.approx(got["cka_linear_unbiased"][1, 2], abs=1e-15)


def subprocess_validate(path):
    run_lmtopo("validate", path)


def test_unbiased_cka_can_be_negative_and_is_never_nan(tmp_path):
    g = np.random.default_rng(3)
    x = f32(np.stack([g.normal(size=(6, 3)), g.normal(size=(6, 3)), np.ones((6, 3))]))  # small n, one constant
    f = write_activations(tmp_path / "a.h5", x)
    got = sweep(tmp_path, [f], "layer_layer", metrics=["cka_linear_unbiased", "cka_linear_biased"])
    assert not np.isnan(got["cka_linear_unbiased"]).any() and not np.isnan(got["cka_linear_biased"]).any()
    assert got["cka_linear_unbiased"][0, 1] == pytest.approx(cka_unbiased(x[0], x[1]), abs=1e-10)
    assert got["cka_linear_unbiased"][2, 0] == 0 and got["cka_linear_biased"][2, 2] == 0  # constant: degenerate
    negative = 0
    for seed in range(40):  # unbiased CKA of independent small samples is often negative
        g = np.random.default_rng(seed)
        a, b = g.normal(size=(8, 3)), g.normal(size=(8, 3))
        negative += cka_unbiased(a, b) < 0
    assert negative > 0


def test_known_answers(tmp_path):
    g = np.random.default_rng(1)
    x = f32(g.normal(size=(60, 10)))
    q, _ = np.linalg.qr(g.normal(size=(10, 10)))
    plane = np.zeros((400, 10))
    plane[:, :2] = g.uniform(size=(400, 2))
    plane = plane @ q  # a 2-dimensional plane in 10 dimensions
    gauss5 = np.zeros((400, 10))
    gauss5[:, :5] = g.normal(size=(400, 5))
    reps = np.stack([np.pad(x, ((0, 340), (0, 0))), np.pad(x @ q, ((0, 340), (0, 0))), np.pad(3.7 * x, ((0, 340), (0, 0))),
                     plane, gauss5])
    # first three: X, XQ, 3.7X on the first 60 rows (zero rows after them are shared by all three)
    f = write_activations(tmp_path / "k.h5", reps)
    got = sweep(tmp_path, [f], "layer_layer", metrics=["cka_linear_biased", "cka_linear_unbiased", "twonn"])
    for m in ("cka_linear_biased", "cka_linear_unbiased"):
        assert got[m][0, 1] == pytest.approx(1, abs=1e-12) and got[m][0, 2] == pytest.approx(1, abs=1e-12)
    assert got["twonn"][3] == pytest.approx(2, abs=0.3)
    assert got["twonn"][4] == pytest.approx(5, abs=0.8)
    # retrieval is perfect between identical languages
    langs = ["en"] * 30 + ["fr"] * 30
    groups = list(range(30)) * 2
    same = np.concatenate([x[:30], x[:30]])[None]
    f = write_activations(tmp_path / "same.h5", same, langs, groups)
    got = sweep(tmp_path, [f], "language_language", metrics=["retrieval"], name="same")
    assert np.all(got["retrieval_top1"] == 1) and np.all(got["retrieval_top5"] == 1)
    assert got["retrieval_top1_null"][0, 0, 1] < 0.2


def test_language_language_matches_numpy(tmp_path):
    g = np.random.default_rng(5)
    G, W = 25, 16
    meaning = g.normal(size=(G, W))
    langs, groups, rows = [], [], []
    for li, lang in enumerate(["de", "en", "fr"]):
        shift = g.normal(size=W)
        for gi in range(G):
            langs.append(lang)
            groups.append(gi)
            rows.append(meaning[gi] + 0.8 * shift + 0.7 * g.normal(size=W))
    # the file order interleaves languages; one extra group only in one language is left out
    x = np.array(rows + [g.normal(size=W)])
    langs.append("de")
    groups.append(99)
    order = g.permutation(len(x))
    x, langs, groups = x[order], [langs[i] for i in order], [groups[i] for i in order]
    xs = f32(np.stack([x, np.tanh(x)]))
    f = write_activations(tmp_path / "l.h5", xs, langs, groups)
    got = sweep(tmp_path, [f], "language_language")
    with h5py.File(tmp_path / "out.h5", "r") as h:
        order_l = list(h["labels/languages"].asstr()[()])
    first_seen = list(dict.fromkeys(langs))  # languages in the order the file first lists them
    assert order_l == first_seen
    for p in range(2):
        per = {}
        for lang in ["de", "en", "fr"]:
            idx = sorted((groups[i], i) for i in range(len(langs)) if langs[i] == lang and groups[i] != 99)
            per[lang] = xs[p][[i for _, i in idx]]
        for a, la in enumerate(order_l):
            for b, lb in enumerate(order_l):
                assert got["cka_linear_biased"][p, a, b] == pytest.approx(cka_biased(per[la], per[lb]), abs=1e-10)
                assert got["retrieval_top1"][p, a, b] == pytest.approx(retrieval(per[la], per[lb], 1), abs=1e-12)
                assert got["retrieval_top5"][p, a, b] == pytest.approx(retrieval(per[la], per[lb], 5), abs=1e-12)
                assert got["mutual_knn"][p, a, b] == pytest.approx(mutual_knn(per[la], per[lb], 4), abs=1e-12)
            assert got["twonn"][p, a] == pytest.approx(twonn(per[la]), rel=1e-9)
        stacked = np.concatenate([per[l] for l in order_l])
        lrds, sads = lrds_sads(stacked, sum([[l] * G for l in order_l], []), list(range(G)) * 3)
        assert got["lrds"][p] == pytest.approx(lrds, abs=1e-10)
        assert got["sads"][p] == pytest.approx(sads, abs=1e-10)
        assert got["sads"][p] > 0.1 and abs(got["sads_null"][p]) < 0.1  # translations align, the null does not


@pytest.mark.parametrize("ranks", [2, 4])
def test_petsc_ranks_equal_one_rank(tmp_path, layers, ranks):
    files = []
    g = np.random.default_rng(9)
    for c in range(3):  # 37 prompts: blocks do not divide evenly over 2 or 4 ranks
        files.append(write_activations(tmp_path / f"c{c}.h5", f32(layers + 0.2 * c * g.normal(size=layers.shape))))
    metrics = ["cka_linear_biased", "cka_linear_unbiased", "cosine", "mutual_knn", "angular_distance"]
    one = sweep(tmp_path, files, "checkpoint_checkpoint", metrics, ranks=1, name="one")
    many = sweep(tmp_path, files, "checkpoint_checkpoint", metrics, ranks=ranks, name="many")
    for k in one:
        np.testing.assert_allclose(many[k], one[k], rtol=0, atol=1e-10, err_msg=k)
    for c1 in range(3):
        for c2 in range(3):
            with h5py.File(files[c1]) as a, h5py.File(files[c2]) as b:
                x, y = a["activations/h"][2].astype(np.float64), b["activations/h"][2].astype(np.float64)
            assert one["cka_linear_biased"][2, c1, c2] == pytest.approx(cka_biased(x, y), abs=1e-10)
    one = sweep(tmp_path, files[:1], "layer_layer", ["twonn", "cka_linear_unbiased"], ranks=1, name="one_l")
    many = sweep(tmp_path, files[:1], "layer_layer", ["twonn", "cka_linear_unbiased"], ranks=ranks, name="many_l")
    for k in one:
        np.testing.assert_allclose(many[k], one[k], rtol=0, atol=1e-10, err_msg=k)


def test_bad_inputs_are_clear_errors(tmp_path, layers):
    bad = layers.copy()
    bad[2, 5, 3] = np.nan
    f = write_activations(tmp_path / "nan.h5", bad)
    proc = run_lmtopo("sweep", "--activations", f, "--hook", "h", "-o", tmp_path / "x.h5", check=False)
    assert proc.returncode == 2 and "nan.h5" in proc.stderr and "row 5" in proc.stderr and "NaN" in proc.stderr
    assert not (tmp_path / "x.h5").exists()
    ok = write_activations(tmp_path / "ok.h5", layers)
    for args, needle in [(["--metric", "cka"], "unknown metric 'cka'"), (["--pairs", "models"], "--pairs"),
                         (["--pairs", "model_model"], "two or more files (one per model)"),
                         (["--hook", "nope"], "no dataset /activations/nope"),
                         (["--pairs", "checkpoint_checkpoint"], "two or more files")]:
        base = ["sweep", "--activations", ok, "-o", tmp_path / "x.h5"] + (["--hook", "h"] if "--hook" not in args else [])
        proc = run_lmtopo(*base, *args, check=False)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
    tiny = write_activations(tmp_path / "tiny.h5", layers[:, :3])
    proc = run_lmtopo("sweep", "--activations", tiny, "--hook", "h", "-o", tmp_path / "x.h5", check=False)
    assert proc.returncode == 2 and "at least 4 prompts" in proc.stderr
    # n < d and duplicated points are fine (TwoNN leaves duplicates out)
    g = np.random.default_rng(2)
    wide = g.normal(size=(2, 20, 64))
    wide[:, 7] = wide[:, 3]
    f = write_activations(tmp_path / "wide.h5", wide)
    got = sweep(tmp_path, [f], "layer_layer", ["cka_linear_unbiased", "twonn"], name="wide")
    assert np.isfinite(got["twonn"]).all() and np.isfinite(got["cka_linear_unbiased"]).all()


@pytest.mark.parametrize("method", ["gram", "features"])
def test_model_model_at_matched_depth(tmp_path, method):
    """Two 'models' of different depth and width on the same prompts: at normalised depth t the points
    round(t (P - 1)) are compared; CKA (from Grams, and from the 8 x 13 feature cross-products) and
    mutual k-NN equal numpy/sklearn there."""
    g = np.random.default_rng(11)
    a = f32(g.normal(size=(5, 40, 8)))    # 5 points, width 8
    b = f32(g.normal(size=(9, 40, 13)))   # 9 points, width 13
    b[8] = f32(np.tanh(a[4] @ g.normal(size=(8, 13))))  # the last points are related
    fa, fb = write_activations(tmp_path / "a.h5", a), write_activations(tmp_path / "b.h5", b)
    got = sweep(tmp_path, [fa, fb], "model_model", ["cka_linear_biased", "cka_linear_unbiased", "mutual_knn"],
                extra=["--depth-bins", "5", "--label", "small", "--label", "large", "--cka-method", method])
    with h5py.File(tmp_path / "out.h5", "r") as f:
        assert f["model_model/cka_linear_biased"].attrs["cka_method"].decode() == method
        pts = f["labels/depth_points"][()]
        assert list(f["labels/models"].asstr()[()]) == ["small", "large"]
        assert np.allclose(f["labels/depths"][()], [0, 0.25, 0.5, 0.75, 1])
    assert pts.tolist() == [[0, 0], [1, 2], [2, 4], [3, 6], [4, 8]]
    for j in range(5):
        x, y = a[pts[j, 0]], b[pts[j, 1]]
        assert got["cka_linear_biased"][j, 0, 1] == pytest.approx(cka_biased(x, y), abs=1e-10)
        assert got["cka_linear_unbiased"][j, 1, 0] == pytest.approx(cka_unbiased(y, x), abs=1e-10)
        assert got["mutual_knn"][j, 0, 1] == pytest.approx(mutual_knn(x, y, 4), abs=1e-12)
    assert got["cka_linear_biased"][4, 0, 1] > got["cka_linear_biased"][0, 0, 1]


def test_checkpoint_blocks_merge_to_the_unblocked_sweep(tmp_path, layers):
    """5 checkpoints in groups of 2 (3 groups, the last short): every block I <= J at 2 ranks, each
    reading only its groups' files, then --merge; equal to the unblocked run (values and nulls, 1e-10),
    the CSV has each pair once, a block's arrays are NaN outside it, and a missing block is an error.
    Blocks from before checkpoints were appended still merge; a stale one is an error."""
    g = np.random.default_rng(21)
    files = [write_activations(tmp_path / f"c{c}.h5", f32(layers + 0.3 * c * g.normal(size=layers.shape)))
             for c in range(5)]
    metrics = ["cka_linear_unbiased", "cosine", "mutual_knn"]
    whole = sweep(tmp_path, files, "checkpoint_checkpoint", metrics, ranks=1, name="whole")
    blocks = []
    for i in range(3):
        for j in range(i, 3):
            name = f"b{i}{j}"
            part = sweep(tmp_path, files, "checkpoint_checkpoint", metrics, ranks=2, name=name,
                         extra=["--block-size", "2", "--block", f"{i},{j}"])
            owned = np.zeros((5, 5), bool)
            for a in range(5):
                for b in range(5):
                    owned[a, b] = {a // 2, b // 2} == {i, j}
            for k, v in part.items():
                assert np.isnan(v[:, ~owned]).all(), (name, k)
                np.testing.assert_allclose(v[:, owned], whole[k][:, owned], rtol=0, atol=1e-10, err_msg=name + k)
            with h5py.File(tmp_path / f"{name}.h5") as f:
                assert f.attrs["block_size"] == 2 and f.attrs["block_row"] == i and f.attrs["block_col"] == j
            blocks.append(tmp_path / f"{name}.h5")
    merge = ["sweep", "-o", tmp_path / "merged.h5"]
    for b in blocks:
        merge += ["--merge", b]
    run_lmtopo(*merge, ranks=2)
    with h5py.File(tmp_path / "merged.h5") as f:
        merged = {k: f["checkpoint_checkpoint"][k][()] for k in f["checkpoint_checkpoint"]}
        assert [s.decode() for s in f["labels/checkpoints"][()]] == [f"c{c}" for c in range(5)]
    assert merged.keys() == whole.keys()
    for k in whole:
        np.testing.assert_allclose(merged[k], whole[k], rtol=0, atol=1e-10, err_msg=k)
    with open(tmp_path / "merged.csv") as f:
        rows = list(csv.DictReader(f))
    P = layers.shape[0]
    assert len(rows) == len(metrics) * P * 25
    assert len({(r["metric"], r["point"], r["row"], r["column"]) for r in rows}) == len(rows)
    block_rows = sum(len(list(csv.DictReader(open(b.with_suffix(".csv"))))) for b in blocks)
    assert block_rows == len(rows)
    missing = ["sweep", "-o", tmp_path / "missing.h5"] + sum([["--merge", b] for b in blocks if b != blocks[2]], [])
    proc = run_lmtopo(*missing, check=False)
    assert proc.returncode == 2 and "block 0,2" in proc.stderr, proc.stderr
    proc = run_lmtopo("sweep", "--hook", "h", "--pairs", "checkpoint_checkpoint", "-o", tmp_path / "x.h5",
                      "--block-size", "2", "--block", "1,3", *sum([["--activations", f] for f in files], []), check=False)
    assert proc.returncode == 2 and "0 <= I <= J < 3" in proc.stderr, proc.stderr

    # A list that grew by appending (nightly): blocks 0-0 and 1-1 computed when there were 4 checkpoints
    # (groups {0,1}, {2,3} unchanged since) merge with the 5-checkpoint blocks into the unblocked result.
    old = {}
    for i, j in ((0, 0), (1, 1)):
        sweep(tmp_path, files[:4], "checkpoint_checkpoint", metrics, ranks=1, name=f"old{i}{j}",
              extra=["--block-size", "2", "--block", f"{i},{j}"])
        old[i, j] = tmp_path / f"old{i}{j}.h5"
    grown = [old[0, 0] if b.name == "b00.h5" else old[1, 1] if b.name == "b11.h5" else b for b in blocks]
    run_lmtopo("sweep", "-o", tmp_path / "grown.h5", *sum([["--merge", b] for b in grown], []))
    with h5py.File(tmp_path / "grown.h5") as f:
        assert [s.decode() for s in f["labels/checkpoints"][()]] == [f"c{c}" for c in range(5)]
        for k in whole:
            np.testing.assert_allclose(f["checkpoint_checkpoint"][k][()], whole[k], rtol=0, atol=1e-10, err_msg=k)
    # A block whose checkpoints are no longer those of its groups (here: 2 and 3 swapped) is stale.
    sweep(tmp_path, [files[0], files[1], files[3], files[2]], "checkpoint_checkpoint", metrics, ranks=1, name="swapped",
          extra=["--block-size", "2", "--block", "1,1"])
    stale = [tmp_path / "swapped.h5" if b.name == "b11.h5" else b for b in blocks]
    proc = run_lmtopo("sweep", "-o", tmp_path / "stale.h5", *sum([["--merge", b] for b in stale], []), check=False)
    assert proc.returncode == 2 and "swapped.h5" in proc.stderr and "stale block" in proc.stderr, proc.stderr


@pytest.mark.parametrize("ranks", [1, 3])
def test_float32_gram_products(tmp_path, layers, ranks):
    """--gram-precision float32 (BLAS sgemm Grams, float64 centring): CKA within 1e-5 of numpy's
    float64 value, the estimator's precision recorded; 3 ranks split 37 rows unevenly."""
    g = np.random.default_rng(5)
    files = [write_activations(tmp_path / f"c{c}.h5", f32(layers + 0.3 * c * g.normal(size=layers.shape)))
             for c in range(3)]
    got = sweep(tmp_path, files, "checkpoint_checkpoint", ["cka_linear_biased", "cka_linear_unbiased"], ranks=ranks,
                name="f32", extra=["--gram-precision", "float32"])
    for c1 in range(3):
        for c2 in range(3):
            with h5py.File(files[c1]) as a, h5py.File(files[c2]) as b:
                x, y = a["activations/h"][1].astype(np.float64), b["activations/h"][1].astype(np.float64)
            assert got["cka_linear_biased"][1, c1, c2] == pytest.approx(cka_biased(x, y), abs=1e-5)
            assert got["cka_linear_unbiased"][1, c1, c2] == pytest.approx(cka_unbiased(x, y), abs=1e-5)
    with h5py.File(tmp_path / "f32.h5") as f:
        assert f["checkpoint_checkpoint/cka_linear_biased"].attrs["gram_precision"].decode() == "float32"
    proc = run_lmtopo("sweep", "--activations", files[0], "--hook", "h", "-o", tmp_path / "x.h5",
                      "--gram-precision", "half", check=False)
    assert proc.returncode == 2 and "--gram-precision" in proc.stderr


def cka_exact(x, y, unbiased):
    """CKA in exact rational arithmetic (float32 inputs are exact binary fractions) from the raw Gram
    matrices: double centring, or Song et al.'s closed form; only the final square root is rounded.
    The reference where a large common mean makes float64 Gram formulas cancel."""
    from fractions import Fraction
    def gram(z):
        q = [[Fraction(float(v)) for v in row] for row in z]
        return [[sum(a * b for a, b in zip(r, s)) for s in q] for r in q]
    def hsic(k, l):
        n = len(k)
        if not unbiased:
            def centred(m):
                rs = [sum(r) for r in m]
                t = sum(rs)
                return [[m[i][j] - rs[i] / n - rs[j] / n + t / (n * n) for j in range(n)] for i in range(n)]
            kc, lc = centred(k), centred(l)
            return sum(kc[i][j] * lc[i][j] for i in range(n) for j in range(n))
        kt = [[0 if i == j else k[i][j] for j in range(n)] for i in range(n)]
        lt = [[0 if i == j else l[i][j] for j in range(n)] for i in range(n)]
        ks, ls = [sum(r) for r in kt], [sum(r) for r in lt]
        tr = sum(kt[i][j] * lt[i][j] for i in range(n) for j in range(n))
        return tr + sum(ks) * sum(ls) / ((n - 1) * (n - 2)) - Fraction(2, n - 2) * sum(a * b for a, b in zip(ks, ls))
    k, l = gram(x), gram(y)
    return float(hsic(k, l)) / np.sqrt(float(hsic(k, k)) * float(hsic(l, l)))


def auto_cka_method(n, dims):
    """The documented rule of --cka-method auto, with the memory budget never binding at test sizes."""
    r, sum_d = len(dims), sum(dims)
    return "features" if n * sum_d ** 2 < 2 * n * n * (sum_d + r * r) else "gram"


@pytest.mark.parametrize("ranks", [1, 3])
def test_cka_from_feature_cross_products(tmp_path, layers, ranks):
    """--cka-method features (d x d cross-products of the column-centred rows, no n x n matrix): both
    estimators equal exact rational Gram-based references and lmtopo's Gram path (nulls too) to 1e-10,
    on points with a large common mean (where float64 Gram formulas cancel) and a constant point
    (degenerate: 0);
    the method is recorded; float32 within 1e-5; 3 ranks split 37 rows unevenly."""
    x = f32(np.concatenate([layers + 40.0, np.full((1, 37, 12), 0.7)]))
    f = write_activations(tmp_path / "a.h5", x)
    cka = ["cka_linear_biased", "cka_linear_unbiased"]
    feat = sweep(tmp_path, [f], "layer_layer", cka, ranks=ranks, name="feat", extra=["--cka-method", "features"])
    gram = sweep(tmp_path, [f], "layer_layer", cka, ranks=ranks, name="gram", extra=["--cka-method", "gram"])
    single = sweep(tmp_path, [f], "layer_layer", cka, ranks=ranks, name="f32",
                   extra=["--cka-method", "features", "--gram-precision", "float32"])
    for m in cka:
        np.testing.assert_allclose(feat[m], gram[m], rtol=0, atol=1e-10)
        np.testing.assert_allclose(feat[m + "_null"], gram[m + "_null"], rtol=0, atol=1e-10)
        assert not feat[m][4].any() and not feat[m][:, 4].any()  # the constant point
    for a, b in [(0, 1), (1, 3), (2, 2)]:
        for m, unbiased in [("cka_linear_biased", False), ("cka_linear_unbiased", True)]:
            want = cka_exact(x[a], x[b], unbiased)
            assert feat[m][a, b] == pytest.approx(want, abs=1e-10) and gram[m][a, b] == pytest.approx(want, abs=1e-10)
            assert single[m][a, b] == pytest.approx(want, abs=1e-5)
    with h5py.File(tmp_path / "feat.h5") as ff, h5py.File(tmp_path / "gram.h5") as fg:
        assert ff["layer_layer/cka_linear_biased"].attrs["cka_method"].decode() == "features"
        assert fg["layer_layer/cka_linear_unbiased"].attrs["cka_method"].decode() == "gram"
    auto = sweep(tmp_path, [f], "layer_layer", cka, ranks=ranks, name="auto")
    with h5py.File(tmp_path / "auto.h5") as fa:  # 5 points and their nulls: R = 10 of width 12
        assert fa["layer_layer/cka_linear_biased"].attrs["cka_method"].decode() == auto_cka_method(37, [12] * 10)
    np.testing.assert_allclose(auto["cka_linear_unbiased"], gram["cka_linear_unbiased"], rtol=0, atol=1e-10)
    proc = run_lmtopo("sweep", "--activations", f, "--hook", "h", "-o", tmp_path / "x.h5", "--cka-method", "fast",
                      check=False)
    assert proc.returncode == 2 and "--cka-method" in proc.stderr and not (tmp_path / "x.h5").exists()
