"""lmtopo's tokenizer.json reader against Hugging Face `tokenizers`: tokenizers trained here on the
machine's multilingual gettext catalogs — byte-level BPE (GPT-NeoX with NFC, GPT-2 with a prefix
space, Llama-3's split regex) and SentencePiece-style BPE with byte fallback (Llama 2's legacy
normalizers, Mistral's Metaspace, Metaspace with word splitting) — then every held-out text (over
10,000 in over 20 scripts, plus edge cases) must encode to the same ids and decode to the same text."""
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


def train(style, tmp_path, texts=None, vocab_size=1200):
    tok = Tokenizer(models.BPE(ignore_merges=(style == "llama3")))
    if style == "neox":
        tok.normalizer = normalizers.NFC()
    if style == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=(style == "gpt2_prefix"))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts or TEXTS, trainer=trainer)
    if tmp_path is None:
        return tok, None
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


# ---- Many scripts, SentencePiece-style BPE with byte fallback, decoding ------------------------------

# One gettext language per script (plus a few more), from the machine's own catalogs.
SCRIPT_LANGS = ["de", "fr", "pl", "vi", "tr", "ru", "uk", "el", "ar", "fa", "he", "hi", "mr", "bn", "ta", "te",
                "ml", "kn", "gu", "pa", "si", "th", "lo", "km", "my", "ka", "hy", "am", "ja", "zh_CN", "ko"]


def catalog_by_language(per_lang=700):
    out = {}
    for lang in SCRIPT_LANGS:
        seen, texts = set(), []
        for path in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
            try:
                with open(path, "rb") as f:
                    cat = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            for v in cat.values():
                if isinstance(v, str) and v and v not in seen:
                    seen.add(v)
                    texts.append(v)
            if len(texts) >= per_lang:
                break
        if texts:
            out[lang] = texts[:per_lang]
    return out


def scripts_of(texts):
    import unicodedata
    names = set()
    for t in texts:
        for ch in t:
            if ch.isalpha():
                try:
                    names.add(unicodedata.name(ch).split()[0])
                except ValueError:
                    pass
    return names


BY_LANG = catalog_by_language()
MULTI_TRAIN = [t for texts in BY_LANG.values() for t in texts[::3]]
MULTI_HELD = [t for texts in BY_LANG.values() for i, t in enumerate(texts) if i % 3] + [
    "", " ", "   ", "\t\t", "\n", "a  b   c    d", "  leading", "trailing  ", "emoji 😀👍🏽 👨‍👩‍👧 flags 🇩🇪",
    "combining e\u0301 a\u0308 \u0915\u094d\u0937", "ZWJ\u200dZWNJ\u200c", "<s>hello</s> <unk>", "x</s>", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈",
    "\u00a0nbsp\u2003em-space", "中文 and English mixed 123", "ﷺ ﷽", "‮RTL override", "a" * 300]
SP_STYLES = ["sp_legacy", "sp_metaspace", "sp_metaspace_split"]


def train_multilingual(style):
    from tokenizers import decoders
    special = ["<unk>", "<s>", "</s>"] if style.startswith("sp_") else ["<|endoftext|>", "<|padding|>"]
    if style.startswith("sp_"):
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        if style == "sp_legacy":  # Llama 2 as transformers' legacy converter writes it
            tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
            tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                             decoders.Strip(" ", 1, 0)])
        else:  # Mistral / non-legacy Llama: Metaspace pre-tokenizer
            split = style == "sp_metaspace_split"
            scheme = "always" if split else "first"
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=split)
            tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme, split=split)
        # A limited alphabet leaves rare characters to byte fallback.
        trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=special, limit_alphabet=400, show_progress=False)
        tok.train_from_iterator(MULTI_TRAIN, trainer=trainer)
        j = json.loads(tok.to_str())
        vocab = j["model"]["vocab"]
        base = max(vocab.values()) + 1
        for b in range(256):
            vocab[f"<0x{b:02X}>"] = base + b
        return Tokenizer.from_str(json.dumps(j))
    tok, _ = train(style, None, texts=MULTI_TRAIN, vocab_size=3000)
    tok.decoder = decoders.ByteLevel()
    return tok


def test_corpus_spans_20_scripts():
    assert len(BY_LANG) >= 25, sorted(BY_LANG)
    assert len(MULTI_HELD) >= 10000
    scripts = scripts_of(MULTI_HELD)
    assert len(scripts & {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "BENGALI", "TAMIL",
                          "TELUGU", "MALAYALAM", "KANNADA", "GUJARATI", "GURMUKHI", "SINHALA", "THAI", "LAO",
                          "KHMER", "MYANMAR", "GEORGIAN", "ARMENIAN", "ETHIOPIC", "HIRAGANA", "KATAKANA", "CJK",
                          "HANGUL"}) >= 20, sorted(scripts)


@pytest.mark.parametrize("style", ["neox", "llama3"] + SP_STYLES)
def test_encode_and_decode_match_tokenizers_on_10000_strings(tmp_path, style):
    tok = train_multilingual(style)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(MULTI_HELD, ensure_ascii=False))
    got = json.loads(subprocess.run([TOKENIZE_DUMP, str(path), str(texts_file)], capture_output=True, text=True,
                                    check=True).stdout)
    want = [e.ids for e in tok.encode_batch(MULTI_HELD, add_special_tokens=False)]
    bad = [(t, g, w) for t, g, w in zip(MULTI_HELD, got, want) if g != w]
    assert not bad, (len(bad), bad[:2])
    if style.startswith("sp_"):  # byte fallback was exercised
        assert any(tok.id_to_token(i).startswith("<0x") for ids in want for i in ids)

    # decoding: the encoded texts, and random id sequences (invalid UTF-8 byte runs included)
    import random
    rng = random.Random(7)
    vocab = tok.get_vocab_size()
    seqs = want[::5] + [[rng.randrange(vocab) for _ in range(rng.randrange(1, 12))] for _ in range(1000)]
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(seqs))
    for skip in (False, True):
        cmd = [TOKENIZE_DUMP, "--decode", str(path), str(ids_file)] + (["--skip-special"] if skip else [])
        dec = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        ref = tok.decode_batch(seqs, skip_special_tokens=skip)
        bad = [(s, d, r) for s, d, r in zip(seqs, dec, ref) if d != r]
        assert not bad, (skip, len(bad), bad[:2])


def test_invalid_utf8_is_a_clear_error(tmp_path):
    tok, path = train("neox", tmp_path)
    raw = tmp_path / "raw.txt"
    raw.write_bytes(b"fine text \xe2\x82 broken")
    proc = subprocess.run([TOKENIZE_DUMP, "--bytes", str(path), str(raw)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not valid UTF-8 (byte 10)" in proc.stderr, proc.stderr
    raw.write_bytes("fine ✓".encode())
    proc = subprocess.run([TOKENIZE_DUMP, "--bytes", str(path), str(raw)], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == tok.encode("fine ✓", add_special_tokens=False).ids


def test_byte_level_with_missing_symbols_and_byte_fallback(tmp_path):
    """A byte-level vocabulary without the symbols of some bytes (SmolLM2's lacks 21: 0x04, 0x06, 0xC0,
    0xC1, 0xF1-0xFF, ...) and with byte_fallback true, as transformers writes it from GGUF: lmtopo loads
    it like `tokenizers` and encodes like it; a missing symbol takes the byte tokens of its UTF-8 bytes
    (tokenizers' byte fallback looks up the symbol's bytes) or the unknown token. Without either,
    `tokenizers` drops the byte silently and lmtopo refuses, naming the byte."""
    tok, path = train("neox", tmp_path)
    spec = json.loads(path.read_text())
    symbol = {b: c for b, c in zip(range(256), ByteLevelTable())}
    missing = [0x04, 0x06, 0xC0, 0xC1] + list(range(0xF5, 0x100))
    vocab = spec["model"]["vocab"]
    for b in missing:
        del vocab[symbol[b]]
    assert not any(symbol[b] in m for m in spec["model"]["merges"] for b in missing)
    spec["model"]["byte_fallback"] = True
    texts = ["plain text", "ctrl\x04char", "two\x06\x04 and Grüße", "\x04", "x\x06y\x06z"]
    (tmp_path / "t.json").write_text(json.dumps(texts, ensure_ascii=False))

    def both(name, edit):
        s = json.loads(json.dumps(spec))
        edit(s)
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(s, ensure_ascii=False))
        ref = Tokenizer.from_file(str(p))
        proc = subprocess.run([TOKENIZE_DUMP, str(p), str(tmp_path / "t.json")], capture_output=True, text=True)
        return ref, proc

    next_id = max(vocab.values()) + 1

    def byte_tokens(s):  # the bytes of the symbols of 0x04 and 0x06 (U+0104, U+0106: C4 84, C4 86)
        for i, b in enumerate([0xC4, 0x84, 0x86]):
            s["model"]["vocab"][f"<0x{b:02X}>"] = next_id + i

    for name, edit in [("unk", lambda s: s["model"].update(unk_token="<|padding|>")), ("bytes", byte_tokens)]:
        ref, proc = both(name, edit)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [ref.encode(t, add_special_tokens=False).ids for t in texts], name
    ref, proc = both("neither", lambda s: None)
    assert proc.returncode == 2 and "byte 0x04 (byte-level symbol" in proc.stderr, proc.stderr
    assert len(ref.encode("\x04", add_special_tokens=False).ids) == 0  # what tokenizers does instead


def ByteLevelTable():
    """GPT-2's byte-to-symbol table, written out independently of lmtopo's."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]
