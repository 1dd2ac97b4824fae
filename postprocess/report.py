"""Demo report: reads the outputs of the demo study (training log, activations, zigzag summaries per
checkpoint) and writes OUTPUT/report.md with the tables a researcher looks at first.

Cross-lingual alignment (science.md §4, on the extracted last-token states): with C the cosine
similarity of all prompt vectors of a layer, SADS = mean similarity of translations (same group,
different language) minus mean similarity of different groups in different languages.
Usage: python postprocess/report.py OUTPUT_DIR"""
import pathlib
import sys

import h5py
import numpy as np


def sads(x, lang, group):
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    c = x @ x.T
    diff_lang = lang[:, None] != lang[None, :]
    same_group = group[:, None] == group[None, :]
    return float(c[diff_lang & same_group].mean() - c[diff_lang & ~same_group].mean())


def sweep_section(out, model, steps, hook="post_attention_layernorm"):
    """Tables from `lmtopo sweep` (C++; the SADS column re-derives the Python table above)."""
    lines = []
    per = []
    for step in steps:
        f = out / "sweep" / model / f"step{step}" / f"{hook}.h5"
        if not f.exists():
            return lines
        with h5py.File(f, "r") as h:
            g = h["language_language"]
            top1 = g["retrieval_top1"][-1] if "retrieval_top1" in g else None
            off = ~np.eye(top1.shape[0], dtype=bool) if top1 is not None else None
            per.append((step, float(top1[off].mean()) if top1 is not None else float("nan"),
                        float(g["retrieval_top1_null"][-1][off].mean()) if top1 is not None else float("nan"),
                        float(g["sads"][-1]) if "sads" in g else float("nan"),
                        float(h["layer_layer"]["twonn"][-1]) if "twonn" in h["layer_layer"] else float("nan")))
    lines += ["", "## Similarity sweeps (`lmtopo sweep`, final-norm point, last token)", "",
              "Retrieval: share of sentences whose translation is the most cosine-similar sentence of the other "
              "language, averaged over language pairs (null: prompts permuted). TwoNN: intrinsic dimension.", "",
              "| checkpoint | retrieval top-1 | null | SADS | TwoNN |", "|---|---|---|---|---|"]
    lines += [f"| step{s} | {r:.3f} | {n:.3f} | {a:.3f} | {t:.1f} |" for s, r, n, a, t in per]
    ck = out / "sweep" / model / "checkpoints" / f"{hook}.h5"
    if ck.exists():
        with h5py.File(ck, "r") as h:
            cka = h["checkpoint_checkpoint/cka_linear_unbiased"][-1]
            labels = list(h["labels/checkpoints"].asstr()[()])
        lines += ["", "Representation drift: unbiased linear CKA of each checkpoint with the last one (final-norm point).", "",
                  "| checkpoint | CKA with " + labels[-1] + " |", "|---|---|"]
        lines += [f"| {l} | {v:.3f} |" for l, v in zip(labels, cka[:, -1])]
    return lines


def main(out):
    out = pathlib.Path(out)
    lines = ["# lmtopo demo report", ""]
    model = next((p.name for p in sorted((out / "checkpoints").glob("*")) if p.is_dir()), "tiny-neox")
    log = out / "checkpoints" / model / "train_log.h5"
    if log.exists():
        with h5py.File(log, "r") as f:
            steps, held = f["heldout/step"][:], f["heldout/loss"][:]
            loss = f["train/loss"][:]
        lines += [f"## Training ({model}, GPT-NeoX layout, on the gettext corpus)", "",
                  f"Training loss {loss[0]:.3f} → {loss[-1]:.3f} over {len(loss)} steps.", "",
                  "| checkpoint | held-out loss |", "|---|---|"]
        lines += [f"| step{s} | {h:.3f} |" for s, h in zip(steps, held)]
        lines.append("")
    rows = []
    for act in sorted(out.glob(f"activations/{model}/step*.h5"), key=lambda p: int(p.stem[4:])):
        step = int(act.stem[4:])
        with h5py.File(act, "r") as f:
            x = f["activations/post_attention_layernorm"][:]
            lang = np.array([v.decode() for v in f["prompts/lang"][:]])
            group = f["prompts/group"][:]
        zz = out / "zigzag" / model / f"step{step}" / "post_attention_layernorm.h5"
        with h5py.File(zz, "r") as f:
            bars = f["bars/position"][:]
            betti1 = f["summaries/h1/betti"][:].tolist()
            sbar = f["summaries/h1/avg_similarity"][:]
        rows.append((step, [sads(x[l], lang, group) for l in range(x.shape[0])], int((bars[:, 0] == 1).sum()),
                     betti1, int(np.argmax(sbar))))
    if rows:
        L = len(rows[0][1])
        lines += ["## Cross-lingual alignment over training (SADS per layer point)", "",
                  "Points 0..L-1: each block's post_attention_layernorm, last: the final norm (last token).", "",
                  "| checkpoint | " + " | ".join(f"p{l}" for l in range(L)) + " |", "|---" * (L + 1) + "|"]
        lines += [f"| step{s} | " + " | ".join(f"{v:.3f}" for v in a) + " |" for s, a, *_ in rows]
        lines += ["", "## Zigzag persistence across layers (k-NN flag complexes, k = 4)", "",
                  "| checkpoint | H1 bars | Betti-1 per layer | argmax S̄ (H1) |", "|---|---|---|---|"]
        lines += [f"| step{s} | {n} | {b} | {m} |" for s, _, n, b, m in rows]
    lines += sweep_section(out, model, [r[0] for r in rows])
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print(out / "report.md")


if __name__ == "__main__":
    main(sys.argv[1])
