"""lmtopo barcode against Dionysus 2 (zigzag) and GUDHI (standard persistence) on random inputs,
through the real CLI, for every reducer and several rank counts."""
import random

import pytest

from conftest import run_lmtopo
from zigzag_oracle import (dionysus_bars, gudhi_standard_bars, random_zigzag, read_bars, write_fzz)


def _cases(seed, count):
    rng = random.Random(seed)
    for i in range(count):
        yield i, random_zigzag(rng, vertices=rng.randint(3, 9), max_dim=rng.randint(1, 3),
                               steps=rng.randint(5, 70), p_delete=rng.choice([0.1, 0.3, 0.45]))


def test_300_random_zigzags_match_dionysus(tmp_path):
    # Random valid insert/delete sequences that mostly do not end empty; twist reducer.
    mismatches = []
    for i, ops in _cases(1, 300):
        fzz, out = tmp_path / f"z{i}.fzz", tmp_path / f"z{i}.bars"
        write_fzz(fzz, ops, with_count=i % 2 == 0)
        run_lmtopo("barcode", "--format", "fzz", fzz, "-o", out)
        got, want = read_bars(out), dionysus_bars(ops)
        if got != want:
            mismatches.append((i, got, want))
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("reducer,ranks,dualize", [("chunk", 1, "true"), ("twist", 1, "false"), ("chunk", 1, "false"),
                                                   ("distributed", 1, "true"), ("distributed", 2, "true"),
                                                   ("distributed", 2, "false"), ("distributed", 3, "false"),
                                                   ("distributed", 3, "true"),
                                                   ("distributed", 4, "true")])
def test_reducers_and_rank_counts_match_dionysus(tmp_path, reducer, ranks, dualize):
    for i, ops in _cases(100 + ranks, 12):
        fzz, out = tmp_path / f"z{i}.fzz", tmp_path / f"z{i}.bars"
        write_fzz(fzz, ops)
        run_lmtopo("barcode", fzz, "-o", out, "--reducer", reducer, "--dualize", dualize, ranks=ranks)
        assert read_bars(out) == dionysus_bars(ops), f"case {i}"


@pytest.mark.parametrize("ranks,chunk", [(2, 1), (3, 2), (2, 7)])
def test_interleaved_pivot_ownership_matches_dionysus(tmp_path, ranks, chunk):
    # --pivot-chunk deals the rows to the ranks in small chunks: columns cross ranks at nearly every
    # step of their reduction, in both directions.
    for i, ops in _cases(200 + chunk, 10):
        fzz, out = tmp_path / f"z{i}.fzz", tmp_path / f"z{i}.bars"
        write_fzz(fzz, ops)
        run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", "--pivot-chunk", chunk, ranks=ranks)
        assert read_bars(out) == dionysus_bars(ops), f"case {i}"


@pytest.mark.parametrize("args", [["--pivot-chunk", "-1", "--reducer", "distributed"], ["--pivot-chunk", "8"]])
def test_pivot_chunk_refused_where_it_cannot_apply(tmp_path, args):
    fzz, out = tmp_path / "z.fzz", tmp_path / "z.bars"
    fzz.write_text("i 0\ni 1\ni 0 1\n")
    proc = run_lmtopo("barcode", fzz, "-o", out, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "--pivot-chunk" in proc.stderr and not out.exists()


def test_standard_persistence_of_random_filtrations_matches_gudhi(tmp_path):
    rng = random.Random(3)
    for i in range(60):
        ops = random_zigzag(rng, vertices=rng.randint(3, 10), max_dim=rng.randint(1, 3),
                            steps=rng.randint(5, 80), p_delete=0.0)
        fzz, out = tmp_path / f"s{i}.fzz", tmp_path / f"s{i}.bars"
        write_fzz(fzz, ops)
        run_lmtopo("barcode", fzz, "-o", out)
        assert read_bars(out) == gudhi_standard_bars(ops), f"case {i}"


def test_fastzigzag_readme_style_example(tmp_path):
    # A filtration that does not end empty: bars alive at the end close at m.
    text = "9\ni 0\ni 1\ni 2\ni 0 1\ni 0 2\ni 1 2\nd 0 1\ni 0 1\nd 1 2\n"
    fzz, out = tmp_path / "ex.fzz", tmp_path / "ex.bars"
    fzz.write_text(text)
    run_lmtopo("barcode", "--format", "fzz", fzz, "-o", out)
    assert out.read_text() == "0 1 9\n0 2 3\n0 3 4\n1 6 6\n1 8 8\n"


@pytest.mark.parametrize("text,line,ranks", [
    ("i 0\ni 0 1\n", 2, None),               # inserting before a face
    ("3\ni 0\ni 1\nd 2\n", 4, None),          # deleting an absent simplex (count line is line 1)
    ("i 0\ni 1\ni 0 1\nd 1\n", 4, 2),        # a face deleted before its coface, under mpirun
    ("i 0\nq 1\n", 2, None),                 # malformed operation
    ("99999999999999999999\ni 0\n", 1, None),  # a count line too large for any integer type
    ("i 0 99999999999999999999\n", 1, None),   # a vertex id too large
])
def test_invalid_filtrations_exit_2_with_the_line(tmp_path, text, line, ranks):
    fzz, out = tmp_path / "bad.fzz", tmp_path / "bad.bars"
    fzz.write_text(text)
    proc = run_lmtopo("barcode", "--format", "fzz", fzz, "-o", out, ranks=ranks, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"bad.fzz:{line}:" in proc.stderr
    # One line from lmtopo (mpirun may add its own notice about the exit status).
    assert len([l for l in proc.stderr.splitlines() if l.startswith("lmtopo:")]) == 1, proc.stderr
    assert not out.exists()
