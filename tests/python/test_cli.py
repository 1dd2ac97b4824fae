"""The CLI contract: subcommands listed, --help for each, exit codes, docs/cli.md in sync."""
import re

import pytest

from conftest import SOURCE, run_lmtopo

SUBCOMMANDS = ["prepare", "plan", "validate", "inspect", "run", "train", "extract", "submit", "status", "zigzag", "sweep",
               "barcode", "summarize"]


def test_top_level_help_lists_the_working_subcommands():
    out = run_lmtopo("--help").stdout
    listed = re.findall(r"^  (\S+)\s", out, flags=re.M)
    assert listed == SUBCOMMANDS


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_documents_its_options(sub):
    proc = run_lmtopo(sub, "--help")
    assert proc.returncode == 0
    assert "usage:" in proc.stdout and "--help" in proc.stdout


def test_docs_cli_md_is_generated_from_the_option_tables():
    generated = run_lmtopo("--cli-reference").stdout
    assert (SOURCE / "docs" / "cli.md").read_text() == generated, \
        "docs/cli.md is stale: regenerate with ./build/lmtopo --cli-reference > docs/cli.md"


def test_no_arguments_is_bad_usage():
    assert run_lmtopo(check=False).returncode == 2


def test_unknown_subcommand_exits_2():
    proc = run_lmtopo("frobnicate", check=False)
    assert proc.returncode == 2 and "frobnicate" in proc.stderr


def test_unknown_option_exits_2_naming_it(tmp_path):
    proc = run_lmtopo("barcode", "x.fzz", "-o", tmp_path / "o", "--reduce", "twist", check=False)
    assert proc.returncode == 2
    assert "reduce" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_required_option_exits_2(tmp_path):
    proc = run_lmtopo("barcode", tmp_path / "x.fzz", check=False)
    assert proc.returncode == 2 and "output" in proc.stderr


def test_missing_input_file_exits_2(tmp_path):
    proc = run_lmtopo("barcode", tmp_path / "absent.fzz", "-o", tmp_path / "o", check=False)
    assert proc.returncode == 2 and "absent.fzz" in proc.stderr


def test_unknown_reducer_exits_2(tmp_path):
    (tmp_path / "a.fzz").write_text("i 0\n")
    proc = run_lmtopo("barcode", tmp_path / "a.fzz", "-o", tmp_path / "o", "--reducer", "magic", check=False)
    assert proc.returncode == 2 and "--reducer" in proc.stderr


def test_petsc_options_pass_through_after_double_dash(tmp_path):
    (tmp_path / "a.fzz").write_text("i 0\n")
    run_lmtopo("barcode", tmp_path / "a.fzz", "-o", tmp_path / "o", "--", "-log_view")
    assert (tmp_path / "o").read_text() == "0 1 1\n"
