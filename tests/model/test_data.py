"""Corpus loading, tokenizer training and caching, batches, prompts and unigram entropy."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bitnet_model.data.corpus import CORPUS_NAME, DataError, default_corpus
from bitnet_model.data.dataset import forget_loaded, load_data
from bitnet_model.train.config import DataConfig
from bitnet_tui.instrument.diagnostics import unigram_stats

VOCAB = 300
CONTEXT = 16
_WORDS = [
    "the", "a", "river", "model", "learns", "slowly", "and", "then", "quickly", "while", "its", "weights",
    "settle", "into", "three", "values", "every", "step", "of", "training", "moves", "loss", "down",
    "until", "decoding", "repeats", "one", "word", "over",
]


def _prose(seed: int, sentences: int) -> str:
    """Deterministic English-looking sentences, a few per paragraph."""
    rng = random.Random(seed)
    out = []
    for i in range(sentences):
        words = rng.choices(_WORDS, k=rng.randint(6, 14))
        out.append(" ".join(words).capitalize() + ".")
        out.append("\n\n" if i % 4 == 3 else " ")
    return "".join(out)


def _cfg(tmp_path: Path, **kw) -> DataConfig:
    return DataConfig(cache_dir=str(tmp_path / "cache"), **kw)


@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_data(DataConfig(cache_dir=str(cache)), VOCAB, CONTEXT, seed=0)


@pytest.fixture
def txt_file(tmp_path) -> Path:
    p = tmp_path / "story.txt"
    p.write_text(_prose(0, 400), encoding="utf-8")
    return p


def test_default_corpus_is_deterministic_english_prose():
    a, b = default_corpus(), default_corpus()
    assert a.info == b.info
    assert a.info["name"] == CORPUS_NAME
    assert a.info["python"] == sys.version.split()[0]
    assert len(a.info["sha256"]) == 64
    assert a.info["chars"] > 200_000
    text = "".join(p for d in a.docs for p in d)
    assert len(text) == a.info["chars"]
    assert " the " in text and " and " in text and " of " in text
    assert ">>>" not in text and "::=" not in text


def test_default_data_shapes_and_identity(default_data):
    d = default_data
    assert d.vocab_size == VOCAB == d.tokenizer_info["vocab_size"]
    assert d.tokenizer_info["kind"] == "trained"
    assert d.train.dtype == torch.int64 and d.val.dtype == torch.int64
    assert d.train.dim() == 1 and d.train.numel() > 10 * d.val.numel() > 0
    assert int(d.train.max()) < d.vocab_size and int(d.val.max()) < d.vocab_size
    assert 0 < unigram_stats(d.unigram_counts(VOCAB))[0] < d.ln_vocab == pytest.approx(math.log(VOCAB))
    assert d.corpus_info["name"] == CORPUS_NAME


def test_round_trip_and_token_text(default_data):
    d = default_data
    s = "The assignment statement binds a name to an object, and the value is returned."
    assert d.decode(d.encode(s)) == s
    assert d.decode(torch.tensor(d.encode(s))) == s
    the = d.tokenizer.token_to_id("Ġthe")
    assert the is not None and d.token_text(the) == " the"
    assert d.token_text(d.eot_id) == "<|endoftext|>"


def test_tokenizer_trained_once_then_loaded_from_cache(tmp_path, txt_file):
    cfg = _cfg(tmp_path, data=str(txt_file))
    first = load_data(cfg, VOCAB, CONTEXT)
    path = Path(first.tokenizer_info["path"])
    assert first.tokenizer_info["cached"] is False and path.is_file()
    assert path.parent.parent == tmp_path / "cache"
    mtime = path.stat().st_mtime_ns
    forget_loaded()  # this test is about the disk cache, not the in-process memo
    second = load_data(cfg, VOCAB, CONTEXT)
    assert second.tokenizer_info["cached"] is True
    assert second.tokenizer_info["path"] == str(path) and path.stat().st_mtime_ns == mtime
    assert second.tokenizer_info["sha256"] == first.tokenizer_info["sha256"]
    assert torch.equal(first.train, second.train) and torch.equal(first.val, second.val)
    assert not list(path.parent.glob("*.tmp"))
    # another vocab size is another cache entry
    assert load_data(cfg, VOCAB, CONTEXT).train is second.train  # in-process memo: tokenised once
    third = load_data(cfg, VOCAB + 20, CONTEXT)
    assert third.tokenizer_info["path"] != str(path) and third.tokenizer_info["cached"] is False


def test_damaged_cache_entry_is_retrained(tmp_path, txt_file):
    cfg = _cfg(tmp_path, data=str(txt_file))
    path = Path(load_data(cfg, VOCAB, CONTEXT).tokenizer_info["path"])
    path.write_text("{not json", encoding="utf-8")
    forget_loaded()
    again = load_data(cfg, VOCAB, CONTEXT)
    assert again.tokenizer_info["cached"] is False
    assert json.loads(path.read_text(encoding="utf-8"))["model"]["type"] == "BPE"


def test_cache_dir_from_environment(tmp_path, txt_file, monkeypatch):
    monkeypatch.setenv("BITNET_TUI_CACHE", str(tmp_path / "envcache"))
    d = load_data(DataConfig(data=str(txt_file)), VOCAB, CONTEXT)
    assert Path(d.tokenizer_info["path"]).is_relative_to(tmp_path / "envcache")


def test_user_txt_folder_and_jsonl(tmp_path, txt_file):
    d = load_data(_cfg(tmp_path, data=str(txt_file)), VOCAB, CONTEXT)
    assert d.corpus_info["kind"] == "txt" and d.corpus_info["documents"] == 1
    assert "river" in d.decode(d.train[:200])

    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    (folder / "a.txt").write_text(_prose(1, 200), encoding="utf-8")
    (folder / "b" / "c.txt").write_text(_prose(2, 200), encoding="utf-8")
    (folder / "ignored.md").write_text("not read", encoding="utf-8")
    d = load_data(_cfg(tmp_path, data=str(folder)), VOCAB, CONTEXT)
    assert d.corpus_info["kind"] == "folder" and d.corpus_info["documents"] == 2
    assert d.train.tolist().count(d.eot_id) + d.val.tolist().count(d.eot_id) == 2

    jl = tmp_path / "data.jsonl"
    lines = [json.dumps({"text": _prose(i, 40)}) for i in range(8)]
    lines += ["[1, 2]", "not json", json.dumps({"text": 3}), json.dumps({"body": "x"}), ""]
    jl.write_text("\n".join(lines), encoding="utf-8")
    d = load_data(_cfg(tmp_path, data=str(jl)), VOCAB, CONTEXT)
    assert d.corpus_info["kind"] == "jsonl" and d.corpus_info["documents"] == 8
    assert d.corpus_info["skipped_lines"] == 4


def test_user_tokenizer_file(tmp_path, txt_file, default_data):
    tj = tmp_path / "tokenizer.json"
    default_data.tokenizer.save(str(tj))
    d = load_data(_cfg(tmp_path, data=str(txt_file), tokenizer=str(tj)), 4096, CONTEXT)
    assert d.tokenizer_info["kind"] == "file" and d.tokenizer_info["path"] == str(tj.resolve())
    assert d.vocab_size == VOCAB
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "nope.txt", "does not exist"),
        (lambda p: _write(p / "empty.txt", b"  \n\n "), "is empty"),
        (lambda p: _write(p / "nul.txt", b"hello\x00world" * 50), "binary"),
        (lambda p: _write(p / "latin1.txt", "caf\u00e9 ".encode("latin-1") * 50), "not valid UTF-8"),
        (lambda p: _mkdir(p / "nothing"), "contains no .txt files"),
        (lambda p: _write(_mkdir(p / "blank") / "a.txt", b"\n\n").parent, "contain no text"),
        (lambda p: _write(p / "bad.jsonl", b'[1]\n"x"\n{"text": 5}\n'), "no usable lines: 3 of 3"),
        (lambda p: _write(p / "empty.jsonl", b"\n"), "is empty"),
        (lambda p: _write(p / "short.txt", b"Only a few words here.\n"), "too few for context"),
    ],
)
def test_bad_data_raises_clear_error(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(DataError, match=match) as e:
        load_data(_cfg(tmp_path, data=str(path)), VOCAB, CONTEXT)
    assert "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "content, match",
    [(None, "does not exist"), (b"{broken", "not a valid Hugging Face tokenizer.json"),
     (b'{"model": {"type": "Nope"}}', "not a valid Hugging Face tokenizer.json")],
)
def test_bad_tokenizer_file_raises_clear_error(tmp_path, txt_file, content, match):
    tj = tmp_path / "tokenizer.json"
    if content is not None:
        tj.write_bytes(content)
    with pytest.raises(DataError, match=match) as e:
        load_data(_cfg(tmp_path, data=str(txt_file), tokenizer=str(tj)), VOCAB, CONTEXT)
    assert "\n" not in str(e.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_batches_shapes_shift_and_seed(default_data):
    d = default_data
    b = d.batches(4, seed=7)
    x, y = next(b)
    assert x.shape == y.shape == (4, CONTEXT) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    train = d.train.tolist()
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        start = _find(train, row_x + row_y[-1:])
        assert start >= 0
    again = d.batches(4, seed=7)
    assert torch.equal(next(again)[0], x)
    assert not torch.equal(next(d.batches(4, seed=8))[0], x)


def _find(seq: list[int], sub: list[int]) -> int:
    first = sub[0]
    for i in range(len(seq) - len(sub) + 1):
        if seq[i] == first and seq[i:i + len(sub)] == sub:
            return i
    return -1


def test_batches_state_dict_round_trip(default_data, tmp_path):
    b = default_data.batches(3, seed=1)
    for _ in range(5):
        next(b)
    path = tmp_path / "state.pt"
    torch.save(b.state_dict(), path)
    expected = [next(b) for _ in range(3)]

    resumed = default_data.batches(3, seed=1)
    resumed.load_state_dict(torch.load(path, weights_only=True))
    assert resumed.served == 5
    for (ex, ey), (rx, ry) in zip(expected, (next(resumed) for _ in range(3))):
        assert torch.equal(ex, rx) and torch.equal(ey, ry)

    with pytest.raises(DataError, match="batch_size"):
        default_data.batches(4, seed=1).load_state_dict(torch.load(path, weights_only=True))


def test_val_batches_fixed_and_from_val(default_data):
    d = default_data
    vb = d.val_batches(2, 3)
    assert len(vb) == 3 and all(x.shape == (2, CONTEXT) for x, _ in vb)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(vb, d.val_batches(2, 3)))
    val = d.val.tolist()
    assert _find(val, vb[0][0][0].tolist()) == 0
    assert val[-CONTEXT:] == vb[-1][1][-1].tolist()


def test_eval_prompts_deterministic_and_held_out(default_data):
    d = default_data
    prompts = d.eval_prompts(6, 12)
    assert prompts == d.eval_prompts(6, 12)
    assert len(prompts) == 6 and all(len(p) == 12 for p in prompts)
    assert len({tuple(p) for p in prompts}) == 6
    val = d.val.tolist()
    for p in prompts:
        assert _find(val, p) >= 0
        assert d.eot_id not in p
    starts = [d.token_text(p[0]) for p in prompts]
    assert sum(s.strip()[:1].isupper() for s in starts) >= 4


def test_unigram_entropy_matches_numpy():
    counts = np.array([1, 2, 3, 4, 0, 0], dtype=np.float64)
    p = counts[:4] / counts.sum()
    expected = float(-(p * np.log(p)).sum())
    h, log_p = unigram_stats(torch.tensor(counts))
    assert h == pytest.approx(expected)
    assert float(log_p.exp().sum()) == pytest.approx(1.0, abs=1e-5) and bool((log_p[4:] > -math.inf).all())
    assert unigram_stats(torch.tensor([5, 0, 0]))[0] == 0.0
    assert unigram_stats(torch.ones(8))[0] == pytest.approx(math.log(8))

