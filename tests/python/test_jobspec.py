"""Job specs: every example validates with an independent validator (Python jsonschema) and with
lmtopo; invalid specs fail in lmtopo with the field path, and jsonschema agrees on the structural
ones."""
import json
import re

import jsonschema
import pytest
import yaml

from conftest import SOURCE, run_lmtopo

SCHEMA = json.loads((SOURCE / "schemas" / "job.schema.json").read_text())
SPECS = SOURCE / "tests" / "data" / "specs"
EXAMPLES = sorted((SOURCE / "jobs").glob("*.yaml")) + sorted((SPECS / "valid").glob("*.yaml"))
INVALID = sorted((SPECS / "invalid").glob("*.yaml"))


def _header(path, key):
    m = re.search(rf"^# {key}: (.+)$", path.read_text(), flags=re.M)
    return m.group(1).strip() if m else None


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_for_both_validators(spec, tmp_path):
    doc = yaml.safe_load(spec.read_text())
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    if any(isinstance(m.get("checkpoints"), list) for m in doc.get("models", [])):
        # A spec over checkpoint folders made by a script (jobs/smollm2.yaml: scripts/smollm2.sh): the same
        # spec beside stand-in folders at the same relative paths, so that lmtopo checks everything else.
        copy = tmp_path / "jobs" / spec.name
        copy.parent.mkdir()
        copy.write_text(spec.read_text())
        for m in doc["models"]:
            for c in m.get("checkpoints", []) if isinstance(m.get("checkpoints"), list) else []:
                (copy.parent / c).mkdir(parents=True, exist_ok=True)
        files = [f for fs in doc.get("neurons", {}).get("sensitive_directions", {}).get("sae_decoders", {}).values() for f in fs]
        files += [b["path"] for b in doc.get("aggregate", {}).get("barcodes", [])]
        for f in files:  # stand-in decoder and barcode files (lmtopo validate checks that they exist)
            (copy.parent / f).parent.mkdir(parents=True, exist_ok=True)
            (copy.parent / f).touch()
        spec = copy
    proc = run_lmtopo("validate", spec)
    assert ": valid" in proc.stdout


def test_there_are_at_least_15_invalid_specs():
    assert len(INVALID) >= 15


@pytest.mark.parametrize("spec", INVALID, ids=lambda p: p.name)
def test_invalid_specs_fail_with_the_field_path(spec):
    expect, oracle = _header(spec, "expect"), _header(spec, "oracle")
    proc = run_lmtopo("validate", spec, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    if oracle == "yaml":
        line = expect.split()[-1]
        assert f"{spec.name}:{line}:" in lines[0] and "malformed YAML" in lines[0]
        with pytest.raises(yaml.YAMLError):
            yaml.safe_load(spec.read_text())
        return
    assert f": {expect}: " in lines[0], lines[0]
    hint = _header(spec, "did-you-mean")
    if hint:
        assert f"did you mean '{hint}'" in lines[0]
    doc = yaml.safe_load(spec.read_text())
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    if oracle == "schema":
        assert errors, "jsonschema accepts a spec lmtopo rejects on schema grounds"
    else:
        assert not errors, f"semantic case should pass the schema: {errors[0].message}"


def test_defaults_are_applied_and_recorded(tmp_path):
    spec = tmp_path / "s.yaml"
    ckpt = SPECS.parent / "ckpt" / "model-a" / "step0"
    spec.write_text(f"study: s\noutput: out\nmodels: [{{name: a, checkpoints: [{ckpt}]}}]\n"
                    "data: {source: gettext, languages: [en, de], prompts: 3}\nextract: {}\nzigzag: {}\n")
    out = run_lmtopo("plan", spec).stdout
    assert "k = 4" in out and "max simplex dim 2" in out


def test_a_spec_without_stages_needs_no_models(tmp_path):
    """prepare alone (corpus and manifest) is a study without models; the plan says so."""
    spec = tmp_path / "s.yaml"
    spec.write_text("study: s\noutput: out\ndata: {source: gettext, languages: [en, de], prompts: 3}\n")
    assert ": valid" in run_lmtopo("validate", spec).stdout


def test_plan_prints_the_sweep_memory_per_rank(tmp_path):
    """The plan's memory model (docs/methods.md): per pair type the largest item's bytes per rank and
    their terms. The centred Grams are 2 (null) x C x n x n/R doubles: halved by a second rank, and by
    checkpoint blocks bounded by 2B files instead of all C; the representations' rows are O(total / R). (Measured against real peak RSS in
    docs/benchmarks.md.)"""
    spec = tmp_path / "s.yaml"

    def plan(ranks, block=0):
        spec.write_text("study: s\noutput: out\nmodels: [{name: a, from_train: true}]\n"
                        "data: {source: gettext, languages: [en, de], prompts: 500}\n"
                        "train: {steps: 64, layers: 4, hidden: 256, heads: 4, intermediate: 512, vocab_size: 300}\n"
                        "extract: {hooks: [post_attention_layernorm]}\n"
                        f"sweep: {{pairs: [layer_layer, checkpoint_checkpoint], checkpoint_block: {block}, cka_method: gram}}\n")
        out = run_lmtopo("plan", spec, "--ranks", ranks).stdout
        lines = {m.group(1): m.group(2) for m in re.finditer(r"memory per rank, (\w+) \(largest item.*?\): about [\d.]+ \w+ = (.*)", out)}
        assert set(lines) == {"layer_layer", "checkpoint_checkpoint"}, out
        grams = re.search(r"([\d.]+) MiB centred Gram rows", lines["checkpoint_checkpoint"]).group(1)
        rows = re.search(r"([\d.]+) MiB representations' rows", lines["layer_layer"]).group(1)
        return float(grams), float(rows)

    n, checkpoints = 1000, 8  # 500 prompts x 2 languages; steps 0, 1, 2, 4, 8, 16, 32, 64
    mib = 2 * checkpoints * n * n * 8 / 2**20
    one, two = plan(1), plan(2)
    assert one[0] == pytest.approx(mib, abs=0.05) and two[0] == pytest.approx(mib / 2, abs=0.05)
    # each rank reads and holds only its rows: 5 points x 2 (null) x n x 256 doubles over the ranks
    assert one[1] == pytest.approx(5 * 2 * n * 256 * 8 / 2**20, abs=0.05) and two[1] == pytest.approx(one[1] / 2, abs=0.1)
    assert plan(1, block=2)[0] == pytest.approx(mib * 4 / checkpoints, abs=0.05)
    # CKA by feature cross-products: no Grams; the column-centred rows, 2 (null) x C x n/R x 256 doubles
    plan(2)
    spec.write_text(spec.read_text().replace("cka_method: gram", "cka_method: features"))
    out = run_lmtopo("plan", spec, "--ranks", 2).stdout
    line = re.search(r"memory per rank, checkpoint_checkpoint \(largest item.*?CKA by feature cross-products\): about .*", out)
    assert line and "centred Gram rows" not in line.group(0), out
    centred = float(re.search(r"([\d.]+) MiB column-centred rows", line.group(0)).group(1))
    assert centred == pytest.approx(2 * checkpoints * n / 2 * 256 * 8 / 2**20, abs=0.05)
