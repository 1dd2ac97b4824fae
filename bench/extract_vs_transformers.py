"""Extraction throughput of `lmtopo extract` against transformers on a real model (SmolLM2-135M as
./scripts/smollm2.sh converts it) and the corpus of jobs/smollm2.yaml, in one run:
- lmtopo at 1 rank x T threads and at T ranks x 1 thread, batch B, file order, last-token
  post_attention_layernorm at every block (31 points); each run includes its start-up and model load;
- transformers (eager attention, torch.set_num_threads(T)) on the same prompts in the same batches
  (lmtopo's: windows of up to 4 batches sorted by length), right-padded, the same hooks pooled the same way
  and copied to the host;
- the achieved FLOP/s, 2 x non-embedding parameters x real (unpadded) tokens / seconds, as a share of
  the sgemm peak of the same cores measured here (torch.mm 2048^2 float32 at T threads, OpenBLAS).
Prints a table; each side's peak RSS is the largest process's (GNU time / getrusage).

Usage: .venv-torch/bin/python bench/extract_vs_transformers.py [--model models/smollm2-135m-instruct]
       [--corpus smollm2-out/corpus.h5] [--limit 1600] [--batch 16] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def prompts_jsonl(corpus, limit, path):
    import h5py
    with h5py.File(corpus, "r") as f:
        texts = [t.decode() for t in f["corpus/text"][:limit]]
        ids = [t.decode() for t in f["corpus/id"][:limit]]
    with open(path, "w") as out:
        for i, t in zip(ids, texts):
            out.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    return texts


def run_lmtopo(a, prompts, ranks, threads, out):
    # Each rank bound to as many cores as it runs threads (mpirun's default binds a rank to one core).
    cmd = ["/usr/bin/time", "-v", "mpirun", "--allow-run-as-root", "--oversubscribe", "--map-by", f"slot:PE={threads}", "-n", str(ranks),
           os.path.join(ROOT, "build", "lmtopo"), "extract", "--model", a.model, "--prompts", prompts,
           "--batch", str(a.batch), "--threads", str(threads), "--hook", "post_attention_layernorm", "-o", out]
    env = dict(os.environ, LMTOPO_PROGRESS_SECONDS="0", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) / 1024
    tokens = int(re.search(r"\((\d+) tokens\)", proc.stdout).group(1))
    return seconds, tokens, rss


def lmtopo_batches(ids, batch):
    """The batches lmtopo forms (stages/prompt_batches): windows of 4 batches (fewer while that would make
    fewer than 16 windows), stably sorted by length inside."""
    batches, window = [], batch * min(4, max(1, len(ids) // (batch * 16)))
    for w0 in range(0, len(ids), window):
        order = sorted(range(w0, min(len(ids), w0 + window)), key=lambda i: len(ids[i]))
        batches += [order[b:b + batch] for b in range(0, len(order), batch)]
    return batches


def hf_worker(a):
    import resource
    import torch
    import transformers
    from tokenizers import Tokenizer
    torch.set_num_threads(a.threads)
    texts = [json.loads(l)["text"] for l in open(a.prompts)]
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    ids = [tok.encode(t).ids for t in texts]
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, attn_implementation="eager").eval()
    base = model.model
    cap = []
    for layer in base.layers:
        layer.post_attention_layernorm.register_forward_hook(lambda m, i, o: cap.append(o))
    base.norm.register_forward_hook(lambda m, i, o: cap.append(o))
    t0 = time.perf_counter()
    kept = []
    batches = lmtopo_batches(ids, a.batch)
    with torch.no_grad():
        for members in batches:
            rows = [ids[i] for i in members]
            T = max(len(r) for r in rows)
            x = torch.tensor([r + [0] * (T - len(r)) for r in rows])
            m = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
            last = torch.tensor([len(r) - 1 for r in rows])
            cap.clear()
            base(input_ids=x, attention_mask=m, use_cache=False)
            kept.append(torch.stack([c[torch.arange(len(rows)), last] for c in cap]).numpy())
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "tokens": sum(len(r) for r in ids), "rss": rss}))


def sgemm_peak(threads):
    import torch
    torch.set_num_threads(threads)
    x = torch.randn(2048, 2048)
    torch.mm(x, x)
    t0, n = time.perf_counter(), 10
    for _ in range(n):
        torch.mm(x, x)
    return 2 * 2048 ** 3 * n / (time.perf_counter() - t0) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.path.join(ROOT, "models", "smollm2-135m-instruct"))
    p.add_argument("--corpus", default=os.path.join(ROOT, "smollm2-out", "corpus.h5"))
    p.add_argument("--limit", type=int, default=1600)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hf-worker", action="store_true")
    p.add_argument("--prompts")
    a = p.parse_args()
    if a.hf_worker:
        return hf_worker(a)
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    from safetensors import safe_open
    with safe_open(os.path.join(a.model, "model.safetensors"), "np") as f:
        params = sum(int(__import__("numpy").prod(f.get_slice(k).get_shape())) for k in f.keys())
    non_embedding = params - cfg["vocab_size"] * cfg["hidden_size"]
    with tempfile.TemporaryDirectory() as tmp:
        prompts = os.path.join(tmp, "prompts.jsonl")
        prompts_jsonl(a.corpus, a.limit, prompts)
        peak = sgemm_peak(a.threads)
        rows = []
        for ranks, threads in ((1, a.threads), (a.threads, 1)):
            s, tokens, rss = run_lmtopo(a, prompts, ranks, threads, os.path.join(tmp, f"a{ranks}.h5"))
            rows.append((f"lmtopo {ranks} rank(s) x {threads} thread(s)", s, tokens, rss))
        cmd = [sys.executable, __file__, "--hf-worker", "--model", a.model, "--prompts", prompts,
               "--batch", str(a.batch), "--threads", str(a.threads)]
        hf = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        rows.append((f"transformers 1 process x {a.threads} threads", hf["seconds"], hf["tokens"], hf["rss"]))
    base = rows[-1][1]
    print(f"{a.limit} prompts, batch {a.batch}, {rows[-1][2]} tokens; non-embedding parameters {non_embedding:,}; "
          f"sgemm peak at {a.threads} threads {peak:.1f} GFLOP/s")
    print("| run | seconds | tokens/s | vs transformers | GFLOP/s | share of sgemm peak | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, s, tokens, rss in rows:
        gflops = 2 * non_embedding * tokens / s / 1e9
        print(f"| {name} | {s:.1f} | {tokens / s:,.0f} | {base / s:.2f}x | {gflops:.1f} | {gflops / peak:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
