"""`lmtopo aggregate` against independent numpy/scipy computations: S̄ and Betti curves from the bars
by a direct numpy implementation of science.md §1, resampled with numpy.interp; Pearson and Spearman
from scipy.stats; subset sd from numpy (ddof 1); the persistence similarity on the depth grid and
its bands by scipy's RegularGridInterpolator. Known answers: paper 1's released barcodes give the
pruning blocks and argmax of the data's README; two models with the same final barcode correlate at
exactly 1 and are shared, one whose S̄ peaks elsewhere is not; the argmax's settling over training;
bad input is one line, exit 2."""
import csv
import re

import h5py
import numpy as np
import pytest
from scipy import interpolate, stats

from conftest import SHARED, run_lmtopo
from test_zigzag_subsets import write as write_activations

DATA = SHARED / "data" / "paper1-pile-barcodes"
GRID = 101


def readme_table():
    rows = {}
    for line in (DATA / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*(\S+)\.csv[^|]*\|\s*(\d+)\s*\|\s*(\d+)–(\d+)\s*\|\s*(\d+)–(\d+)\s*\|\s*(\d+)\s*\|", line)
        if m:
            rows[m.group(1)] = tuple(int(m.group(i)) for i in range(2, 8))
    return rows


def read_csv_bars(path):
    with open(path) as fh:
        return [(int(r["dimension"]), int(r["birth"]), int(r["death"])) for r in csv.DictReader(fh)]


def summaries(bars, L, dim=1):
    """S̄ and Betti per layer, straight from the definitions (effective layer = position // 2)."""
    lb = [(b // 2, d // 2) for p, b, d in bars if p == dim and b // 2 != d // 2]
    alive = np.array([[b <= l < d for l in range(L)] for b, d in lb], dtype=bool).reshape(len(lb), L)
    phsim = (alive[:, :, None] & alive[:, None, :]).sum(0)
    betti = np.diag(phsim).astype(float)
    ratio = np.divide(phsim, betti[None, :], out=np.zeros((L, L)), where=betti[None, :] > 0)
    return ratio.mean(axis=1), betti


def similarity_matrix(bars, L, dim=1):
    """S(l1, l2) = PHSim(l1, l2) / β(l1): the share of layer l1's bars alive on every layer to l2."""
    lb = [(b // 2, d // 2) for p, b, d in bars if p == dim and b // 2 != d // 2]
    alive = np.array([[b <= l < d for l in range(L)] for b, d in lb], dtype=bool).reshape(len(lb), L)
    phsim = (alive[:, :, None] & alive[:, None, :]).sum(0).astype(float)
    beta = np.diag(phsim)
    return np.divide(phsim, beta[:, None], out=np.zeros((L, L)), where=beta[:, None] > 0)


def on_grid(per_layer):
    L = len(per_layer)
    return np.interp(np.linspace(0, 1, GRID), np.arange(L) / (L - 1), per_layer)


def aggregate(tmp_path, inputs, *extra, check=True):
    args = ["aggregate", "-o", tmp_path / "agg.h5", "--permutations", "200", *extra]
    for i in inputs:
        args += ["--input", i]
    return run_lmtopo(*args, check=check)


def test_released_barcodes_phases_curves_and_correlations(tmp_path):
    table = readme_table()
    assert len(table) == 5
    aggregate(tmp_path, [f"{name}={DATA / name}.csv" for name in table])
    run_lmtopo("validate", tmp_path / "agg.h5")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        models = [m.decode() for m in f["series/model"][:]]
        curves, betti = f["curves/avg_similarity"][:], f["curves/betti"][:]
        similarity, bands, offsets = f["curves/similarity"][:], f["curves/similarity_band"][:], f["grid/band_offsets"][:]
        first, last, argmax = f["phases/first_layer"][:], f["phases/last_layer"][:], f["phases/argmax_layer"][:]
        assert f["phases/thresholds"][:].tolist() == [0.9, 0.8] and (f["series/step"][:] == -1).all()
        pairs = list(zip([m.decode() for m in f["universality/model_a"][:]], [m.decode() for m in f["universality/model_b"][:]]))
        pearson, spearman = f["universality/pearson"][:], f["universality/spearman"][:]
        shared, p = f["universality/shared"][:], f["universality/shuffle_p"][:]
        assert np.isnan(f["universality/null_step0"][:]).all() and np.isnan(f["universality/pearson_ci"][:]).all()
    ref = {}
    for i, name in enumerate(models):
        L, lo9, hi9, lo8, hi8, top = table[name]
        assert (first[i].tolist(), last[i].tolist(), argmax[i]) == ([lo9, lo8], [hi9, hi8], top), name
        sbar, b = summaries(read_csv_bars(DATA / f"{name}.csv"), L)
        ref[name] = on_grid(sbar)
        np.testing.assert_allclose(curves[i], ref[name], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(betti[i], on_grid(b), rtol=1e-12)
        # persistence similarity on grid x grid and its bands, by scipy's bilinear interpolation
        S = similarity_matrix(read_csv_bars(DATA / f"{name}.csv"), L)
        interp = interpolate.RegularGridInterpolator((np.arange(L) / (L - 1), np.arange(L) / (L - 1)), S)
        grid = np.linspace(0, 1, GRID)
        np.testing.assert_allclose(similarity[i], interp(np.stack(np.meshgrid(grid, grid, indexing="ij"), -1)), rtol=1e-10, atol=1e-12)
        for k, offset in enumerate(offsets):
            inside = grid + offset <= 1 + 1e-12
            want = np.full(GRID, np.nan)
            want[inside] = interp(np.stack([grid[inside], np.minimum(grid[inside] + offset, 1)], -1))
            np.testing.assert_allclose(bands[i, k], want, rtol=1e-10, atol=1e-12)
    assert offsets.tolist() == [0.1, 0.25, 0.5]
    assert len(pairs) == 10
    for k, (a, b) in enumerate(pairs):
        assert pearson[k] == pytest.approx(stats.pearsonr(ref[a], ref[b])[0], rel=1e-10)
        assert spearman[k] == pytest.approx(stats.spearmanr(ref[a], ref[b])[0], rel=1e-10)
    # Without step-0 checkpoints the second null cannot be decided.
    assert set(shared.tolist()) <= {-1, 0} and ((p > 0) & (p <= 1)).all()
    with open(tmp_path / "agg.phases.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 10 and rows[0]["candidates"] == "{}-{}".format(*table[models[0]][1:3])


def test_curves_of_every_homology_dimension(tmp_path):
    """--curve-dims: S̄ and Betti of each listed dimension on the grid, from paper 1's released barcodes
    (bars of dimensions 0, 1, 2 and 4; none of 3), against the definitions in numpy; the HDF5 and the
    tidy CSV agree; a repeated dimension is refused."""
    table = readme_table()
    names = sorted(table)[:2]
    aggregate(tmp_path, [f"{n}={DATA / n}.csv" for n in names], "--curve-dims", "0,2,3,4", "--bootstrap", "0")
    run_lmtopo("validate", tmp_path / "agg.h5")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        assert f["grid/curve_dims"][:].tolist() == [0, 2, 3, 4]
        by_dim, betti = f["curves/by_dim/avg_similarity"][:], f["curves/by_dim/betti"][:]
        models = [m.decode() for m in f["series/model"][:]]
    assert by_dim.shape == (4, 2, GRID)
    rows = list(csv.DictReader(open(tmp_path / "agg.dims.csv")))
    assert len(rows) == 2 * 4 * GRID
    for i, name in enumerate(models):
        bars = read_csv_bars(DATA / f"{name}.csv")
        for k, dim in enumerate([0, 2, 3, 4]):
            sbar, b = summaries(bars, table[name][0], dim)
            np.testing.assert_allclose(by_dim[k, i], on_grid(sbar), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(betti[k, i], on_grid(b), rtol=1e-12, atol=1e-15)
            assert (dim == 3) == (not betti[k, i].any()), (name, dim)  # no H3 bars in these files
            mine = [r for r in rows if r["model"] == name and int(r["dim"]) == dim]
            np.testing.assert_allclose([float(r["betti"]) for r in mine], betti[k, i], rtol=1e-12)
    proc = aggregate(tmp_path, [f"{names[0]}={DATA / names[0]}.csv"], "--curve-dims", "1,1", check=False)
    assert proc.returncode == 2 and "--curve-dims" in proc.stderr


def barcode(path, L, peak, width, count=12):
    """H1 bars alive on layers around `peak` (their overlap makes S̄ peak there), and the H0 bar that
    pins L (it dies at 2L)."""
    bars = [(0, 1, 2 * L)]
    for i in range(count):
        lo = max(0, peak - width + i % 3)
        hi = min(L, peak + width - (i % 2) + 1)
        bars.append((1, 2 * lo + 1, 2 * hi))
    bars += [(1, 2 * l + 1, 2 * l + 4) for l in range(0, L - 2, 2)]  # short bars everywhere
    path.write_text("dimension,birth,death\n" + "".join(f"{p},{b},{d}\n" for p, b, d in bars))
    return path


def test_checkpoint_series_nulls_and_settling(tmp_path):
    L = 12
    final = barcode(tmp_path / "final.csv", L, 8, 2)
    early = barcode(tmp_path / "early.csv", L, 2, 2)
    mid = barcode(tmp_path / "mid.csv", L, 7, 2)
    other = barcode(tmp_path / "other.csv", 16, 3, 2)
    inputs = [f"a@0={early}", f"a@100={mid}", f"a@200={final}", f"b@0={early}", f"b@300={final}", f"c@0={early}", f"c@50={other}"]
    out = aggregate(tmp_path, inputs).stdout
    assert "7 barcode(s) of 3 model(s); 3 model pair(s), 1 with a shared" in out
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        names = [m.decode() for m in f["models/name"][:]]
        settled = dict(zip(names, f["models/settled_step"][:].tolist()))
        pairs = list(zip([m.decode() for m in f["universality/model_a"][:]], [m.decode() for m in f["universality/model_b"][:]]))
        res = {pq: (f["universality/pearson"][k], f["universality/shared"][k], f["universality/null_step0"][k])
               for k, pq in enumerate(pairs)}
        argmax = f["phases/argmax_layer"][:].tolist()
    assert names == ["a", "b", "c"]
    assert argmax[0] != argmax[2] and abs(argmax[1] - argmax[2]) <= 1
    assert settled == {"a": 100, "b": 300, "c": 50}
    r_ab, shared_ab, null_ab = res[("a", "b")]
    assert r_ab == pytest.approx(1.0, abs=1e-12) and shared_ab == 1
    fin, ear = summaries(read_csv_bars(final), L)[0], summaries(read_csv_bars(early), L)[0]
    assert null_ab == pytest.approx(stats.pearsonr(on_grid(fin), on_grid(ear))[0], rel=1e-10)
    assert res[("a", "c")][1] == 0 and res[("b", "c")][1] == 0  # c peaks early, as a's and b's step 0 do
    # Identical curves beat the layer-shuffle null: few shuffles of 12 layers come near r = 1.
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        assert f["universality/shuffle_p"][0] < 0.05


def test_zigzag_outputs_with_subsets_and_null_draws(tmp_path):
    """Subsets give the sd and the bootstrap interval; the zigzags' permuted-prompts null draws give the
    first null: the largest r of either model's curve with the other's null curves (numpy)."""
    g = np.random.default_rng(4)
    x = [g.normal(size=(90, 6))]
    for _ in range(4):
        x.append(x[-1] + 0.4 * g.normal(size=(90, 6)))
    files = []
    for i, scale in enumerate((0.4, 0.6)):
        layers = np.stack([x[0]] + [x[0] + scale * (j + 1) * g.normal(size=(90, 6)) for j in range(4)])
        act = write_activations(tmp_path / f"a{i}.h5", layers)
        run_lmtopo("zigzag", "--activations", act, "--hook", "h", "-o", tmp_path / f"z{i}.h5", "-k", "4", "--dims", "0,1",
                   "--subsets", "3", "--subset-size", "30", "--subset-seed", "7", "--null-draws", "3", "--null-seed", str(i))
        files.append(tmp_path / f"z{i}.h5")
    aggregate(tmp_path, [f"m{i}@10={p}" for i, p in enumerate(files)], "--dim", "1", "--bootstrap", "300")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        sd, reps = f["curves/avg_similarity_sd"][:], f["series/replicates"][:]
        ci, r = f["universality/pearson_ci"][0], f["universality/pearson"][0]
        curves, null_prompts, shared = f["curves/avg_similarity"][:], f["universality/null_prompts"][0], f["universality/shared"][0]
        null_mean, null_sd = f["curves/avg_similarity_null_mean"][:], f["curves/avg_similarity_null_sd"][:]
        assert f["universality/first_null"][0].decode() == "permuted_prompts" and f["series/null_draws"][:].tolist() == [3, 3]
    nulls = []
    for p in files:
        with h5py.File(p, "r") as z:
            nulls.append([on_grid(c) for c in z["null/h1/avg_similarity"][:]])
    # Constant null curves have no correlation (NaN): they are left out, as lmtopo leaves them out.
    rs = [np.corrcoef(curves[a], c)[0, 1] if np.ptp(c) > 0 else np.nan for a, b in ((0, 1), (1, 0)) for c in nulls[b]]
    # On these data no H1 bar outlives a permuted layer change, so every null S̄ curve is flat at 1/L
    # (as numpy finds) and its correlation undefined: NaN, a null that is beaten by any curve.
    if np.isnan(rs).all():
        assert np.isnan(null_prompts) and all(np.allclose(c, c[0]) for n in nulls for c in n)
    else:
        assert null_prompts == pytest.approx(np.nanmax(rs), rel=1e-10)
    # Without step 0 the pair is undecidable, unless the permuted-prompts null already fails it.
    assert shared == (-1 if np.isnan(null_prompts) or (r > null_prompts and ci[0] > null_prompts) else 0)
    assert reps.tolist() == [3, 3]
    for i, p in enumerate(files):
        with h5py.File(p, "r") as z:
            sub = z["subsets/h1/avg_similarity"][:]
        np.testing.assert_allclose(sd[i], np.std([on_grid(s) for s in sub], axis=0, ddof=1), rtol=1e-10, atol=1e-14)
        # the permuted-prompts null band: mean and sample sd of the null draws on the grid
        np.testing.assert_allclose(null_mean[i], np.mean(nulls[i], axis=0), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(null_sd[i], np.std(nulls[i], axis=0, ddof=1), rtol=1e-10, atol=1e-14)
    assert np.isfinite(ci).all() and -1 <= ci[0] <= ci[1] <= 1 and np.isfinite(r)


@pytest.mark.parametrize("inputs,extra,message", [
    (["a"], [], "--input: expected MODEL[@STEP]=FILE, got 'a'"),
    (["a@x=F"], [], "--input: 'x' in 'a@x="),
    (["a@1=F", "a@1=F"], [], "model a step 1 is given twice"),
    (["a=MISSING"], [], "missing.csv: cannot open the barcode CSV"),
    (["a=H1ONLY"], [], "no H0 bars"),
    (["a=F"], ["--grid", "1"], "--grid: expected at least 2"),
    (["a=F"], ["--thresholds", "0.9,1.5"], "--thresholds: expected values in (0, 1]"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, inputs, extra, message):
    f = barcode(tmp_path / "f.csv", 8, 4, 2)
    (tmp_path / "h1.csv").write_text("dimension,birth,death\n1,3,8\n")
    sub = {"F": str(f), "MISSING": str(tmp_path / "missing.csv"), "H1ONLY": str(tmp_path / "h1.csv")}
    inputs = [re.sub(r"(?<==)(F|MISSING|H1ONLY)$", lambda m: sub[m.group(1)], i) for i in inputs]
    proc = aggregate(tmp_path, inputs, *extra, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "agg.h5").exists()


def neurons_file(path, count, cosine, study="key_linguistic"):
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "neurons/1", "study": study})
        f["key_linguistic/count"] = np.asarray(count, dtype=np.int64)
        f["key_linguistic/mean_cosine"] = np.asarray(cosine, dtype=np.float64)
    return path


def test_key_neuron_checkpoint_series(tmp_path):
    """--neurons: each key_linguistic file's key units per block (summed over languages) and mean
    cosine (averaged) on the depth axis, as numpy computes them; a file of another study is refused."""
    bars = barcode(tmp_path / "b.csv", 8, 4, 2)
    g = np.random.default_rng(2)
    files = {}
    for step, blocks in ((0, 4), (100, 4), (200, 5)):
        files[step] = (g.integers(0, 9, size=(blocks, 3)), g.uniform(0.1, 0.9, size=(blocks, 3)))
        neurons_file(tmp_path / f"n{step}.h5", *files[step])
    extra = sum((["--neurons", f"m@{s}={tmp_path / f'n{s}.h5'}"] for s in files), [])
    aggregate(tmp_path, [f"m@200={bars}"], *extra)
    run_lmtopo("validate", tmp_path / "agg.h5")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        assert f["neurons/step"][:].tolist() == [0, 100, 200] and f["neurons/blocks"][:].tolist() == [4, 4, 5]
        units, cosine = f["neurons/key_units"][:], f["neurons/mean_cosine"][:]
    for row, (count, cos) in enumerate(files.values()):
        np.testing.assert_allclose(units[row], on_grid(count.sum(axis=1)), rtol=1e-12)
        np.testing.assert_allclose(cosine[row], on_grid(cos.mean(axis=1)), rtol=1e-12)
    with open(tmp_path / "agg.neurons.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * GRID
    neurons_file(tmp_path / "rep.h5", [[1], [2]], [[0.5], [0.5]], study="repetition")
    proc = aggregate(tmp_path, [f"m={bars}"], "--neurons", f"m={tmp_path / 'rep.h5'}", check=False)
    assert proc.returncode == 2 and "expected a neurons/1 file of study key_linguistic" in proc.stderr


def sweep_file(path, points, metrics=None, checkpoints=None, cka=None):
    """A sweep/1 file with the datasets aggregate reads (labels, per-point metrics, or the
    checkpoint x checkpoint CKA)."""
    with h5py.File(path, "w") as f:
        f.attrs["lmtopo_schema"] = "sweep/1"
        f["labels/points"] = np.array([f"p{i}".encode() for i in range(points)])
        for name, values in (metrics or {}).items():
            f[name] = np.asarray(values, dtype=np.float64)
        if cka is not None:
            f["labels/checkpoints"] = np.array([c.encode() for c in checkpoints])
            f["checkpoint_checkpoint/cka_linear_unbiased"] = cka
    return path


def test_sweep_curves_and_cka_with_the_final_checkpoint(tmp_path):
    """--sweep: SADS, LRDS and TwoNN per point on the depth axis (NaN for a metric the file lacks);
    --checkpoint-sweep: each checkpoint's CKA with the last one per point; as numpy interpolates them.
    A file of another kind is refused."""
    bars = barcode(tmp_path / "b.csv", 8, 4, 2)
    g = np.random.default_rng(3)
    per = {0: {"/language_language/sads": g.uniform(-0.1, 0.5, 5), "/layer_layer/twonn": g.uniform(2, 9, 5)},
           64: {"/language_language/sads": g.uniform(-0.1, 0.5, 7), "/language_language/lrds": g.uniform(0, 2, 7)}}
    for step, metrics in per.items():
        sweep_file(tmp_path / f"s{step}.h5", len(next(iter(metrics.values()))), metrics)
    cka = g.uniform(0, 1, size=(6, 3, 3))
    sweep_file(tmp_path / "c.h5", 6, checkpoints=["step0", "step64", "step128"], cka=cka)
    aggregate(tmp_path, [f"m@128={bars}"], "--sweep", f"m@0={tmp_path / 's0.h5'}", "--sweep", f"m@64={tmp_path / 's64.h5'}",
              "--checkpoint-sweep", f"m={tmp_path / 'c.h5'}")
    run_lmtopo("validate", tmp_path / "agg.h5")
    with h5py.File(tmp_path / "agg.h5", "r") as f:
        assert f["sweeps/step"][:].tolist() == [0, 64] and f["sweeps/points"][:].tolist() == [5, 7]
        for row, (step, metrics) in enumerate(per.items()):
            for name in ("sads", "lrds", "twonn"):
                got = f["sweeps"][name][row]
                key = next((k for k in metrics if k.endswith("/" + name)), None)
                if key is None:
                    assert np.isnan(got).all(), (step, name)
                else:
                    np.testing.assert_allclose(got, on_grid(metrics[key]), rtol=1e-12, err_msg=f"{step} {name}")
        assert [c.decode() for c in f["cka_final/checkpoint"][:]] == ["step0", "step64", "step128"]
        for c in range(3):
            np.testing.assert_allclose(f["cka_final/values"][c], on_grid(cka[:, c, 2]), rtol=1e-12)
    with open(tmp_path / "agg.sweeps.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2 * GRID
    with open(tmp_path / "agg.cka_final.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * GRID
    other = neurons_file(tmp_path / "n.h5", [[1], [2]], [[0.5], [0.5]])
    proc = aggregate(tmp_path, [f"m={bars}"], "--sweep", f"m={other}", check=False)
    assert proc.returncode == 2 and "expected a sweep/1 file" in proc.stderr, proc.stderr
