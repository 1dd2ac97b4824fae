"""Generation and evaluation throughput of lmtopo against transformers on a real model (SmolLM2-135M as
./scripts/smollm2.sh converts it) and prompts from the corpus of jobs/smollm2.yaml, in one run:
- generation: greedy, --max-new-tokens N on every prompt without stopping at EOS, one prompt at a time
  (batch 1, the first --single-prompts prompts) and --gen-batch prompts at a time (left-padded):
  lmtopo with its key/value cache (at 1 rank x T threads, and batched also at T ranks x 1 thread) and,
  at batch 1, with --no-kv-cache (each step recomputes the sequence); against transformers'
  generate(do_sample=False, use_cache=True) at torch.set_num_threads(T), batched the same way
  (left padding); tokens/s over the generation loop (model load excluded on both sides, as lmtopo's
  summary line reports it); and how many continuations are identical to transformers';
- evaluation (perplexity): lmtopo eval at 1 rank x T threads and T ranks x 1 thread, batch B, against
  transformers computing the same per-token NLL (float32 log-softmax of the logits) in the same batches
  (lmtopo's windows of 4 batches sorted by length), right-padded; scored tokens/s over the forward
  passes; mean NLL of both, which must agree.
Prints two Markdown tables for docs/benchmarks.md.

Usage: .venv-torch/bin/python bench/generate_eval_vs_transformers.py [--model models/smollm2-135m-instruct]
       [--corpus smollm2-out/corpus.h5] [--generate-prompts 8] [--new-tokens 64] [--eval-prompts 400]
       [--batch 16] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from extract_vs_transformers import lmtopo_batches, prompts_jsonl  # noqa: E402

ENV = dict(os.environ, LMTOPO_PROGRESS_SECONDS="0", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def lmtopo(ranks, threads, *args):
    # Each rank bound to as many cores as it runs threads (mpirun's default binds a rank to one core).
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--map-by", f"slot:PE={threads}", "-n", str(ranks),
           os.path.join(ROOT, "build", "lmtopo"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return proc.stdout


def lmtopo_generate(a, prompts, out, ranks, threads, batch, *extra):
    stdout = lmtopo(ranks, threads, "generate", "--model", a.model, "--prompts", prompts, "--max-new-tokens", str(a.new_tokens),
                    "--no-eos-stop", "--batch", str(batch), "--threads", str(threads), "-o", out, *extra)
    tokens, seconds = re.search(r"(\d+) tokens in ([\d.]+) s", stdout).groups()
    ids = [json.loads(l)["generated_ids"] for l in open(out)]
    return int(tokens), float(seconds), ids


def lmtopo_eval(a, prompts, ranks, threads, out):
    stdout = lmtopo(ranks, threads, "eval", "--model", a.model, "--prompts", prompts, "--batch", str(a.batch),
                    "--threads", str(threads), "-o", out)
    tokens, nll, seconds = re.search(r"(\d+) scored tokens, mean NLL ([\d.]+) nats.*, ([\d.]+) s", stdout).groups()
    return int(tokens), float(seconds), float(nll)


def hf_worker(a):
    import time
    import torch
    import transformers
    from tokenizers import Tokenizer
    torch.set_num_threads(a.threads)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, attn_implementation="eager").eval()
    ids = [tok.encode(json.loads(l)["text"]).ids for l in open(a.prompts)]
    if a.hf_worker == "generate":
        out, t0 = [], time.perf_counter()
        with torch.no_grad():
            for b0 in range(0, len(ids), a.batch):
                rows = ids[b0:b0 + a.batch]
                T = max(len(r) for r in rows)
                x = torch.tensor([[0] * (T - len(r)) + r for r in rows])
                m = torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in rows])
                seq = model.generate(x, attention_mask=m, do_sample=False, max_new_tokens=a.new_tokens,
                                     min_new_tokens=a.new_tokens, use_cache=True, pad_token_id=0, synced_gpus=False)
                out += seq[:, T:].tolist()
        seconds = time.perf_counter() - t0
        print(json.dumps({"seconds": seconds, "tokens": sum(len(o) for o in out), "ids": out}))
        return
    batches = lmtopo_batches(ids, a.batch)
    total, scored, t0 = 0.0, 0, time.perf_counter()
    with torch.no_grad():
        for members in batches:
            rows = [ids[i] for i in members]
            T = max(len(r) for r in rows)
            x = torch.tensor([r + [0] * (T - len(r)) for r in rows])
            m = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
            logp = torch.log_softmax(model(input_ids=x, attention_mask=m, use_cache=False).logits[:, :-1].float(), -1)
            nll = -logp.gather(2, x[:, 1:].unsqueeze(-1)).squeeze(-1)
            keep = (m[:, 1:] * m[:, :-1]).bool()
            total += nll[keep].double().sum().item()
            scored += int(keep.sum())
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "tokens": scored, "nll": total / scored}))


def hf(a, what, prompts, batch):
    cmd = [sys.executable, __file__, "--hf-worker", what, "--model", a.model, "--prompts", prompts, "--batch", str(batch),
           "--threads", str(a.threads), "--new-tokens", str(a.new_tokens)]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])


def print_table(title, header, rows):
    print(title)
    print("| run | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def generation_rows(a, tmp, prompts, batch, runs):
    ref = hf(a, "generate", prompts, batch)
    base = ref["tokens"] / ref["seconds"]
    rows = [(f"transformers generate, batch {batch}, {a.threads} threads", str(ref["tokens"]), f"{ref['seconds']:.2f}",
             f"{base:.1f}", "1.00x", "")]
    for ranks, threads, extra in runs:
        tokens, seconds, ids = lmtopo_generate(a, prompts, os.path.join(tmp, "g.out"), ranks, threads, batch, *extra)
        same = sum(x == y for x, y in zip(ids, ref["ids"]))
        name = f"lmtopo generate, batch {batch}, {ranks} rank(s) x {threads} thread(s)" + (", no KV cache" if extra else "")
        rows.append((name, str(tokens), f"{seconds:.2f}", f"{tokens / seconds:.1f}", f"{tokens / seconds / base:.2f}x",
                     f"{same}/{len(ids)}"))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.path.join(ROOT, "models", "smollm2-135m-instruct"))
    p.add_argument("--corpus", default=os.path.join(ROOT, "smollm2-out", "corpus.h5"))
    p.add_argument("--single-prompts", type=int, default=4)
    p.add_argument("--generate-prompts", type=int, default=16)
    p.add_argument("--gen-batch", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--eval-prompts", type=int, default=400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hf-worker", choices=["generate", "eval"])
    p.add_argument("--prompts")
    a = p.parse_args()
    if a.hf_worker:
        return hf_worker(a)
    with tempfile.TemporaryDirectory() as tmp:
        single, gen, eval_prompts = (os.path.join(tmp, f) for f in ("s.jsonl", "g.jsonl", "e.jsonl"))
        prompts_jsonl(a.corpus, a.single_prompts, single)
        prompts_jsonl(a.corpus, a.generate_prompts, gen)
        prompts_jsonl(a.corpus, a.eval_prompts, eval_prompts)
        header = ["tokens", "seconds", "tokens/s", "vs transformers", "ids identical to transformers'"]
        rows = generation_rows(a, tmp, single, 1, [(1, a.threads, []), (1, a.threads, ["--no-kv-cache"])])
        rows += generation_rows(a, tmp, gen, a.gen_batch, [(1, a.threads, []), (a.threads, 1, [])])
        print_table(f"Generation: greedy, {a.new_tokens} new tokens a prompt ({a.single_prompts} prompts at batch 1, "
                    f"{a.generate_prompts} at batch {a.gen_batch})", header, rows)
        ref = hf(a, "eval", eval_prompts, a.batch)
        base = ref["tokens"] / ref["seconds"]
        rows = [(f"transformers, {a.threads} threads", str(ref["tokens"]), f"{ref['seconds']:.2f}", f"{base:.0f}", "1.00x",
                 f"{ref['nll']:.6f}")]
        for ranks, threads in ((1, a.threads), (a.threads, 1)):
            tokens, seconds, nll = lmtopo_eval(a, eval_prompts, ranks, threads, os.path.join(tmp, f"e{ranks}.h5"))
            rows.append((f"lmtopo eval, {ranks} rank(s) x {threads} thread(s)", str(tokens), f"{seconds:.2f}",
                         f"{tokens / seconds:.0f}", f"{tokens / seconds / base:.2f}x", f"{nll:.6f}"))
        print_table(f"\nEvaluation: {a.eval_prompts} prompts, batch {a.batch}",
                    ["scored tokens", "seconds", "tokens/s", "vs transformers", "mean NLL (nats)"], rows)

if __name__ == "__main__":
    main()
