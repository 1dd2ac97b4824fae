"""The study report `lmtopo report JOB.yaml` writes: a static HTML page with a PNG and an SVG of every
figure and the CSV of the numbers behind it, from the outputs of a study's stages (whichever exist):
aggregate (S̄ and Betti curves on relative depth, universality, phases), eval (perplexity per condition
and language: the pruning table), neurons (key-neuron layer profiles, the ablation matrix, repetition
rates, KL-vs-length curves) and prune (the pruning comparison) and sweep (CKA across checkpoints, SADS over training).

Every number printed in a table carries its source in a data-source attribute (`FILE.h5:/dataset[i,j]`
or `FILE.csv:ROW:COLUMN`, paths relative to the study's output folder), so a test can check the page
against the files. Colours are fixed per model across figures.

Usage (lmtopo report writes STUDY.json): python postprocess/report_html.py STUDY.json"""
import csv
import html
import json
import pathlib
import sys

import h5py
import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


class Report:
    def __init__(self, study):
        self.study = study
        self.root = pathlib.Path(study["output"])
        self.out = pathlib.Path(study["report_dir"])
        (self.out / "figures").mkdir(parents=True, exist_ok=True)
        self.parts = []
        self.colours = {}
        self.palette = plt.get_cmap("tab10").colors

    def colour(self, model):
        if model not in self.colours:
            self.colours[model] = self.palette[len(self.colours) % len(self.palette)]
        return self.colours[model]

    def rel(self, path):
        return str(pathlib.Path(path).relative_to(self.root))

    def heading(self, text, level=2):
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text):
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def figure(self, name, caption, fig, header, rows):
        """Saves `fig` as PNG and SVG and `rows` as CSV under figures/, and links all three."""
        base = self.out / "figures" / name
        fig.tight_layout()
        fig.savefig(f"{base}.png", dpi=110)
        fig.savefig(f"{base}.svg")
        plt.close(fig)
        with open(f"{base}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        self.parts.append(
            f'<figure><img src="figures/{name}.png" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)} "
            f'[<a href="figures/{name}.svg">SVG</a>] [<a href="figures/{name}.csv">CSV</a>]</figcaption></figure>')

    def table(self, header, rows):
        """rows: lists of cells, each text or (value, source) for a number read from a file."""
        out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
        for row in rows:
            cells = []
            for c in row:
                if isinstance(c, tuple):
                    value, source = c
                    text = "NaN" if not np.isfinite(value) else f"{value:.6g}"
                    cells.append(f'<td class="num" data-source="{html.escape(source)}">{text}</td>')
                else:
                    cells.append(f"<td>{html.escape(str(c))}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append("".join(out) + "</table>")

    def write(self):
        s = self.study
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lmtopo report: {html.escape(s['study'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
figure{{margin:1.5em 0}}img{{max-width:100%;border:1px solid #ddd}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px}}td.num{{text-align:right;font-variant-numeric:tabular-nums}}</style>
<script>window.addEventListener("load",()=>{{const imgs=[...document.images];
document.body.dataset.images=imgs.length;document.body.dataset.broken=imgs.filter(i=>!i.complete||i.naturalWidth===0).length;}});</script>
</head><body>
<h1>lmtopo report: {html.escape(s['study'])}</h1>
<p>Study output: <code>{html.escape(s['output'])}</code>. lmtopo {html.escape(s['lmtopo_version'])}, git
{html.escape(s['git_sha'])}{' (dirty)' if s['git_dirty'] else ''}; written {html.escape(s['created_utc'])}.
Depth is relative: layer l of a model with L layers sits at l/(L−1).</p>
{''.join(self.parts)}
</body></html>
"""
        (self.out / "index.html").write_text(page)


def last_rows_by_model(models, steps):
    """Index of each model's last checkpoint (largest step; imported series have step -1)."""
    best = {}
    for i, (m, s) in enumerate(zip(models, steps)):
        if m not in best or s > steps[best[m]]:
            best[m] = i
    return best


def aggregate_section(r, hook):
    path = r.root / "aggregate" / f"{hook}.h5"
    if not path.exists():
        return
    src = r.rel(path)
    with h5py.File(path, "r") as f:
        depth = f["grid/depth"][:]
        models = [m.decode() for m in f["series/model"][:]]
        steps = f["series/step"][:]
        sbar, sd, betti = f["curves/avg_similarity"][:], f["curves/avg_similarity_sd"][:], f["curves/betti"][:]
        null_mean = f["curves/avg_similarity_null_mean"][:] if "curves/avg_similarity_null_mean" in f else np.full_like(sbar, np.nan)
        null_sd = f["curves/avg_similarity_null_sd"][:] if "curves/avg_similarity_null_sd" in f else np.full_like(sbar, np.nan)
        dim = int(f.attrs["dim"])
        r.heading(f"Topology across layers ({hook}, H{dim} zigzag)")
        last = last_rows_by_model(models, steps)
        fig, ax = plt.subplots(figsize=(8, 4.5))
        rows = []
        for m, i in last.items():
            ax.plot(depth, sbar[i], label=f"{m}" + (f" (step {steps[i]})" if steps[i] >= 0 else " (imported)"), color=r.colour(m))
            if np.isfinite(sd[i]).any():
                ax.fill_between(depth, sbar[i] - sd[i], sbar[i] + sd[i], color=r.colour(m), alpha=0.2, lw=0)
            rows += [[m, "last", int(steps[i]), d, v, e] for d, v, e in zip(depth, sbar[i], sd[i])]
        # The random-init null: each trained model's step-0 curve, dashed, its ± sd band hatched.
        for m in last:
            null = [i for i, (x, s) in enumerate(zip(models, steps)) if x == m and s == 0]
            if not null or null[0] == last[m]:
                continue
            i = null[0]
            ax.plot(depth, sbar[i], ls="--", lw=1, color=r.colour(m), label=f"{m} (step 0: random-init null)")
            if np.isfinite(sd[i]).any():
                ax.fill_between(depth, sbar[i] - sd[i], sbar[i] + sd[i], facecolor="none", edgecolor=r.colour(m), hatch="///", alpha=0.4, lw=0)
            rows += [[m, "step0_null", 0, d, v, e] for d, v, e in zip(depth, sbar[i], sd[i])]
        # The permuted-prompts null of each last checkpoint: the mean of its zigzag's null draws, dotted,
        # with their ± sd as a light band.
        for m, i in last.items():
            if not np.isfinite(null_mean[i]).any():
                continue
            ax.plot(depth, null_mean[i], ls=":", lw=1, color=r.colour(m), label=f"{m} (permuted-prompts null)")
            if np.isfinite(null_sd[i]).any():
                ax.fill_between(depth, null_mean[i] - null_sd[i], null_mean[i] + null_sd[i], color=r.colour(m), alpha=0.08, lw=0)
            rows += [[m, "permuted_null", int(steps[i]), d, v, e] for d, v, e in zip(depth, null_mean[i], null_sd[i])]
        ax.set_xlabel("relative depth (layer / (L − 1))")
        ax.set_ylabel("S̄ (average zigzag similarity)")
        ax.set_title(f"S̄ on relative depth, each model's last checkpoint against its random init")
        ax.legend(fontsize=8)
        r.figure(f"sbar_{hook}", f"S̄ against relative depth for every model ({hook}): solid, the last checkpoint with ± sd over "
                 "disjoint prompt subsets; dashed and hatched, the same model at step 0 (random initialisation), the null band; "
                 "dotted with a light band, the mean ± sd of the zigzag's permuted-prompts null draws (when it ran them).",
                 fig, ["model", "series", "step", "depth", "avg_similarity", "sd"], rows)
        for m in dict.fromkeys(models):
            idx = [i for i, x in enumerate(models) if x == m and steps[i] >= 0]
            if len(idx) < 2:
                continue
            idx.sort(key=lambda i: steps[i])
            fig, ax = plt.subplots(figsize=(8, 0.35 * len(idx) + 2))
            im = ax.imshow(betti[idx], aspect="auto", origin="lower", extent=(depth[0], depth[-1], -0.5, len(idx) - 0.5), cmap="magma")
            ax.set_yticks(range(len(idx)), [str(steps[i]) for i in idx])
            ax.set_xlabel("relative depth")
            ax.set_ylabel("training step")
            ax.set_title(f"{m}: Betti-{dim} curve per checkpoint")
            fig.colorbar(im, ax=ax, label=f"β{dim} (bars alive)")
            r.figure(f"betti_{hook}_{m}", f"{m}: Betti-{dim} across relative depth at every checkpoint ({hook}).", fig,
                     ["step", "depth", "betti"], [[int(steps[i]), d, v] for i in idx for d, v in zip(depth, betti[i])])
        if "cka_final/values" in f:
            cka_models = [m.decode() for m in f["cka_final/model"][:]]
            labels = [c.decode() for c in f["cka_final/checkpoint"][:]]
            values = f["cka_final/values"][:]
            for m in dict.fromkeys(cka_models):
                idx = [i for i, x in enumerate(cka_models) if x == m]
                fig, ax = plt.subplots(figsize=(8, 0.35 * len(idx) + 2))
                im = ax.imshow(values[idx], aspect="auto", origin="lower", extent=(depth[0], depth[-1], -0.5, len(idx) - 0.5),
                               cmap="viridis", vmin=0, vmax=1)
                ax.set_yticks(range(len(idx)), [labels[i] for i in idx])
                ax.set_xlabel("relative depth")
                ax.set_ylabel("checkpoint")
                ax.set_title(f"{m}: CKA of each checkpoint with the last one")
                fig.colorbar(im, ax=ax, label="unbiased linear CKA")
                r.figure(f"cka_final_{hook}_{m}", f"{m}: unbiased linear CKA of every checkpoint with the last, across relative depth ({hook}).",
                         fig, ["checkpoint", "depth", "cka_final"], [[labels[i], d, v] for i in idx for d, v in zip(depth, values[i])])
        names = ["model_a", "model_b", "pearson", "spearman", "null_prompts", "null_step0", "shared"]
        pairs = "universality/pearson" in f  # absent with one model
        u = {n: f[f"universality/{n}"][:] for n in names} if pairs else {}
        ci = f["universality/pearson_ci"][:] if pairs else None
        if pairs and len(u["pearson"]):
            r.heading("Universality: correlation of S̄ curves between models", 3)
            r.text("Shared: 1 where the curve correlation beats both nulls (permuted prompts, or a layer shuffle; and step 0), "
                   "0 where it does not, −1 where a null is unavailable (docs/aggregate.md).")
            r.table(["model A", "model B", "Pearson r", "95% CI low", "95% CI high", "Spearman ρ", "null (prompts)", "null (step 0)", "shared"],
                    [[u["model_a"][k].decode(), u["model_b"][k].decode(),
                      (u["pearson"][k], f"{src}:/universality/pearson[{k}]"),
                      (ci[k, 0], f"{src}:/universality/pearson_ci[{k},0]"), (ci[k, 1], f"{src}:/universality/pearson_ci[{k},1]"),
                      (u["spearman"][k], f"{src}:/universality/spearman[{k}]"),
                      (u["null_prompts"][k], f"{src}:/universality/null_prompts[{k}]"),
                      (u["null_step0"][k], f"{src}:/universality/null_step0[{k}]"),
                      (u["shared"][k], f"{src}:/universality/shared[{k}]")] for k in range(len(u["pearson"]))])
        thresholds = f["phases/thresholds"][:]
        r.heading("Phases: where S̄ peaks and where it crosses the pruning thresholds", 3)
        r.table(["model", "step", "argmax depth"] + [f"first depth ≥ {t:g}" for t in thresholds] + [f"last depth ≥ {t:g}" for t in thresholds],
                [[models[i], str(steps[i]), (f["phases/argmax_depth"][i], f"{src}:/phases/argmax_depth[{i}]")]
                 + [(f["phases/first_depth"][i, t], f"{src}:/phases/first_depth[{i},{t}]") for t in range(len(thresholds))]
                 + [(f["phases/last_depth"][i, t], f"{src}:/phases/last_depth[{i},{t}]") for t in range(len(thresholds))]
                 for i in range(len(models))])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def eval_section(r, model, ckpt):
    path = r.root / "eval" / model / f"{ckpt}.perplexity.csv"
    if not path.exists():
        return
    src = r.rel(path)
    rows = read_csv(path)
    r.heading(f"Evaluation under interventions: {model} at {ckpt}")
    r.text("Perplexity on the study's corpus per condition and language; Δ NLL is the mean NLL (nats) minus the first "
           "condition's. A pruning experiment's conditions skip blocks (eval.conditions in the job spec).")
    r.table(["condition", "language", "scored tokens", "mean NLL", "perplexity", "Δ NLL"],
            [[x["condition"], x["language"], x["scored_tokens"], (float(x["mean_nll"]), f"{src}:{k}:mean_nll"),
              (float(x["perplexity"]), f"{src}:{k}:perplexity"), (float(x["delta_nll"]), f"{src}:{k}:delta_nll")]
             for k, x in enumerate(rows)])
    conditions = list(dict.fromkeys(x["condition"] for x in rows))
    languages = list(dict.fromkeys(x["language"] for x in rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(conditions))
    for c_i, c in enumerate(conditions):
        vals = [next(float(x["delta_nll"]) for x in rows if x["condition"] == c and x["language"] == l) for l in languages]
        ax.bar(np.arange(len(languages)) + c_i * width, vals, width, label=c)
    ax.set_xticks(np.arange(len(languages)) + width * (len(conditions) - 1) / 2, languages)
    ax.set_ylabel("Δ mean NLL vs first condition (nats/token)")
    ax.set_xlabel("language")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    r.figure(f"eval_{model}_{ckpt}", f"{model} at {ckpt}: change in mean NLL per language under each condition.", fig,
             ["condition", "language", "delta_nll"], [[x["condition"], x["language"], x["delta_nll"]] for x in rows])


def prune_section(r, model):
    path = r.root / "prune" / f"{model}.csv"
    if not path.exists():
        return
    src = r.rel(path)
    rows = read_csv(path)
    overall = [(k, x) for k, x in enumerate(rows) if x["language"] == "all"]
    r.heading(f"Layer pruning: {model} at its last checkpoint")
    r.text("Blocks removed by S̄'s candidates (S̄ ≥ threshold × max) against the same number chosen by angular distance "
           "(Gromov et al.), by block influence (ShortGPT) and at random; perplexity over the whole corpus with them skipped, "
           "Δ NLL against the full model (docs/aggregate.md).")
    r.table(["method", "threshold", "blocks removed", "which", "perplexity", "Δ NLL"],
            [[x["method"], x["threshold"], x["n"], x["blocks"], (float(x["perplexity"]), f"{src}:{k}:perplexity"),
              (float(x["delta_nll"]), f"{src}:{k}:delta_nll")] for k, x in overall])
    fig, ax = plt.subplots(figsize=(8, 4))
    colours = {"none": "grey", "sbar": "tab:red", "angular_distance": "tab:blue", "block_influence": "tab:green", "random": "tab:olive"}
    names = [x["condition"] for _, x in overall]
    ax.bar(range(len(names)), [float(x["delta_nll"]) for _, x in overall], color=[colours[x["method"]] for _, x in overall])
    ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("Δ mean NLL vs full model (nats/token)")
    ax.set_title("Perplexity cost of each pruning choice")
    r.figure(f"prune_{model}", f"{model}: Δ NLL of each pruning choice (red: S̄, blue: angular distance, green: block influence, olive: random).",
             fig, ["condition", "method", "n", "blocks", "language", "perplexity", "delta_nll"],
             [[x["condition"], x["method"], x["n"], x["blocks"], x["language"], x["perplexity"], x["delta_nll"]] for x in rows])


def spatial_section(r, model, ckpt, path):
    """Per sheet: Moran's I of the t-map per block, and the t-map with the largest I drawn on its grid."""
    src = r.rel(path)
    with h5py.File(path, "r") as f:
        contrast = f.attrs["contrast"].decode() if isinstance(f.attrs["contrast"], bytes) else str(f.attrs["contrast"])
        for sheet in [x.decode() for x in f["spatial/sheets"][:]]:
            g = f["spatial"][sheet]
            moran, p_sim, t, cells = g["moran_i"][:], g["moran_p_sim"][:], g["t"][:], g["cell"][:]
            side = int(g["cell"].attrs["side"])
            placed = g["cell"].attrs.get("positions", b"seeded")
            placed = placed.decode() if isinstance(placed, bytes) else str(placed)
            how = "positions the model was trained with" if placed == "checkpoint" else "a seeded placement (not trained spatially)"
            r.table(["sheet", "block", "Moran's I", "permutation p", "significant units", "clusters"],
                    [[sheet, str(b), (moran[b], f"{src}:/spatial/{sheet}/moran_i[{b}]"), (p_sim[b], f"{src}:/spatial/{sheet}/moran_p_sim[{b}]"),
                      (g["significant"][b], f"{src}:/spatial/{sheet}/significant[{b}]"), (g["clusters"][b], f"{src}:/spatial/{sheet}/clusters[{b}]")]
                     for b in range(len(moran))])
            best = int(np.nanargmax(moran)) if np.isfinite(moran).any() else 0
            image = np.full(side * side, np.nan)
            image[cells[best]] = t[best]
            fig, ax = plt.subplots(figsize=(5.5, 4.5))
            lim = np.nanmax(np.abs(image)) or 1.0
            im = ax.imshow(image.reshape(side, side), cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"{sheet}, block {best}: t-map ({contrast}), Moran's I {moran[best]:.3f}")
            ax.set_xlabel("sheet column")
            ax.set_ylabel("sheet row")
            fig.colorbar(im, ax=ax, label="Welch t")
            r.figure(f"tmap_{model}_{ckpt}_{sheet}", f"{model} at {ckpt}: the {sheet} sheet's t-map of block {best} (largest Moran's I); units at {how}.", fig,
                     ["cell", "row", "column", "t"], [[int(c), int(c) // side, int(c) % side, v] for c, v in zip(cells[best], t[best])])


def neurons_section(r, model, ckpt):
    base = r.root / "neurons" / model / ckpt
    key = pathlib.Path(f"{base}.key_neurons.csv")
    if key.exists():
        rows = read_csv(key)
        r.heading(f"Neurons: {model} at {ckpt}")
        fig, ax = plt.subplots(figsize=(8, 4))
        for lang in dict.fromkeys(x["language"] for x in rows):
            pts = [(int(x["layer"]), int(x["key_units"])) for x in rows if x["language"] == lang]
            ax.plot(*zip(*pts), marker="o", label=lang)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("block")
        ax.set_ylabel("key linguistic neurons (z > threshold)")
        ax.set_title("Key-neuron layer profile")
        ax.legend(fontsize=8, ncol=2)
        r.figure(f"key_neurons_{model}_{ckpt}", f"{model} at {ckpt}: key linguistic neurons per block and language.", fig,
                 ["layer", "language", "key_units"], [[x["layer"], x["language"], x["key_units"]] for x in rows])
    ablation = pathlib.Path(f"{base}.ablation.csv")
    if ablation.exists():
        rows = read_csv(ablation)
        langs = list(dict.fromkeys(x["ablated"] for x in rows))
        m = np.array([[float(next(x["delta"] for x in rows if x["ablated"] == a and x["evaluated"] == e)) for e in langs] for a in langs])
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        lim = np.abs(m).max() or 1.0
        im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_yticks(range(len(langs)), langs)
        ax.set_xlabel("evaluated language")
        ax.set_ylabel("ablated language's key neurons")
        fig.colorbar(im, ax=ax, label="Δ perplexity")
        r.figure(f"ablation_{model}_{ckpt}", f"{model} at {ckpt}: Δ perplexity when a language's key neurons are ablated.", fig,
                 ["ablated", "evaluated", "delta", "control_delta_mean", "control_delta_sd"],
                 [[x["ablated"], x["evaluated"], x["delta"], x["control_delta_mean"], x["control_delta_sd"]] for x in rows])
    rate = pathlib.Path(f"{base}.repetition.repetition_rate.csv")
    if rate.exists():
        rows = read_csv(rate)
        conds = list(dict.fromkeys(x["condition"] for x in rows))
        means = [np.mean([float(x["rate"]) for x in rows if x["condition"] == c]) for c in conds]
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(conds, means, color="tab:purple")
        ax.set_ylabel("repetition rate (share of texts)")
        ax.set_ylim(0, 1.05)
        ax.tick_params(axis="x", labelrotation=20)
        r.figure(f"repetition_{model}_{ckpt}", f"{model} at {ckpt}: repetition rate under each intervention (random controls averaged over draws).",
                 fig, ["condition", "mean_rate"], [[c, v] for c, v in zip(conds, means)])
    spatial = pathlib.Path(f"{base}.spatial.h5")
    if spatial.exists():
        spatial_section(r, model, ckpt, spatial)
    sens = pathlib.Path(f"{base}.sensitive_directions.sensitivity.csv")
    if sens.exists():
        rows = read_csv(sens)
        fig, ax = plt.subplots(figsize=(7, 4))
        for block in dict.fromkeys(x["block"] for x in rows):
            for fam in dict.fromkeys(x["family"] for x in rows):
                pts = [(float(x["length"]), float(x["kl_mean"])) for x in rows if x["block"] == block and x["family"] == fam]
                ax.plot(*zip(*pts), marker="o", label=f"block {block}, {fam}")
        ax.set_xlabel("perturbation length L (residual-stream units)")
        ax.set_ylabel("mean KL(p_orig ‖ p_perturbed) (nats)")
        ax.set_yscale("symlog", linthresh=1e-4)
        ax.legend(fontsize=8)
        r.figure(f"sensitivity_{model}_{ckpt}", f"{model} at {ckpt}: KL against perturbation length per direction family.", fig,
                 ["block", "family", "length", "kl_mean"], [[x["block"], x["family"], x["length"], x["kl_mean"]] for x in rows])


def sweep_section(r, model, checkpoints, hook):
    path = r.root / "sweep" / model / "checkpoints" / f"{hook}.h5"
    if path.exists():
        with h5py.File(path, "r") as f:
            if "checkpoint_checkpoint/cka_linear_unbiased" in f:
                cka = f["checkpoint_checkpoint/cka_linear_unbiased"][-1]
                labels = [c["label"] for c in checkpoints][: cka.shape[0]]
                r.heading(f"Similarity sweeps: {model} ({hook})")
                fig, ax = plt.subplots(figsize=(5.5, 4.5))
                im = ax.imshow(cka, vmin=0, vmax=1, cmap="viridis")
                ax.set_xticks(range(len(labels)), labels, rotation=45)
                ax.set_yticks(range(len(labels)), labels)
                fig.colorbar(im, ax=ax, label="unbiased linear CKA")
                ax.set_title("last point, checkpoint × checkpoint")
                r.figure(f"cka_{model}_{hook}", f"{model}: linear CKA between checkpoints at the last hook point ({hook}).", fig,
                         ["checkpoint_a", "checkpoint_b", "cka"], [[a, b, cka[i, j]] for i, a in enumerate(labels) for j, b in enumerate(labels)])
    rows, curves = [], []
    for c in checkpoints:
        p = r.root / "sweep" / model / c["label"] / f"{hook}.h5"
        if not p.exists():
            continue
        with h5py.File(p, "r") as f:
            if "language_language/sads" not in f:
                continue
            s = f["language_language/sads"][:]
            # the sweep's bootstrap interval over parallel sentences, when it ran one
            ci = f["language_language/sads_ci"][:] if "language_language/sads_ci" in f else np.full((len(s), 2), np.nan)
        d = np.linspace(0, 1, len(s)) if len(s) > 1 else np.zeros(1)
        curves.append((c, d, s, ci))
        rows += [[c["label"], c["step"], dd, v, lo, hi] for dd, v, (lo, hi) in zip(d, s, ci)]
    if curves:
        fig, ax = plt.subplots(figsize=(8, 4))
        cmap = plt.get_cmap("viridis")
        for k, (c, d, s, ci) in enumerate(curves):
            colour = cmap(k / max(1, len(curves) - 1))
            ax.plot(d, s, color=colour, label=c["label"])
            if np.isfinite(ci).all():
                ax.fill_between(d, ci[:, 0], ci[:, 1], color=colour, alpha=0.15, linewidth=0)
        ax.set_xlabel("relative depth")
        ax.set_ylabel("SADS (translation − non-translation cosine)")
        ax.set_title("Cross-lingual alignment over training")
        ax.legend(fontsize=8, ncol=2)
        r.figure(f"sads_{model}_{hook}", f"{model}: SADS across depth at every checkpoint ({hook}); shaded where the sweep ran a "
                 "bootstrap: its interval over parallel sentences (sweep.bootstrap).", fig,
                 ["checkpoint", "step", "depth", "sads", "sads_ci_low", "sads_ci_high"], rows)


def main(study_path):
    study = json.loads(pathlib.Path(study_path).read_text())
    r = Report(study)
    for m in study["models"]:
        r.colour(m["name"])
    for hook in study["hooks"]:
        aggregate_section(r, hook)
    for m in study["models"]:
        if not m["checkpoints"]:
            continue
        last = m["checkpoints"][-1]["label"]
        eval_section(r, m["name"], last)
        prune_section(r, m["name"])
        neurons_section(r, m["name"], last)
        for hook in study["hooks"]:
            sweep_section(r, m["name"], m["checkpoints"], hook)
    if not r.parts:
        print(f"lmtopo: error: {study['output']}: no stage outputs to report (run the study first)", file=sys.stderr)
        sys.exit(2)
    r.write()
    print(f"report: {len(list((r.out / 'figures').glob('*.png')))} figures -> {r.out / 'index.html'}")


if __name__ == "__main__":
    main(sys.argv[1])
