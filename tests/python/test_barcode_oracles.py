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
    # Random valid insert/delete sequences that mostly do not end empty; the default reducer (auto:
    # twist on these small inputs, one process).
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
                                                   ("distributed", 4, "true"),
                                                   # hybrid: the top dimension primal, the others dualized
                                                   ("twist", 1, "hybrid"), ("chunk", 1, "hybrid"),
                                                   ("distributed", 1, "hybrid"), ("distributed", 2, "hybrid"),
                                                   ("distributed", 3, "hybrid")])
def test_reducers_and_rank_counts_match_dionysus(tmp_path, reducer, ranks, dualize):
    for i, ops in _cases(100 + ranks, 12):
        fzz, out = tmp_path / f"z{i}.fzz", tmp_path / f"z{i}.bars"
        write_fzz(fzz, ops)
        run_lmtopo("barcode", fzz, "-o", out, "--reducer", reducer, "--dualize", dualize, ranks=ranks)
        assert read_bars(out) == dionysus_bars(ops), f"case {i}"


@pytest.mark.parametrize("ranks,args", [
    # --pivot-chunk deals the rows to the ranks in small chunks: columns cross ranks at nearly every
    # step of their reduction, in both directions.
    (2, ["--pivot-chunk", "1"]), (3, ["--pivot-chunk", "2"]), (2, ["--pivot-chunk", "7"]),
    # The column order changes the work, never the bars.
    (2, ["--column-order", "natural"]), (3, ["--column-order", "upper-first,natural"]),
    (2, ["--column-order", "received-first"]), (3, ["--column-order", "upper-first-received"]),
    (4, ["--column-order", "upper-thirds"]),
    # Speculative runs: each rank reduces its runs before the ones just before them are known.
    (2, ["--speculate-runs", "1"]), (3, ["--speculate-runs", "4", "--column-order", "natural"]),
    (2, ["--speculate-runs", "3", "--pivot-chunk", "5"]),
    # Rows split over the ranks: every addition made on every rank, on its rows.
    (2, ["--row-split"]), (3, ["--row-split", "--column-order", "natural"]), (4, ["--row-split", "--pivot-chunk", "3"]),
    # Two groups of ranks: the top dimension on the last ranks while the others reduce the rest; 0 (the
    # default): every rank both, one after the other, the second step compressed by the first's pairs.
    (2, ["--dualize", "hybrid", "--top-ranks", "0"]), (3, ["--dualize", "hybrid", "--pivot-chunk", "3"]), (3, ["--dualize", "hybrid", "--top-ranks", "2", "--pivot-chunk", "4"]),
    (4, ["--dualize", "hybrid", "--top-ranks", "1", "--row-split"]),
    # Row loans (on by default in the hybrid's bars-1 step taken upper-first on intervals) and without.
    (3, ["--dualize", "hybrid", "--column-order", "upper-first"]),
    (3, ["--dualize", "hybrid", "--column-order", "upper-first-received"]),
    (2, ["--dualize", "hybrid", "--column-order", "upper-first", "--no-row-loans"])])
def test_distributed_options_match_dionysus(tmp_path, ranks, args):
    for i, ops in _cases(200 + ranks + len(args[min(1, len(args) - 1)]), 8):
        fzz, out = tmp_path / f"z{i}.fzz", tmp_path / f"z{i}.bars"
        write_fzz(fzz, ops)
        run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", *args, ranks=ranks)
        assert read_bars(out) == dionysus_bars(ops), f"case {i}"


def test_top_ranks_unused_is_said(tmp_path):
    """--dualize auto on a small input keeps the boundary matrix: the groups do not apply, and the run says so."""
    fzz, out = tmp_path / "z.fzz", tmp_path / "z.bars"
    fzz.write_text("i 0\ni 1\ni 0 1\n")
    proc = run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", "--top-ranks", "1", ranks=2)
    assert "--top-ranks 1 not used" in proc.stderr and out.exists()


@pytest.mark.parametrize("args", [["--pivot-chunk", "-1", "--reducer", "distributed"], ["--pivot-chunk", "8"],
                                  ["--top-ranks", "-1", "--reducer", "distributed"], ["--top-ranks", "1"],
                                  ["--top-ranks", "1", "--reducer", "distributed", "--dualize", "true"]])
def test_distributed_options_refused_where_they_cannot_apply(tmp_path, args):
    fzz, out = tmp_path / "z.fzz", tmp_path / "z.bars"
    fzz.write_text("i 0\ni 1\ni 0 1\n")
    proc = run_lmtopo("barcode", fzz, "-o", out, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert args[0] in proc.stderr and not out.exists()


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
@pytest.mark.parametrize("reducer", ["twist", "distributed"])
def test_invalid_filtrations_exit_2_with_the_line(tmp_path, text, line, ranks, reducer):
    # The distributed reducer reads the file in byte ranges, one per rank: at 3 ranks the error may
    # lie in any rank's lines, and its line number must still be the file's.
    fzz, out = tmp_path / "bad.fzz", tmp_path / "bad.bars"
    fzz.write_text(text)
    if reducer == "distributed":
        ranks = 3
    proc = run_lmtopo("barcode", "--format", "fzz", fzz, "-o", out, "--reducer", reducer, ranks=ranks, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"bad.fzz:{line}:" in proc.stderr
    # One line from lmtopo (mpirun may add its own notice about the exit status).
    assert len([l for l in proc.stderr.splitlines() if l.startswith("lmtopo:")]) == 1, proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_distributed_reading_by_byte_ranges(tmp_path, ranks):
    # Comments and blank lines first (so the count line may fall in a later rank's bytes), a long
    # zigzag whose lines are split among the ranks, and errors planted late in the file: the bars
    # equal Dionysus's, the error's line number is the file's, and a digits-only line after content
    # is an error in any rank's share, as in the whole file.
    rng = random.Random(17)
    ops = random_zigzag(rng, vertices=8, max_dim=2, steps=300, p_delete=0.3)
    body = "".join(("i " if ins else "d ") + " ".join(map(str, s)) + "\n" for ins, s in ops)
    header = "# comment\n" * 40 + "\n" * 30 + f"{len(ops)}\n"
    fzz, out = tmp_path / "z.fzz", tmp_path / "z.bars"
    fzz.write_text(header + body)
    run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", ranks=ranks)
    assert read_bars(out) == dionysus_bars(ops)
    lines = (header + body).splitlines(keepends=True)
    first_op_line = 72
    for bad, why in [(f"i {ops[-1][1][0]} 99\n", "before its face"), ("17\n", "expected 'i' or 'd'")]:
        at = first_op_line + len(ops) - 5  # 1-based line of the planted line
        text = "".join(lines[:at - 1]) + bad + "".join(lines[at - 1:])
        text = text.replace(f"\n{len(ops)}\n", f"\n{len(ops) + 1}\n", 1)  # the count checks out
        fzz.write_text(text)
        proc = run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", ranks=ranks, check=False)
        assert proc.returncode == 2, proc.stderr
        assert f"z.fzz:{at}:" in proc.stderr and why in proc.stderr, proc.stderr
    fzz.write_text(header.replace(f"{len(ops)}\n", f"{len(ops) + 1}\n") + body)
    proc = run_lmtopo("barcode", fzz, "-o", out, "--reducer", "distributed", ranks=ranks, check=False)
    assert proc.returncode == 2 and f"declares {len(ops) + 1} operations" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["--reducer", "distributed", "--column-order", "sideways"],
                                  ["--column-order", "natural"],
                                  ["--reducer", "distributed", "--speculate-runs", "-3"],
                                  ["--reducer", "distributed", "--speculate-runs", "1048577"],
                                  ["--speculate-runs", "8"],
                                  ["--row-split", "--reducer", "chunk"],
                                  ["--reducer", "distributed", "--row-split", "--speculate-runs", "4"],
                                  ["--no-row-loans", "--reducer", "twist"]])
def test_distributed_only_options_refused_where_they_cannot_apply(tmp_path, args):
    fzz, out = tmp_path / "z.fzz", tmp_path / "z.bars"
    fzz.write_text("i 0\ni 1\ni 0 1\n")
    proc = run_lmtopo("barcode", fzz, "-o", out, *args, check=False)
    option = next(a for a in args if a in ("--column-order", "--speculate-runs", "--row-split", "--no-row-loans"))
    assert proc.returncode == 2 and option in proc.stderr, proc.stderr
    assert not out.exists()


def _strip_zigzag(vertices):
    """A triangulated strip built whole, then every third triangle and the edge only it had deleted
    (each deletion opens a hole, each edge deletion closes it), then those triangles' edges and
    triangles put back: 4 2/3 operations a vertex, every dimension busy."""
    v = vertices
    ops = [("i", (i,)) for i in range(v)]
    ops += [("i", (i, i + 1)) for i in range(v - 1)] + [("i", (i, i + 2)) for i in range(v - 2)]
    ops += [("i", (i, i + 1, i + 2)) for i in range(v - 2)]
    gone = range(0, v - 2, 3)
    ops += [("d", (i, i + 1, i + 2)) for i in gone] + [("d", (i, i + 2)) for i in gone]
    ops += [("i", (i, i + 2)) for i in gone if i % 2 == 0] + [("i", (i, i + 1, i + 2)) for i in gone if i % 4 == 0]
    return "".join(f"{kind} {' '.join(map(str, s))}\n" for kind, s in ops), len(ops)


@pytest.mark.parametrize("vertices,chosen", [(101_696, "twist"), (101_697, "distributed"), (1_000, "twist")])
def test_auto_reducer_takes_the_distributed_path_from_500k_operations(tmp_path, vertices, chosen):
    # One process, the default reducer: at or above 500,000 operations (kDistributedFromOperations)
    # it runs the distributed path on one rank (its phase table says so), below it the twist reducer
    # (499,999 and 500,006 operations);
    # either way the bars are the twist reducer's (itself checked against Dionysus above).
    text, operations = _strip_zigzag(vertices)
    assert (operations >= 500_000) == (chosen == "distributed"), operations
    fzz, auto_bars, twist_bars = tmp_path / "z.fzz", tmp_path / "auto.bars", tmp_path / "twist.bars"
    fzz.write_text(text)
    proc = run_lmtopo("barcode", fzz, "-o", auto_bars, "--benchmark")
    assert ("phase read (one process)" in proc.stdout) == (chosen == "distributed"), proc.stdout
    assert ("serial reducer" in proc.stdout) == (chosen == "twist"), proc.stdout
    run_lmtopo("barcode", fzz, "-o", twist_bars, "--reducer", "twist")
    got = read_bars(auto_bars)
    assert got == read_bars(twist_bars) and len(got) > vertices // 3
