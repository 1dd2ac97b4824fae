"""The report's per-model sections at each model's last checkpoint: perplexity under interventions (eval),
the pruning comparison (prune), the neuron studies (key neurons, ablation, repetition, KL curves, the
spatial t-maps) and the similarity sweeps (CKA across checkpoints, translation retrieval between languages,
SADS over training with its bootstrap band)."""
import pathlib

import h5py
import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from report_page import read_csv


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


def retrieval_figure(r, model, checkpoint, hook):
    """Translation retrieval (top-1) between every pair of languages at the last checkpoint, at the point
    where the mean off-diagonal accuracy is largest."""
    path = r.root / "sweep" / model / checkpoint / f"{hook}.h5"
    if not path.exists():
        return
    with h5py.File(path, "r") as f:
        if "language_language/retrieval_top1" not in f:
            return
        top1 = f["language_language/retrieval_top1"][:]
        languages = [x.decode() for x in f["labels/languages"][:]]
        points = [x.decode() for x in f["labels/points"][:]]
    off = ~np.eye(len(languages), dtype=bool)
    best = int(np.argmax([m[off].mean() for m in top1]))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(top1[best], vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(languages)), languages, rotation=45)
    ax.set_yticks(range(len(languages)), languages)
    ax.set_xlabel("candidate language")
    ax.set_ylabel("query language")
    fig.colorbar(im, ax=ax, label="top-1 retrieval accuracy")
    ax.set_title(f"{checkpoint}, point {best} ({points[best]})")
    r.figure(f"retrieval_{model}_{hook}", f"{model} at {checkpoint}: translation retrieval top-1 between languages at point {best} "
             f"({points[best]}), the point of largest mean cross-language accuracy ({hook}).", fig,
             ["query", "candidate", "top1"], [[a, b, top1[best][i, j]] for i, a in enumerate(languages) for j, b in enumerate(languages)])


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
    retrieval_figure(r, model, checkpoints[-1]["label"], hook)
    alignment_over_training(r, model, checkpoints, hook, "sads", "SADS (translation − non-translation cosine)")
    alignment_over_training(r, model, checkpoints, hook, "lrds", "LRDS (same-language − cross-language cosine)")


# What each alignment figure's caption says the metric is.
ALIGNMENT_NAMES = {"sads": "SADS", "lrds": "LRDS"}


def alignment_over_training(r, model, checkpoints, hook, metric, ylabel):
    """A language × language alignment score (sads or lrds) across depth at every checkpoint, with the
    sweep's bootstrap interval over parallel sentences where it ran one."""
    rows, curves = [], []
    for c in checkpoints:
        p = r.root / "sweep" / model / c["label"] / f"{hook}.h5"
        if not p.exists():
            continue
        with h5py.File(p, "r") as f:
            if f"language_language/{metric}" not in f:
                continue
            s = f[f"language_language/{metric}"][:]
            ci = f[f"language_language/{metric}_ci"][:] if f"language_language/{metric}_ci" in f else np.full((len(s), 2), np.nan)
        d = np.linspace(0, 1, len(s)) if len(s) > 1 else np.zeros(1)
        curves.append((c, d, s, ci))
        rows += [[c["label"], c["step"], dd, v, lo, hi] for dd, v, (lo, hi) in zip(d, s, ci)]
    if not curves:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    cmap = plt.get_cmap("viridis")
    for k, (c, d, s, ci) in enumerate(curves):
        colour = cmap(k / max(1, len(curves) - 1))
        ax.plot(d, s, color=colour, label=c["label"])
        if np.isfinite(ci).all():
            ax.fill_between(d, ci[:, 0], ci[:, 1], color=colour, alpha=0.15, linewidth=0)
    ax.set_xlabel("relative depth")
    ax.set_ylabel(ylabel)
    ax.set_title(f"Cross-lingual alignment over training: {ALIGNMENT_NAMES[metric]}")
    ax.legend(fontsize=8, ncol=2)
    r.figure(f"{metric}_{model}_{hook}", f"{model}: {ALIGNMENT_NAMES[metric]} across depth at every checkpoint ({hook}); shaded "
             "where the sweep ran a bootstrap: its interval over parallel sentences (sweep.bootstrap).", fig,
             ["checkpoint", "step", "depth", metric, f"{metric}_ci_low", f"{metric}_ci_high"], rows)
