"""`lmtopo neurons --study sensitive_directions` against independent implementations: every prompt's KL
for every block, family and length from transformers with a forward pre-hook adding L u at the last
token of the block's input (u the recorded unit direction); towards_other's directions from
transformers' hidden states, the Gaussian's mean and covariance from numpy over every token; the
summaries (mean, quantiles, crossing length) from numpy; the sae family's directions are rows of the given
decoders (F32 with dead rows, BF16) read by torch; random-init llama (GQA) and GPT-NeoX, at 1 and 2
ranks. KL is 0 at L = 0 and grows with L along random directions. Bad input exits 2 naming it."""
import csv
import subprocess

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from test_extract import LMTOPO, MPIRUN, make_checkpoint, run_mpi
from test_neurons import prompts

# Random-init residual streams have norms of 0.2 to 2 (llama saturates by 0.1, GPT-NeoX needs more).
LENGTHS = [0.0, 0.02, 0.1, 0.5, 2.0, 8.0]


def sensitive(path, prompt_file, out, *extra, ranks=1, check=True):
    cmd = [LMTOPO, "neurons", "--study", "sensitive_directions", "--model", str(path), "--prompts", str(prompt_file),
           "--threads", "1", "--batch", "5", "--lengths", ",".join(map(str, LENGTHS)), "-o", str(out), *extra]
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd) if check else subprocess.run(cmd, capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def sae_decoders(tmp_path, hidden):
    """Two SAE decoders [features, hidden]: F32 with every other row dead (zero), and BF16."""
    g = torch.Generator().manual_seed(11)
    first = torch.randn(12, hidden, generator=g)
    first[::2] = 0
    second = torch.randn(7, hidden, generator=g).to(torch.bfloat16)
    paths = [tmp_path / "sae0.safetensors", tmp_path / "sae2.safetensors"]
    save_file({"W_dec": first, "b_dec": torch.zeros(hidden)}, str(paths[0]))
    save_file({"W_dec": second}, str(paths[1]))
    return paths, [first.double().numpy(), second.double().numpy()]


def layers_of(model):
    return model.gpt_neox.layers if model.config.model_type == "gpt_neox" else model.model.layers


def next_token_logp(model, ids, block=None, vector=None):
    """log p of the next token after the last of `ids`, with `vector` added at the last token of the
    input of `block`."""
    handle = None
    if block is not None:
        def add(m, args):  # transformers passes a decoder layer its hidden states positionally
            x = args[0].clone()
            x[0, -1] += torch.tensor(vector, dtype=x.dtype)
            return (x, *args[1:])
        handle = layers_of(model)[block].register_forward_pre_hook(add)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    if handle:
        handle.remove()
    return torch.log_softmax(logits.double(), -1).numpy()


@pytest.mark.parametrize("arch,ranks", [("llama_gqa", 2), ("neox_parallel", 1)])
def test_kl_curves_match_transformers_and_numpy(tmp_path, arch, ranks):
    model, tok, path = make_checkpoint(arch, tmp_path)
    prompt_file, rows = prompts(tmp_path, per_language=3)
    out = tmp_path / "s.h5"
    sae_paths, decoders = sae_decoders(tmp_path, model.config.hidden_size)
    sensitive(path, prompt_file, out, "--blocks", "0,2", "--seed", "5", "--kl-threshold", "0.005",
              "--families", "random,towards_other,gaussian,sae", "--sae-decoders", ",".join(map(str, sae_paths)), ranks=ranks)
    with h5py.File(out, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        blocks, families = f["sensitive/blocks"][:].tolist(), [x.decode() for x in f["sensitive/families"][:]]
        lengths, u, kl = f["sensitive/lengths"][:], f["sensitive/directions"][:], f["sensitive/kl"][:]
        other, kl_mean, kl_q = f["sensitive/other"][:], f["sensitive/kl_mean"][:], f["sensitive/kl_quantiles"][:]
        levels, crossing = f["sensitive/quantile_levels"][:], f["sensitive/crossing_length"][:]
        g_mean, g_cov = f["sensitive/gaussian/mean"][:], f["sensitive/gaussian/covariance"][:]
        feature, decoder_files = f["sensitive/sae/feature"][:], [x.decode() for x in f["sensitive/sae/decoder"][:]]
    assert attrs["study"] == "sensitive_directions" and attrs["hook"] == "block_input" and attrs["position"] == "last"
    assert blocks == [0, 2] and families == ["random", "towards_other", "gaussian", "sae"] and lengths.tolist() == LENGTHS
    ids = [tok.encode(r["text"]).ids for r in rows]
    P = len(ids)
    assert kl.shape == (2, 4, P, len(LENGTHS))
    # sae: each direction is a live row of its block's decoder, the row recorded.
    assert decoder_files == list(map(str, sae_paths))
    for k in range(2):
        for p in range(P):
            row = decoders[k][feature[k, p]]
            assert np.abs(row).max() > 0
            np.testing.assert_allclose(u[k, 3, p], row / np.linalg.norm(row), atol=1e-6)
    assert len(set(feature[0].tolist())) > 1
    np.testing.assert_allclose(np.linalg.norm(u, axis=-1), 1.0, rtol=1e-5)
    # Block inputs from transformers' hidden states: towards_other and the Gaussian fit.
    with torch.no_grad():
        states = [model(input_ids=torch.tensor([x]), output_hidden_states=True).hidden_states for x in ids]
    for k, b in enumerate(blocks):
        last = np.stack([s[b][0, -1].numpy() for s in states]).astype(np.float64)
        for p in range(P):
            assert other[k, p] != p and 0 <= other[k, p] < P
            towards = last[other[k, p]] - last[p]
            assert np.abs(towards).max() > 0
            np.testing.assert_allclose(u[k, 1, p], towards / np.linalg.norm(towards), atol=2e-5)
        every = np.concatenate([s[b][0].numpy() for s in states]).astype(np.float64)
        np.testing.assert_allclose(g_mean[k], every.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(g_cov[k], np.cov(every, rowvar=False), atol=1e-5, rtol=1e-4)
    # Every KL from transformers with the perturbation added by a hook.
    for p in range(P):
        clean = next_token_logp(model, ids[p])
        for k, b in enumerate(blocks):
            for f in range(4):
                for li, L in enumerate(LENGTHS):
                    logq = next_token_logp(model, ids[p], b, L * u[k, f, p])
                    ref = float(np.sum(np.exp(clean) * (clean - logq)))
                    assert kl[k, f, p, li] == pytest.approx(ref, rel=2e-3, abs=1e-7), (b, families[f], p, L)
    # Summaries from the KL values by numpy.
    np.testing.assert_allclose(kl_mean, kl.mean(axis=2), rtol=1e-12)
    np.testing.assert_allclose(kl_q, np.moveaxis(np.quantile(kl, levels, axis=2), 0, 2), rtol=1e-12, atol=1e-15)
    for k in range(2):
        for f in range(4):
            curve = kl_mean[k, f]
            above = np.nonzero(curve >= 0.005)[0]
            if len(above) == 0:
                assert np.isnan(crossing[k, f])
            else:
                i = above[0]
                ref = lengths[0] if i == 0 else np.interp(0.005, curve[i - 1:i + 1], lengths[i - 1:i + 1])
                assert crossing[k, f] == pytest.approx(ref, rel=1e-9)
    assert not np.isnan(crossing).all()
    with open(str(out)[:-3] + ".sensitivity.csv") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 * 4 * len(LENGTHS) and float(table[-1]["kl_mean"]) == pytest.approx(kl_mean[1, 3, -1])
    proc = subprocess.run([LMTOPO, "validate", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kl_is_zero_at_length_zero_and_grows_along_random_directions(tmp_path):
    _, _, path = make_checkpoint("llama_gqa", tmp_path)
    prompt_file, _ = prompts(tmp_path, per_language=4)
    out = tmp_path / "z.h5"
    sensitive(path, prompt_file, out, "--families", "random", "--blocks", "1")
    with h5py.File(out, "r") as f:
        kl, kl_mean = f["sensitive/kl"][0, 0], f["sensitive/kl_mean"][0, 0]
        assert "sensitive/gaussian" not in f
    assert np.abs(kl[:, 0]).max() < 1e-9
    assert (np.diff(kl_mean) > 0).all(), kl_mean


@pytest.mark.parametrize("args,message", [
    (["--blocks", "3"], "--blocks: block 3 outside 0..2"),
    (["--lengths", "0,2,1"], "--lengths: expected finite lengths >= 0 in increasing order"),
    (["--lengths", "0,x"], "--lengths: 'x' in '0,x' is not a valid item"),
    (["--families", "random,pca"], "--families: unknown family 'pca'"),
    (["--families", "sae"], "--sae-decoders: family sae needs one decoder per studied block (1), got 0"),
    (["--sae-decoders", "SAE"], "--sae-decoders: given, but --families does not list sae"),
    (["--families", "sae", "--blocks", "1", "--sae-decoders", "SAE_T"], "the model's hidden size), got [hidden, features]: transpose it"),
    (["--families", "sae", "--blocks", "1", "--sae-decoders", "SAE", "--sae-tensor", "decoder"], "no tensor 'decoder' (--sae-tensor)"),
    (["nan"], "the residual stream before block 2 is not finite"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    model, _, path = make_checkpoint("llama_gqa", tmp_path)
    if args == ["nan"]:  # a NaN weight in block 1's MLP output: the stream before block 2 is NaN
        with torch.no_grad():
            model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
        model.save_pretrained(path, safe_serialization=True)
        args = ["--blocks", "2"]
    if "SAE" in args or "SAE_T" in args:  # decoders [features, hidden] and [hidden, features]
        H = model.config.hidden_size
        save_file({"W_dec": torch.ones(5, H)}, str(tmp_path / "sae.safetensors"))
        save_file({"W_dec": torch.ones(H, 5)}, str(tmp_path / "sae_t.safetensors"))
        args = [str(tmp_path / "sae.safetensors") if a == "SAE" else str(tmp_path / "sae_t.safetensors") if a == "SAE_T" else a for a in args]
    prompt_file, _ = prompts(tmp_path, per_language=2)
    # --lengths given twice would be refused by the option parser: the test's default is replaced.
    cmd_args = list(args)
    proc = sensitive(path, prompt_file, tmp_path / "bad.h5", *cmd_args, check=False) if "--lengths" not in args else \
        subprocess.run([LMTOPO, "neurons", "--study", "sensitive_directions", "--model", str(path), "--prompts", str(prompt_file),
                        "--threads", "1", "-o", str(tmp_path / "bad.h5"), *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bad.h5").exists()
