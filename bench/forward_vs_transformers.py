"""Forward throughput of lmtopo against Hugging Face transformers on the same random-init checkpoint
(Pythia-70M-shaped GPT-NeoX by default), same threads (both pinned to the same cores), batch and
sequence length; both take the last token of every hidden state back to the host, as `extract` does.
Each side runs in its own process (so peak memory is per process) and the two alternate `--rounds`
times; the ratio of medians is printed.

Usage: python bench/forward_vs_transformers.py --bench build/bench/bench_forward [--threads 2]
       [--batch 8] [--seq 128] [--iters 5] [--rounds 3] [--device cpu|cuda] [--dtype float32]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SHAPES = {
    "pythia-70m": dict(vocab_size=50304, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                       intermediate_size=2048, rotary_pct=0.25, max_position_embeddings=2048,
                       use_parallel_residual=True, tie_word_embeddings=False),
    "pythia-160m": dict(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048,
                        use_parallel_residual=True, tie_word_embeddings=False),
}


def make_checkpoint(shape, folder):
    import torch
    import transformers
    if not os.path.exists(os.path.join(folder, "config.json")):
        torch.manual_seed(0)
        model = transformers.GPTNeoXForCausalLM(transformers.GPTNeoXConfig(**SHAPES[shape]))
        model.save_pretrained(folder, safe_serialization=True)
    return folder


def hf_worker(a):
    import resource
    import torch
    import transformers
    torch.set_num_threads(a.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[a.dtype]
    model = transformers.GPTNeoXForCausalLM.from_pretrained(a.model, torch_dtype=dtype,
                                                            attn_implementation=a.attn).to(a.device).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (a.batch, a.seq), generator=g).to(a.device)
    mask = torch.ones_like(ids)

    def once():
        with torch.no_grad():
            hs = model.gpt_neox(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            return torch.stack([h[:, -1].float() for h in hs]).cpu()
    once()
    t0 = time.perf_counter()
    for _ in range(a.iters):
        once()
    s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tokens_per_s": a.batch * a.seq * a.iters / s, "seconds": s, "max_rss_mib": peak,
                      "transformers": transformers.__version__, "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=False, help="bench_forward binary")
    p.add_argument("--shape", default="pythia-70m", choices=sorted(SHAPES))
    p.add_argument("--model", help="checkpoint folder (made with --shape when absent)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--attn", default="eager", help="transformers attn_implementation (eager, sdpa)")
    p.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.hf_worker:
        return hf_worker(a)
    a.model = a.model or os.path.join(tempfile.gettempdir(), f"lmtopo-bench-{a.shape}")
    make_checkpoint(a.shape, a.model)
    cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:a.threads])
    common = ["--model", a.model, "--threads", str(a.threads), "--batch", str(a.batch), "--seq", str(a.seq),
              "--iters", str(a.iters), "--device", a.device, "--dtype", a.dtype, "--attn", a.attn]
    hf_cmd = ["taskset", "-c", cores, sys.executable, os.path.abspath(__file__), "--hf-worker"] + common
    lm_cmd = ["taskset", "-c", cores, a.bench, a.model, str(a.batch), str(a.seq), str(a.iters), a.device, a.dtype]
    runs = {"transformers": [], "lmtopo": []}
    for _ in range(a.rounds):
        for name, cmd in (("transformers", hf_cmd), ("lmtopo", lm_cmd)):
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            runs[name].append(json.loads(out))
    med = {k: statistics.median(r["tokens_per_s"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["max_rss_mib"] for r in v) for k, v in runs.items()}
    print(f"shape={a.shape} device={a.device} dtype={a.dtype} threads={a.threads} batch={a.batch} seq={a.seq} "
          f"iters={a.iters} rounds={a.rounds} attn={a.attn} transformers={runs['transformers'][0]['transformers']} "
          f"torch={runs['transformers'][0]['torch']}")
    for k in ("transformers", "lmtopo"):
        print(f"  {k:12s} tokens/s median {med[k]:10.1f}  (runs: "
              + ", ".join(f"{r['tokens_per_s']:.1f}" for r in runs[k]) + f")  peak RSS {rss[k]:.0f} MiB")
    print(f"  ratio lmtopo/transformers: throughput {med['lmtopo'] / med['transformers']:.2f}x, "
          f"peak RSS {rss['lmtopo'] / rss['transformers']:.2f}x")


if __name__ == "__main__":
    main()
