"""src/spatial against independent implementations (through tests/tools/spatial_dump): Moran's I with
queen contiguity, its normal-approximation moments and permutation p-value against PySAL (esda.Moran
on libpysal's lat2W queen weights, row-standardised), on random, smooth and shuffled maps, on full and
partly empty sheets; Welch t and Benjamini-Hochberg against scipy; clusters of significant units
against scipy.ndimage.label; correlation against grid distance against numpy. Known answers: a smooth
gradient has I near 1, a shuffled one near -1/(n-1)."""
import json
import os
import pathlib
import subprocess
import warnings

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats

warnings.filterwarnings("ignore")  # libpysal/esda deprecation and island notices
import esda  # noqa: E402
import libpysal  # noqa: E402

DUMP = os.environ.get("SPATIAL_DUMP", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "tests" / "spatial_dump"))


def dump(request):
    proc = subprocess.run([DUMP], input=json.dumps(request), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def pysal_weights(side, cells):
    """Queen contiguity of the occupied cells, from libpysal's lattice (ids: cell numbers, row-major)."""
    full = libpysal.weights.lat2W(side, side, rook=False)
    w = libpysal.weights.w_subset(full, list(cells))
    w.transform = "r"
    return w


def sheet_map(kind, side, cells, rng):
    rows, cols = np.divmod(np.asarray(cells), side)
    if kind == "random":
        return rng.standard_normal(len(cells))
    gradient = rows + 0.5 * cols + 0.05 * rng.standard_normal(len(cells))
    return gradient if kind == "smooth" else rng.permutation(gradient)


@pytest.mark.parametrize("units", [64, 50])  # a full 8 x 8 sheet, and one with 14 empty cells
@pytest.mark.parametrize("kind", ["random", "smooth", "shuffled"])
def test_morans_i_matches_esda(units, kind):
    rng = np.random.default_rng(units + len(kind))
    layout = dump({"units": units, "seed": 3})
    side, cells = layout["side"], layout["cell"]
    values = sheet_map(kind, side, cells, rng)
    got = dump({"units": units, "seed": 3, "values": values.tolist(), "permutations": 999})
    w = pysal_weights(side, cells)
    # Same neighbours as libpysal's queen lattice (ids are cells).
    for u, nb in enumerate(got["neighbours"]):
        assert sorted(cells[v] for v in nb) == sorted(w.neighbors[cells[u]])
    by_cell = dict(zip(cells, values))
    y = np.array([by_cell[i] for i in w.id_order])
    ref = esda.Moran(y, w, permutations=999)
    m = got["moran"]
    np.testing.assert_allclose([m["i"], m["expected"], m["variance"], m["z"], m["p_norm"]],
                               [ref.I, ref.EI, ref.VI_norm, ref.z_norm, ref.p_norm], rtol=1e-9, atol=1e-12)
    assert abs(m["p_sim"] - ref.p_sim) < 0.08  # two estimates of one p from 999 draws each
    if kind == "smooth":
        assert m["i"] > 0.85 and m["p_sim"] == pytest.approx(1 / 1000)
    if kind == "shuffled":
        assert abs(m["i"] - m["expected"]) < 3 * np.sqrt(m["variance"])


def test_welch_bh_and_clusters_match_scipy():
    rng = np.random.default_rng(7)
    units = 100
    layout = dump({"units": units, "seed": 5})
    side, cells = layout["side"], np.asarray(layout["cell"])
    rows, cols = np.divmod(cells, side)
    effect = np.where((rows < 4) & (cols < 5), 1.5, 0.0) - np.where((rows >= 7) & (cols >= 6), 1.2, 0.0)  # two patches
    a = rng.standard_normal((30, units)) + effect
    b = rng.standard_normal((25, units))
    a[:, 17] = b[:, 17] = 2.0  # a unit constant in both groups: t = 0, p = 1
    got = dump({"units": units, "seed": 5, "a": a.tolist(), "b": b.tolist(), "alpha": 0.05})
    ref = scipy.stats.ttest_ind(a, b, equal_var=False)
    live = np.arange(units) != 17
    np.testing.assert_allclose(np.asarray(got["welch"]["t"])[live], ref.statistic[live], rtol=1e-9)
    np.testing.assert_allclose(np.asarray(got["welch"]["p"])[live], ref.pvalue[live], rtol=1e-7, atol=1e-300)
    assert got["welch"]["t"][17] == 0 and got["welch"]["p"][17] == 1
    q = np.asarray(got["welch"]["q"])
    np.testing.assert_allclose(q, scipy.stats.false_discovery_control(np.asarray(got["welch"]["p"]), method="bh"), rtol=1e-12)
    # Clusters: 8-connected components of the significant units of each sign on the grid image.
    t = np.asarray(got["welch"]["t"])
    sizes = []
    for sign in (1, -1):
        image = np.zeros((side, side), dtype=bool)
        image[rows, cols] = (q < 0.05) & (np.sign(t) == sign)
        labels, count = scipy.ndimage.label(image, structure=np.ones((3, 3)))
        sizes += [int((labels == k).sum()) for k in range(1, count + 1)]
    assert got["clusters"] == sorted(sizes, reverse=True) and got["clusters"][0] >= 10


def test_correlation_against_grid_distance_matches_numpy():
    rng = np.random.default_rng(11)
    units, n = 36, 40
    layout = dump({"units": units, "seed": 2})
    side, cells = layout["side"], np.asarray(layout["cell"])
    rows, cols = np.divmod(cells, side)
    smooth = rng.standard_normal((n, 1)) * rows[None, :] + rng.standard_normal((n, units))
    smooth[:, 4] = 1.0  # constant: left out
    got = dump({"units": units, "seed": 2, "responses": smooth.tolist(), "max_distance": 6})["by_distance"]
    c = np.corrcoef(smooth.T)
    d = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    want = []
    for k in range(1, 7):
        mask = (np.rint(d) == k) & np.triu(np.ones_like(d, dtype=bool), 1)
        mask[4, :] = mask[:, 4] = False
        want.append(c[mask].mean() if mask.any() else np.nan)
    np.testing.assert_allclose(got, want, rtol=1e-10, equal_nan=True)
    assert got[0] > got[-2]  # responses built to vary with the row: nearer units correlate more
