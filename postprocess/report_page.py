"""The report page: figures (PNG, SVG and the CSV behind each), tables whose numbers carry their source
(`FILE.h5:/dataset[i,j]` or `FILE.csv:ROW:COLUMN`), fixed colours per model, and the HTML it writes.
Shared by the report's sections (report_topology.py, report_studies.py)."""
import csv
import html
import pathlib

import matplotlib
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


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
