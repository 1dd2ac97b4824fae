"""lmtopo's tokenizer.json reader against Hugging Face `tokenizers`: byte-level BPE tokenizers trained
here on the machine's multilingual gettext catalogs in three styles (GPT-NeoX with NFC, GPT-2 with a
prefix space, Llama-3's split regex), then every held-out text must encode to the same ids."""
import gettext
import glob
import json
import os
import subprocess

import pytest
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

TOKENIZE_DUMP = os.environ.get("TOKENIZE_DUMP", "tokenize_dump")
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def catalog_texts(limit_per_lang=400):
    texts = []
    for lang in ["de", "fr", "ru", "ja", "es", "pt_BR", "it", "pl", "uk", "zh_CN", "ko", "el"]:
        for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo"))[:6]:
            try:
                with open(path, "rb") as f:
                    cat = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            for k, v in list(cat.items())[:limit_per_lang // 6]:
                if isinstance(k, str) and k:
                    texts += [k, v]
    return texts


TEXTS = catalog_texts()
HELD_OUT = TEXTS[1::97] + [
    "Hello world", " leading space", "trailing space ", "  two  spaces", "tab\tand\nnewline\n\n",
    "numbers 1234567 and 3.14159", "emoji 😀 and symbols ∑∫", "Café naïve (NFC: e\u0301)", "<|endoftext|>",
    "before<|endoftext|>after", "don't you'll I'm we've", "ЁЖИК ёжик", "日本語のテキスト", "", " ",
    "A" * 50, "x<|padding|>y<|endoftext|>",
]


def train(style, tmp_path):
    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    if style == "neox":
        tok.normalizer = normalizers.NFC()
    if style == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=(style == "gpt2_prefix"))
    trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TEXTS, trainer=trainer)
    path = tmp_path / f"{style}.json"
    tok.save(str(path))
    return tok, path


@pytest.mark.parametrize("style", ["neox", "gpt2_prefix", "llama3"])
def test_ids_match_tokenizers(tmp_path, style):
    tok, path = train(style, tmp_path)
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(HELD_OUT, ensure_ascii=False))
    out = subprocess.run([TOKENIZE_DUMP, str(path), str(texts_file)], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    want = [tok.encode(t, add_special_tokens=False).ids for t in HELD_OUT]
    bad = [(t, g, w) for t, g, w in zip(HELD_OUT, got, want) if g != w]
    assert not bad, bad[:3]
    assert len(HELD_OUT) > 100


def test_unsupported_tokenizer_is_a_clear_error(tmp_path):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(TEXTS[:200], trainer=trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]"]))
    path = tmp_path / "wp.json"
    tok.save(str(path))
    (tmp_path / "t.json").write_text('["x"]')
    proc = subprocess.run([TOKENIZE_DUMP, str(path), str(tmp_path / "t.json")], capture_output=True, text=True)
    assert proc.returncode == 2 and "model.type" in proc.stderr and "BPE" in proc.stderr


def test_trained_tokenizer_json_loads_in_tokenizers_and_encodes_identically(tmp_path):
    """lmtopo's BPE trainer writes a tokenizer.json that Hugging Face `tokenizers` reads; both encode
    held-out text to the same ids, and the merges compress (fewer tokens than bytes)."""
    texts_file = tmp_path / "train.json"
    texts_file.write_text(json.dumps(TEXTS[::2], ensure_ascii=False))
    out = tmp_path / "trained.json"
    subprocess.run([TOKENIZE_DUMP, "--train", "700", str(texts_file), str(out)], check=True)
    tok = Tokenizer.from_file(str(out))
    assert tok.get_vocab_size() == 700
    held = tmp_path / "held.json"
    held.write_text(json.dumps(HELD_OUT, ensure_ascii=False))
    got = json.loads(subprocess.run([TOKENIZE_DUMP, str(out), str(held)], capture_output=True, text=True,
                                    check=True).stdout)
    assert got == [tok.encode(t, add_special_tokens=False).ids for t in HELD_OUT]
    sample = " ".join(TEXTS[1::2][:200])
    assert len(tok.encode(sample).ids) < 0.75 * len(sample.encode())  # 444 merges over 12 languages
