"""`lmtopo train`: a real model that learns (held-out loss falls), the same loss curve at 1 and 2
ranks, checkpoints that Hugging Face transformers loads with the same logits as lmtopo, and a
tokenizer.json that `tokenizers` reads."""
import json
import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import transformers
from tokenizers import Tokenizer

from test_tokenizer import TEXTS

LMTOPO = os.environ["LMTOPO"]
MPIRUN = os.environ.get("MPIRUN", "mpirun")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from mpi_launch import run as run_mpi  # noqa: E402  (tests/mpi_launch.py: Open MPI's lost-rank race)
MODEL_DUMP = os.environ.get("MODEL_DUMP", "model_dump")
ARGS = ["--steps", "40", "--batch", "8", "--seq-len", "32", "--vocab-size", "400", "--layers", "2", "--hidden", "64",
        "--heads", "4", "--intermediate", "128", "--lr", "3e-3", "--warmup", "5", "--seed", "3"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "texts.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in TEXTS if t.strip()) + "\n")
    return path


def train(corpus, out, ranks):
    cmd = [LMTOPO, "train", "--corpus", str(corpus), "-o", str(out)] + ARGS
    if ranks > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-n", str(ranks)] + cmd
    proc = run_mpi(cmd)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out / "train_log.h5", "r") as f:
        return f["train/loss"][:], f["heldout/step"][:], f["heldout/loss"][:]


def test_training_learns_and_is_rank_count_independent(tmp_path, corpus):
    loss1, steps, held1 = train(corpus, tmp_path / "r1", 1)
    loss2, _, held2 = train(corpus, tmp_path / "r2", 2)
    assert list(steps) == [0, 1, 2, 4, 8, 16, 32, 40]
    assert held1[-1] < 0.85 * held1[0], held1  # a real model: held-out loss falls substantially
    np.testing.assert_allclose(loss1, loss2, rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(held1, held2, rtol=2e-4, atol=2e-4)
    subprocess.run([LMTOPO, "validate", str(tmp_path / "r1" / "train_log.h5")], check=True, capture_output=True)


def test_checkpoints_load_in_transformers_with_the_same_logits(tmp_path, corpus):
    train(corpus, tmp_path / "m", 1)
    ckpt = tmp_path / "m" / "step40"
    model = transformers.GPTNeoXForCausalLM.from_pretrained(ckpt).eval()
    tok = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    ids = [tok.encode(t).ids[:20] for t in ("Datei nicht gefunden", "fichier introuvable ici")]
    T = max(map(len, ids))
    mask = [[1] * len(r) + [0] * (T - len(r)) for r in ids]
    ids = [r + [1] * (T - len(r)) for r in ids]
    with torch.no_grad():
        want = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    (tmp_path / "b.json").write_text(json.dumps({"ids": ids, "mask": mask}))
    subprocess.run([MODEL_DUMP, str(ckpt), str(tmp_path / "b.json"), str(tmp_path / "o")], check=True)
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    got = np.fromfile(tmp_path / "o" / meta["none.logits"]["file"], dtype=np.float32).reshape(meta["none.logits"]["shape"])
    m = np.array(mask, dtype=bool)
    np.testing.assert_allclose(got[m], want[m], rtol=1e-4, atol=1e-4)
    # the model is not random any more: the logits differ from step 0's
    step0 = transformers.GPTNeoXForCausalLM.from_pretrained(tmp_path / "m" / "step0").eval()
    with torch.no_grad():
        first = step0(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    assert np.abs(first[m] - want[m]).max() > 0.5


def test_bad_arguments(tmp_path, corpus):
    proc = subprocess.run([LMTOPO, "train", "--corpus", str(corpus), "-o", str(tmp_path / "x"), "--hidden", "50",
                           "--heads", "4"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--hidden" in proc.stderr
    proc = subprocess.run([MPIRUN, "--allow-run-as-root", "-n", "2", LMTOPO, "train", "--corpus", str(corpus), "-o",
                           str(tmp_path / "x"), "--batch", "3"], capture_output=True, text=True)
    assert proc.returncode != 0 and "--batch" in proc.stderr
