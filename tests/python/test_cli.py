"""The CLI contract: subcommands listed, --help for each, exit codes, docs/cli.md in sync."""
import re

import pytest

from conftest import SOURCE, run_lmtopo

SUBCOMMANDS = ["prepare", "plan", "validate", "inspect", "convert", "run", "train", "extract", "eval", "generate", "neurons", "prune", "submit",
               "status", "zigzag", "sweep", "barcode", "summarize", "aggregate", "report"]


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
    """sweep hands the options after -- to PETSc: -log_view makes PetscFinalize print its performance
    summary with the dense products sweep runs; without the option there is none."""
    import h5py
    import numpy as np
    rng = np.random.default_rng(3)
    act = tmp_path / "a.h5"
    with h5py.File(act, "w") as f:
        f.attrs.update({"lmtopo_schema": "activations/1", "lmtopo_version": "test", "git_sha": "test", "git_dirty": 0,
                        "config_json": "{}", "created_by": "{}"})
        d = f.create_dataset("activations/h", data=rng.normal(size=(3, 12, 5)).astype(np.float32))
        d.attrs.update({"points": [f"l{i}" for i in range(3)], "pooling": "last", "hook": "h"})
        f.create_dataset("prompts/id", data=[f"p{i}" for i in range(12)])
        f.create_dataset("prompts/lang", data=["en"] * 12)
        f.create_dataset("prompts/group", data=np.arange(12, dtype=np.int64))
        f.create_dataset("prompts/n_tokens", data=np.ones(12, dtype=np.int64))
    # CKA by centred Grams: PETSc's dense products (the feature cross-products are BLAS calls).
    args = ["sweep", "--activations", act, "--hook", "h", "--pairs", "layer_layer", "--metric", "cka_linear_biased",
            "--cka-method", "gram"]
    plain = run_lmtopo(*args, "-o", tmp_path / "s0.h5")
    assert "PETSc Performance Summary" not in plain.stdout
    logged = run_lmtopo(*args, "-o", tmp_path / "s1.h5", "--", "-log_view")
    assert "PETSc Performance Summary" in logged.stdout and "MatMatTrnMultNum" in logged.stdout, logged.stdout[-2000:]


def test_double_dash_arguments_are_refused_where_nothing_uses_them(tmp_path):
    (tmp_path / "a.fzz").write_text("i 0\n")
    proc = run_lmtopo("barcode", tmp_path / "a.fzz", "-o", tmp_path / "o", "--", "-log_view", check=False)
    assert proc.returncode == 2 and "takes no arguments after --" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
