"""Paper 1's released H1 barcodes: lmtopo's summaries must give the published pruning block ranges.
The expected table is read from the data's own README (shared/data), not restated here."""
import re

import pytest

from conftest import SHARED, run_lmtopo

DATA = SHARED / "data" / "paper1-pile-barcodes"


def _table():
    rows = []
    for line in (DATA / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*(\S+\.csv)[^|]*\|\s*(\d+)\s*\|\s*(\d+)–(\d+)\s*\|\s*(\d+)–(\d+)\s*\|\s*(\d+)\s*\|", line)
        if m:
            rows.append((m.group(1), int(m.group(2)), (int(m.group(3)), int(m.group(4))),
                         (int(m.group(5)), int(m.group(6))), int(m.group(7))))
    return rows


def test_readme_table_found():
    assert len(_table()) == 5


@pytest.mark.parametrize("name,L,cut10,cut20,argmax", _table())
def test_pruning_ranges_match_the_paper(name, L, cut10, cut20, argmax):
    out = run_lmtopo("summarize", DATA / name, "--dim", "1").stdout
    assert f"L = {L} layers" in out
    assert f"argmax {argmax}\n" in out
    assert f"candidates@0.9 {cut10[0]}-{cut10[1]}\n" in out
    assert f"candidates@0.8 {cut20[0]}-{cut20[1]}\n" in out


def test_layers_come_from_the_h0_bars_or_must_be_given(tmp_path):
    """L is read from the longest H0 bar (2L); a file without H0 bars is refused unless --layers is
    given, and a bar dying after 2L is refused."""
    src = (DATA / "pythia_pile_knn_5_dim_4.csv").read_text().splitlines()
    h1 = tmp_path / "h1.csv"
    h1.write_text("\n".join([src[0]] + [l for l in src[1:] if l.startswith("1,")]) + "\n")
    proc = run_lmtopo("summarize", h1, "--dim", "1", check=False)
    assert proc.returncode == 2 and "no H0 bars" in proc.stderr and "--layers" in proc.stderr
    full = run_lmtopo("summarize", DATA / "pythia_pile_knn_5_dim_4.csv", "--dim", "1").stdout
    given = run_lmtopo("summarize", h1, "--dim", "1", "--layers", 33).stdout
    assert given.splitlines()[1:] == full.splitlines()[1:]
    proc = run_lmtopo("summarize", h1, "--dim", "1", "--layers", 20, check=False)
    assert proc.returncode == 2 and "after 2L = 40" in proc.stderr
