"""Disjoint prompt subsets (paper 1's 16 x 500 protocol, here 3 x 25): each subset's summaries in
/subsets equal a separate `lmtopo zigzag` run on an activations file holding only that subset's rows;
the subsets are disjoint, sorted and inside the file; mean and sample std agree with numpy; subset 0
is also the file's main /bars and /summaries; impossible sizes are exit 2."""
import h5py
import numpy as np
import pytest

from conftest import run_lmtopo


def write(path, x):
    P, N, W = x.shape
    with h5py.File(path, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "test", "git_sha": "test", "git_dirty": 0,
                        "config_json": "{}", "created_by": "{}"})
        d = f.create_dataset("activations/h", data=x.astype(np.float32))
        d.attrs["points"] = [f"layers.{i}" for i in range(P)]
        f.create_dataset("prompts/id", data=[f"p{i}" for i in range(N)])
    return path


@pytest.fixture(scope="module")
def layers():
    g = np.random.default_rng(4)
    x = [g.normal(size=(90, 6))]
    for _ in range(4):
        x.append(x[-1] + 0.4 * g.normal(size=(90, 6)))
    return np.stack(x)


def test_subsets_equal_separate_runs(tmp_path, layers):
    f = write(tmp_path / "a.h5", layers)
    run_lmtopo("zigzag", "--activations", f, "--hook", "h", "-o", tmp_path / "z.h5", "-k", "3", "--dims", "0,1",
               "--subsets", "3", "--subset-size", "25", "--subset-seed", "7", ranks=2)
    run_lmtopo("validate", tmp_path / "z.h5")
    with h5py.File(tmp_path / "z.h5", "r") as z:
        rows = z["subsets/prompts"][()]
        sub = {k: z["subsets/h1"][k][()] for k in z["subsets/h1"]}
        main_bars = z["bars/position"][()]
        main_avg = z["summaries/h1/avg_similarity"][()]
    assert rows.shape == (3, 25)
    assert len(set(rows.ravel())) == 75 and rows.min() >= 0 and rows.max() < 90
    assert all(np.all(np.diff(r) > 0) for r in rows)
    assert not np.array_equal(rows[0], np.arange(25))  # random, not the first 25
    for s in range(3):
        g = write(tmp_path / f"s{s}.h5", layers[:, rows[s]])
        run_lmtopo("zigzag", "--activations", g, "--hook", "h", "-o", tmp_path / f"z{s}.h5", "-k", "3", "--dims", "0,1")
        with h5py.File(tmp_path / f"z{s}.h5", "r") as z:
            for name in ("betti", "avg_similarity", "births_by_birth", "births_by_death", "inter_layer"):
                np.testing.assert_allclose(sub[name][s], z["summaries/h1"][name][()], rtol=0, atol=1e-12, err_msg=name)
            if s == 0:
                assert np.array_equal(z["bars/position"][()], main_bars)
                np.testing.assert_allclose(z["summaries/h1/avg_similarity"][()], main_avg, atol=0)
    for name in ("betti", "avg_similarity", "inter_layer"):
        np.testing.assert_allclose(sub[name + "_mean"], sub[name].mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sub[name + "_std"], sub[name].std(0, ddof=1), rtol=1e-12, atol=1e-12)


def test_impossible_subset_sizes_are_clear_errors(tmp_path, layers):
    f = write(tmp_path / "a.h5", layers)
    proc = run_lmtopo("zigzag", "--activations", f, "--hook", "h", "-o", tmp_path / "z.h5", "--subsets", "4",
                      "--subset-size", "30", check=False)
    assert proc.returncode == 2 and "need 120, the file has 90" in proc.stderr
    proc = run_lmtopo("zigzag", "--activations", f, "--hook", "h", "-o", tmp_path / "z.h5", "-k", "5", "--subsets", "30",
                      check=False)
    assert proc.returncode == 2 and "subset size (3)" in proc.stderr
    assert not (tmp_path / "z.h5").exists()
