"""The study report `lmtopo report JOB.yaml` writes: a static HTML page with a PNG and an SVG of every
figure and the CSV of the numbers behind it, from the outputs of a study's stages (whichever exist):
aggregate (S̄ and Betti curves on relative depth, universality, phases), eval (perplexity per condition
and language: the pruning table), neurons (key-neuron layer profiles, the ablation matrix, repetition
rates, KL-vs-length curves) and prune (the pruning comparison) and sweep (CKA across checkpoints, SADS over training).

Every number printed in a table carries its source in a data-source attribute (`FILE.h5:/dataset[i,j]`
or `FILE.csv:ROW:COLUMN`, paths relative to the study's output folder), so a test can check the page
against the files. Colours are fixed per model across figures.

Usage (lmtopo report writes STUDY.json): python postprocess/report_html.py STUDY.json"""
import json
import pathlib
import sys

from report_page import Report
from report_studies import eval_section, neurons_section, prune_section, sweep_section
from report_topology import aggregate_section


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
