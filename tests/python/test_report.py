"""`lmtopo report JOB.yaml` on a real small study (trained on 2 ranks: every stage that feeds the report),
loaded in headless Chromium: the screenshot is not blank, every image is decoded by the browser, every
SVG and CSV link resolves, and every number printed in a table equals the value in the HDF5 or CSV file
it names. Before the study has run, the report is an input error."""
import csv
import html.parser
import re
import shutil
import subprocess

import h5py
import numpy as np
import pytest
from PIL import Image

from conftest import run_lmtopo

SPEC = """study: report-test
output: out
models:
  - name: tiny
    from_train: true
data: {source: gettext, languages: [en, de, fr], prompts: 30, seed: 5}
train: {steps: 4, batch: 4, layers: 2, hidden: 32, heads: 2, intermediate: 64, vocab_size: 300, seq_len: 16}
extract: {hooks: [post_attention_layernorm], pool: mean, batch: 8}
zigzag: {k: 3, max_dim: 2, subsets: 2, subset_size: 40, null_draws: 2}
sweep: {metrics: [cka_linear_unbiased, sads, lrds, retrieval, angular_distance, block_influence], pairs: [layer_layer, language_language, checkpoint_checkpoint], knn: 3,
        bootstrap: 20}
neurons: {studies: [key_linguistic, repetition, sensitive_directions, spatial], threshold: 1.0, control_draws: 2, batch: 8,
          spatial: {contrast: [en, de], sheets: [mlp_act], permutations: 99, max_distance: 3},
          repetition: {texts: 4, prefix_tokens: 4, new_tokens: 24, ngram: 2, min_occurrences: 2, window: 24, min_second: 4, span: 2, top_k: 4},
          sensitive_directions: {lengths: [0, 1, 4], families: [random, gaussian]}}
eval: {batch: 8, conditions: [{name: base}, {name: skip1, skip_blocks: "1"}]}
prune: {thresholds: [0.9, 0.5], random_draws: 2}
aggregate: {bootstrap: 50, permutations: 100, curve_dims: [0, 1], barcodes: [{model: imported, path: imported.csv}]}
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HEADLESS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]


class Page(html.parser.HTMLParser):
    """The page's images, links, body attributes and sourced numbers."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.body, self.numbers = [], [], {}, []
        self._source = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])
        elif tag == "body":
            self.body = a
        elif tag == "td" and "data-source" in a:
            self._source = a["data-source"]

    def handle_data(self, data):
        if self._source is not None:
            self.numbers.append((self._source, data.strip()))
            self._source = None


def source_value(root, source):
    """FILE.h5:/dataset[i,j] or FILE.csv:ROW:COLUMN, relative to the study's output folder."""
    m = re.fullmatch(r"(.+\.h5):(/[^\[]+)\[([0-9,]+)\]", source)
    if m:
        with h5py.File(root / m.group(1), "r") as f:
            return float(f[m.group(2)][tuple(int(i) for i in m.group(3).split(","))])
    path, row, column = source.rsplit(":", 2)
    with open(root / path, newline="") as f:
        return float(list(csv.DictReader(f))[int(row)][column])


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package chromium) is not installed")
def test_report_in_headless_chromium(tmp_path):
    (tmp_path / "imported.csv").write_text("dimension,birth,death\n0,1,8\n1,3,6\n1,2,7\n1,5,8\n")
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC)
    early = run_lmtopo("report", spec, check=False)
    assert early.returncode == 2 and "does not exist (run the study first)" in early.stderr, early.stderr
    run_lmtopo("run", spec, ranks=2)
    out = run_lmtopo("report", spec).stdout
    root = tmp_path / "out"
    index = root / "report" / "index.html"
    figures = int(re.search(r"report: (\d+) figures", out).group(1))
    assert figures >= 11, out  # S̄, Betti, eval, pruning, key neurons, ablation, repetition, t-map, KL, CKA, SADS

    png = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *HEADLESS, "--window-size=1200,3000", f"--screenshot={png}", index.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200) and pixels.std() > 20 and (pixels < 200).mean() > 0.02  # text and plots, not a blank page

    dom = subprocess.run([CHROMIUM, *HEADLESS, "--virtual-time-budget=5000", "--dump-dom", index.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    page = Page()
    page.feed(dom)
    assert len(page.images) == figures and page.body.get("data-images") == str(figures)
    assert page.body.get("data-broken") == "0"  # every <img> decoded by the browser
    for src in page.images:
        assert Image.open(index.parent / src).size[0] > 300
    for href in page.links:
        target = index.parent / href
        assert target.exists(), href
        if href.endswith(".csv"):
            rows = list(csv.reader(open(target)))
            assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows), href
        else:
            assert "<svg" in target.read_text()[:2000], href
    assert len(page.numbers) > 40
    for source, text in page.numbers:
        want = source_value(root, source)
        if text == "NaN":
            assert np.isnan(want), source
        else:
            assert float(text) == pytest.approx(want, rel=1e-5, abs=1e-9), source

    # One model alone (no imported barcode): no model pairs, no universality table, the rest drawn.
    alone = tmp_path / "alone.yaml"
    alone.write_text(SPEC.replace(", barcodes: [{model: imported, path: imported.csv}]", ""))
    run_lmtopo("run", alone, ranks=2)
    single = run_lmtopo("report", alone, "-o", tmp_path / "alone-report").stdout
    assert int(re.search(r"report: (\d+) figures", single).group(1)) == figures
    assert "Universality" not in (tmp_path / "alone-report" / "index.html").read_text()

    # The CSV behind the S̄ figure holds the aggregate's curve of the last checkpoint.
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        steps = f["series/step"][:].tolist()
        curve = f["curves/avg_similarity"][steps.index(max(steps))]
    table = list(csv.DictReader(open(root / "report" / "figures" / "sbar_post_attention_layernorm.csv")))
    rows = [r for r in table if r["model"] == "tiny" and r["series"] == "last"]
    np.testing.assert_allclose([float(r["avg_similarity"]) for r in rows], curve, rtol=1e-12)
    # The Betti curves of every homology dimension: the aggregate's /curves/by_dim/betti of the last checkpoint.
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        by_dim, dims = f["curves/by_dim/betti"][:], f["grid/curve_dims"][:].tolist()
    table_dims = list(csv.DictReader(open(root / "report" / "figures" / "betti_dims_post_attention_layernorm.csv")))
    assert dims == [0, 1]
    for k, d in enumerate(dims):
        mine = [float(r["betti"]) for r in table_dims if r["model"] == "tiny" and int(r["dim"]) == d]
        np.testing.assert_allclose(mine, by_dim[k, steps.index(max(steps))], rtol=1e-12)
    # and the random-init null band: the same model's step-0 curve
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        models = [m.decode() for m in f["series/model"][:]]
        step0 = f["curves/avg_similarity"][[i for i, (m, s) in enumerate(zip(models, steps)) if m == "tiny" and s == 0][0]]
    null = [r for r in table if r["model"] == "tiny" and r["series"] == "step0_null"]
    np.testing.assert_allclose([float(r["avg_similarity"]) for r in null], step0, rtol=1e-12, equal_nan=True)
    # and the permuted-prompts null band of the last checkpoint: mean and sample sd of the zigzag's two
    # null draws, interpolated to the grid here with numpy
    last = steps.index(max(steps))
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        depth, dim = f["grid/depth"][:], int(f.attrs["dim"])
        source = f["series/source"][last].decode()
    with h5py.File(source, "r") as z:
        draws = z[f"null/h{dim}/avg_similarity"][:]
    on_grid = np.array([np.interp(depth, np.linspace(0, 1, len(d)), d) for d in draws])
    band = [r for r in table if r["model"] == "tiny" and r["series"] == "permuted_null"]
    np.testing.assert_allclose([float(r["avg_similarity"]) for r in band], on_grid.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose([float(r["sd"]) for r in band], on_grid.std(axis=0, ddof=1), rtol=1e-10, atol=1e-14)
    # The LRDS figure: every checkpoint's curve and interval as its sweep file holds them.
    lrds_rows = list(csv.DictReader(open(root / "report" / "figures" / "lrds_tiny_post_attention_layernorm.csv")))
    for label in {r["checkpoint"] for r in lrds_rows}:
        with h5py.File(root / "sweep" / "tiny" / label / "post_attention_layernorm.h5", "r") as f:
            lrds, lrds_ci = f["language_language/lrds"][:], f["language_language/lrds_ci"][:]
        mine = [r for r in lrds_rows if r["checkpoint"] == label]
        np.testing.assert_allclose([float(r["lrds"]) for r in mine], lrds, rtol=1e-12)
        np.testing.assert_allclose([[float(r["lrds_ci_low"]), float(r["lrds_ci_high"])] for r in mine], lrds_ci, rtol=1e-12)
    # and the SADS figure's band: the last checkpoint's sweep interval over parallel sentences, and the
    # aggregate's same interval on its grid (each bound interpolated here with numpy)
    with h5py.File(root / "sweep" / "tiny" / "step4" / "post_attention_layernorm.h5", "r") as f:
        sads, sads_ci = f["language_language/sads"][:], f["language_language/sads_ci"][:]
    assert np.isfinite(sads_ci).all() and (sads_ci[:, 0] <= sads_ci[:, 1]).all()
    sads_rows = [r for r in csv.DictReader(open(root / "report" / "figures" / "sads_tiny_post_attention_layernorm.csv"))
                 if r["checkpoint"] == "step4"]
    np.testing.assert_allclose([[float(r["sads_ci_low"]), float(r["sads_ci_high"])] for r in sads_rows], sads_ci, rtol=1e-12)
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        row = [i for i, s in enumerate(f["sweeps/step"][:]) if s == 4][0]
        for e in range(2):
            np.testing.assert_allclose(f["sweeps/sads_ci"][row, :, e],
                                       np.interp(depth, np.linspace(0, 1, len(sads)), sads_ci[:, e]), rtol=1e-12)
    # and the persistence-similarity panel of the last checkpoint: the aggregate's matrix at every second
    # grid depth, row by row
    with h5py.File(root / "aggregate" / "post_attention_layernorm.h5", "r") as f:
        matrix = f["curves/similarity"][last][::2, ::2]
        step = int(f["series/step"][last])
    panel = [r for r in csv.DictReader(open(root / "report" / "figures" / "phsim_post_attention_layernorm_tiny.csv"))
             if int(r["step"]) == step]
    np.testing.assert_allclose(np.array([float(r["similarity"]) for r in panel]).reshape(matrix.shape), matrix, rtol=1e-12)
    # and the retrieval matrix: the last checkpoint's top-1 accuracies at the point the caption names
    with h5py.File(root / "sweep" / "tiny" / "step4" / "post_attention_layernorm.h5", "r") as f:
        top1 = f["language_language/retrieval_top1"][:]
    off = ~np.eye(top1.shape[1], dtype=bool)
    best = int(np.argmax([m[off].mean() for m in top1]))
    cells = list(csv.DictReader(open(root / "report" / "figures" / "retrieval_tiny_post_attention_layernorm.csv")))
    np.testing.assert_allclose([float(r["top1"]) for r in cells], top1[best].ravel(), rtol=1e-12)
