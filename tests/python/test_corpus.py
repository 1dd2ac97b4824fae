"""The gettext corpus against an independent reading of the catalogs with polib, re-implementing
the documented cleaning, alignment and selection rules (docs/methods.md)."""
import hashlib
import pathlib

import h5py
import polib
import pytest

from conftest import run_lmtopo

LOCALE = pathlib.Path("/usr/share/locale")
DOMAINS = ["coreutils", "grep", "tar", "sed", "diffutils", "findutils"]
FORBIDDEN = set("%{}<>\\`")


def usable(text, lo, hi):
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in FORBIDDEN for c in text):
        return False
    return " " in text and lo <= len(text) <= hi


def polib_usable(lang, lo, hi):
    out = {}
    for domain in DOMAINS:
        path = LOCALE / lang / "LC_MESSAGES" / f"{domain}.mo"
        if not path.exists():
            continue
        mo = polib.mofile(str(path))
        ctype = mo.metadata.get("Content-Type", "")
        charset = ctype.lower().split("charset=")[1].split(";")[0].strip() if "charset=" in ctype.lower() else ""
        if charset != "utf-8":
            continue
        for e in mo:
            if e.msgctxt is not None or e.msgid_plural or not e.msgstr:
                continue
            if usable(e.msgid, lo, hi) and usable(e.msgstr, lo, hi):
                out[(domain, e.msgid)] = e.msgstr
    return out


def expected_corpus(languages, prompts, seed, lo, hi):
    per_lang = {l: polib_usable(l, lo, hi) for l in languages if l != "en"}
    common = set.intersection(*(set(m) for m in per_lang.values()))
    by_msgid = {}
    for domain, msgid in sorted(common):
        by_msgid.setdefault(msgid, (domain, msgid))
    ranked = sorted(by_msgid.values(), key=lambda k: hashlib.sha256(f"{seed}:{k[0]}:{k[1]}".encode()).hexdigest())
    chosen = ranked[:prompts]
    rows = []
    for lang in languages:
        for g, key in enumerate(chosen):
            text = key[1] if lang == "en" else per_lang[lang][key]
            rid = f"{key[0]}:{hashlib.sha256(key[1].encode()).hexdigest()[:12]}:{lang}"
            rows.append((rid, lang, text, key[0], g))
    return rows, len(ranked)


def write_spec(tmp_path, languages, prompts, seed=7, lo=16, hi=160):
    spec = tmp_path / "corpus.yaml"
    spec.write_text(
        f"study: corpus-test\noutput: out\n"
        f"data:\n  source: gettext\n  domains: {DOMAINS}\n  languages: {languages}\n"
        f"  prompts: {prompts}\n  seed: {seed}\n  min_chars: {lo}\n  max_chars: {hi}\n")
    return spec


def read_rows(path):
    with h5py.File(path, "r") as f:
        c = f["corpus"]
        cols = [c[n][:] for n in ("id", "lang", "text", "domain")]
        groups = c["group"][:]
        return [tuple(x.decode() for x in r) + (int(g),) for *r, g in zip(*cols, groups)]


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_gettext_corpus_matches_polib(tmp_path, ranks):
    languages = ["en", "de", "fr", "es", "ru"]
    spec = write_spec(tmp_path, languages, prompts=60)
    run_lmtopo("prepare", spec, ranks=ranks)
    rows = read_rows(tmp_path / "out" / "corpus.h5")
    expected, available = expected_corpus(languages, 60, 7, 16, 160)
    assert available >= 60
    assert rows == expected
    # alignment: every group has the same message in every language
    for g in range(60):
        ids = {r[0].rsplit(":", 1)[0] for r in rows if r[4] == g}
        assert len(ids) == 1
    run_lmtopo("validate", tmp_path / "out" / "corpus.h5")


def test_asking_for_more_than_available_names_data_prompts(tmp_path):
    languages = ["en", "de", "ja"]
    _, available = expected_corpus(languages, 1, 7, 16, 160)
    spec = write_spec(tmp_path, languages, prompts=available + 1)
    proc = run_lmtopo("prepare", spec, check=False)
    assert proc.returncode == 2
    assert f"data.prompts: expected at most {available}" in proc.stderr


def test_jsonl_corpus(tmp_path):
    corpus = tmp_path / "user.jsonl"
    lines = [f'{{"id": "s{i}-{l}", "lang": "{l}", "group": {i}, "text": "sentence {i} in {l}"}}'
             for i in range(10) for l in ("en", "fr")]
    corpus.write_text("\n".join(lines) + "\n")
    spec = tmp_path / "j.yaml"
    spec.write_text(f"study: j\noutput: out\ndata: {{source: jsonl, path: {corpus}, languages: [fr, en], prompts: 4, seed: 1}}\n")
    run_lmtopo("prepare", spec, ranks=2)
    rows = read_rows(tmp_path / "out" / "corpus.h5")
    assert [r[1] for r in rows] == ["fr"] * 4 + ["en"] * 4
    for lang in ("fr", "en"):
        want = sorted((f"s{i}-{lang}" for i in range(10)), key=lambda x: hashlib.sha256(f"1:{x}".encode()).hexdigest())[:4]
        assert [r[0] for r in rows if r[1] == lang] == want
    assert all(r[2] == f"sentence {r[4]} in {r[1]}" for r in rows)


def test_malformed_jsonl_names_the_line(tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"text": "ok", "lang": "en"}\n{"lang": "en"}\n')
    spec = tmp_path / "j.yaml"
    spec.write_text(f"study: j\noutput: out\ndata: {{source: jsonl, path: {corpus}, languages: [en], prompts: 1}}\n")
    proc = run_lmtopo("prepare", spec, check=False)
    assert proc.returncode == 2 and "bad.jsonl:2:" in proc.stderr


def test_language_without_prompts_is_named_and_nothing_is_written(tmp_path):
    corpus = tmp_path / "user.jsonl"
    corpus.write_text("".join(f'{{"id": "s{i}", "lang": "en", "text": "sentence {i}"}}\n' for i in range(5)))
    spec = tmp_path / "j.yaml"
    spec.write_text(f"study: j\noutput: out\ndata: {{source: jsonl, path: {corpus}, languages: [en, sw], prompts: 2}}\n")
    proc = run_lmtopo("prepare", spec, check=False, ranks=2)
    assert proc.returncode == 2 and "data.languages[1]: no records of language 'sw'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "corpus.h5").exists()
    spec.write_text("study: j\noutput: out\ndata: {source: gettext, languages: [en, xx_NOPE], prompts: 2}\n")
    proc = run_lmtopo("prepare", spec, check=False)
    assert proc.returncode == 2 and "data.languages[1]" in proc.stderr and "xx_NOPE" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "corpus.h5").exists()


@pytest.mark.parametrize("line,byte", [(b'{"text": "caf\xe9", "lang": "en"}', 13), (b'{"text": "ok\xed\xa0\x80", "lang": "en"}', 12),
                                       (b'{"text": "x", "lang": "en"}\xff', 27)])
def test_invalid_utf8_in_jsonl_is_named_with_its_byte(tmp_path, line, byte):
    """Latin-1, an encoded surrogate, a stray byte after the object: each named as invalid UTF-8 with the
    byte offset in the line (Python's strict decoder agrees where the first bad byte is)."""
    with pytest.raises(UnicodeDecodeError) as e:
        line.decode("utf-8")
    assert e.value.start == byte
    corpus = tmp_path / "bad.jsonl"
    corpus.write_bytes(b'{"text": "fine", "lang": "en"}\n' + line + b"\n")
    spec = tmp_path / "j.yaml"
    spec.write_text(f"study: j\noutput: out\ndata: {{source: jsonl, path: {corpus}, languages: [en], prompts: 1}}\n")
    proc = run_lmtopo("prepare", spec, check=False)
    assert proc.returncode == 2 and f"bad.jsonl:2: the line is not valid UTF-8 (byte {byte} of the line)" in proc.stderr, proc.stderr


@pytest.mark.parametrize("field,value", [("lang", 3), ("group", "g1"), ("id", [1])])
def test_jsonl_fields_of_the_wrong_type_are_named(tmp_path, field, value):
    import json
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text(json.dumps({"text": "hello", "lang": "en", field: value}) + "\n")
    spec = tmp_path / "j.yaml"
    spec.write_text(f"study: j\noutput: out\ndata: {{source: jsonl, path: {corpus}, languages: [en], prompts: 1}}\n")
    proc = run_lmtopo("prepare", spec, check=False)
    assert proc.returncode == 2 and f"bad.jsonl:1: {field}: expected" in proc.stderr, proc.stderr
