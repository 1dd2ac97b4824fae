"""The report's topology section, from the aggregate (aggregate/1) of each hook: S̄ on relative depth with its
null bands, Betti, persistence-similarity (PHSim) and CKA-with-the-final-checkpoint heatmaps per checkpoint,
Betti curves of every homology dimension, the universality and phase tables."""
import matplotlib
import numpy as np

matplotlib.use("Agg")
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from report_page import last_rows_by_model


def sbar_figure(r, hook, depth, models, steps, sbar, sd, null_mean, null_sd, dim):
    """S̄ of each model's last checkpoint with its ± sd band, its step-0 (random-init) null and its
    permuted-prompts null band."""
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
    ax.set_title("S̄ on relative depth, each model's last checkpoint against its random init")
    ax.legend(fontsize=8)
    r.figure(f"sbar_{hook}", f"S̄ against relative depth for every model ({hook}): solid, the last checkpoint with ± sd over "
             "disjoint prompt subsets; dashed and hatched, the same model at step 0 (random initialisation), the null band; "
             "dotted with a light band, the mean ± sd of the zigzag's permuted-prompts null draws (when it ran them).",
             fig, ["model", "series", "step", "depth", "avg_similarity", "sd"], rows)


def betti_heatmaps(r, hook, depth, models, steps, betti, dim):
    """The Betti curve of every checkpoint of each model with two or more."""
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


def betti_by_dimension(r, hook, f, depth, models, steps):
    """Betti curves of every homology dimension the aggregate has (/curves/by_dim), one panel per
    dimension, each model's last checkpoint."""
    if "curves/by_dim/betti" not in f:
        return
    dims = f["grid/curve_dims"][:].tolist()
    betti = f["curves/by_dim/betti"][:]
    last = last_rows_by_model(models, steps)
    fig, axes = plt.subplots(1, len(dims), figsize=(3.6 * len(dims) + 1, 3.6), squeeze=False)
    rows = []
    for k, (ax, d) in enumerate(zip(axes[0], dims)):
        for m, i in last.items():
            ax.plot(depth, betti[k, i], color=r.colour(m), label=m)
            rows += [[m, int(steps[i]), d, x, v] for x, v in zip(depth, betti[k, i])]
        ax.set_xlabel("relative depth")
        ax.set_ylabel(f"β{d} (bars alive)")
        ax.set_title(f"H{d}")
    axes[0][0].legend(fontsize=8)
    r.figure(f"betti_dims_{hook}", f"Betti curves of homology dimensions {', '.join(map(str, dims))} on relative depth, "
             f"each model's last checkpoint ({hook}).", fig, ["model", "step", "dim", "depth", "betti"], rows)


def similarity_heatmaps(r, hook, f, depth, models, steps, dim, most=10, stride=2):
    """The persistence similarity S(l1, l2) = PHSim(l1, l2) / β(l1) on relative depth, one panel per checkpoint
    of each of the study's models (at most `most`, evenly spaced, the first and last kept; imported barcodes
    are not checkpoints), every `stride`-th grid depth."""
    if "curves/similarity" not in f:
        return
    sim = f["curves/similarity"]
    keep = np.arange(0, len(depth), stride)
    d = depth[keep]
    for m in dict.fromkeys(models):
        idx = sorted((i for i, x in enumerate(models) if x == m and steps[i] >= 0), key=lambda i: steps[i])
        if not idx:  # an imported barcode: not a checkpoint of the study
            continue
        if len(idx) > most:
            idx = [idx[k] for k in np.unique(np.linspace(0, len(idx) - 1, most).round().astype(int))]
        cols = min(5, len(idx))
        rows_n = (len(idx) + cols - 1) // cols
        # A narrow last column holds the colour bar (tight_layout keeps it off the panels).
        fig, grid = plt.subplots(rows_n, cols + 1, figsize=(2.4 * cols + 1, 2.4 * rows_n + 0.6), squeeze=False,
                                 gridspec_kw={"width_ratios": [1] * cols + [0.08]})
        for ax in grid[1:, -1]:
            ax.axis("off")
        rows, im = [], None
        for k, ax in enumerate(grid[:, :-1].flat):
            if k >= len(idx):
                ax.axis("off")
                continue
            i = idx[k]
            values = sim[i][np.ix_(keep, keep)]
            im = ax.imshow(values, origin="lower", extent=(d[0], d[-1], d[0], d[-1]), vmin=0, vmax=1, cmap="viridis")
            ax.set_title(f"step {steps[i]}" if steps[i] >= 0 else "imported", fontsize=9)
            ax.set_xlabel("depth l2", fontsize=8)
            ax.set_ylabel("depth l1", fontsize=8)
            rows += [[int(steps[i]), a, b, values[ia, ib]] for ia, a in enumerate(d) for ib, b in enumerate(d)]
        fig.suptitle(f"{m}: H{dim} persistence similarity PHSim(l1, l2) / β(l1)")
        fig.colorbar(im, cax=grid[0, -1], label="share of l1's bars alive to l2")
        r.figure(f"phsim_{hook}_{m}", f"{m}: persistence similarity S(l1, l2) = PHSim(l1, l2) / β(l1) on relative depth at each "
                 f"checkpoint ({hook}; bilinear between layer pairs; one grid depth in {stride}).", fig,
                 ["step", "depth_l1", "depth_l2", "similarity"], rows)


def cka_final_heatmaps(r, hook, f, depth):
    """Each checkpoint's CKA with its model's last one, per model (a checkpoint x checkpoint sweep)."""
    if "cka_final/values" not in f:
        return
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


def universality_table(r, f, src):
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


def phases_table(r, f, src, models, steps):
    thresholds = f["phases/thresholds"][:]
    r.heading("Phases: where S̄ peaks and where it crosses the pruning thresholds", 3)
    r.table(["model", "step", "argmax depth"] + [f"first depth ≥ {t:g}" for t in thresholds] + [f"last depth ≥ {t:g}" for t in thresholds],
            [[models[i], str(steps[i]), (f["phases/argmax_depth"][i], f"{src}:/phases/argmax_depth[{i}]")]
             + [(f["phases/first_depth"][i, t], f"{src}:/phases/first_depth[{i},{t}]") for t in range(len(thresholds))]
             + [(f["phases/last_depth"][i, t], f"{src}:/phases/last_depth[{i},{t}]") for t in range(len(thresholds))]
             for i in range(len(models))])


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
        sbar_figure(r, hook, depth, models, steps, sbar, sd, null_mean, null_sd, dim)
        betti_heatmaps(r, hook, depth, models, steps, betti, dim)
        betti_by_dimension(r, hook, f, depth, models, steps)
        similarity_heatmaps(r, hook, f, depth, models, steps, dim)
        cka_final_heatmaps(r, hook, f, depth)
        universality_table(r, f, src)
        phases_table(r, f, src, models, steps)
