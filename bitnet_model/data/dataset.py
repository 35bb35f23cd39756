"""Token streams and batches: :func:`load_data` is the one entry point.

It reads the corpus (:mod:`~bitnet_model.data.corpus`), gets a tokenizer
(:mod:`~bitnet_model.data.tokenizer`), tokenizes everything once and returns a :class:`Data`: train and
validation token streams, seeded resumable batches, fixed validation batches, fixed prompts, and the
corpus' unigram entropy. The result is memoised per process, so a sweep or a test session tokenises once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from bitnet_model.data.corpus import EOT, DataError, default_corpus, user_corpus
from bitnet_model.data.tokenizer import (
    cached_tokenizer,
    load_tokenizer_file,
    resolve_cache_dir,
    sha_file,
    tokenizer_cache,
)


class Batches:
    """Random (x, y) windows from a token stream, reproducible from a seed and resumable exactly.

    ``x`` and ``y`` are int64 tensors of shape (batch_size, context); ``y`` is ``x`` shifted by one token.
    """

    def __init__(self, stream: torch.Tensor, batch_size: int, context: int, seed: int) -> None:
        if stream.numel() <= context + 1:
            raise DataError(f"the token stream ({stream.numel()} tokens) is too short for context {context}")
        self.stream = stream
        self.batch_size = batch_size
        self.context = context
        self.seed = seed
        self.served = 0
        """Batches handed out so far."""
        self._gen = torch.Generator().manual_seed(seed)
        self._span = torch.arange(context + 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, self.stream.numel() - self.context, (self.batch_size,), generator=self._gen)
        chunk = self.stream[starts[:, None] + self._span]
        self.served += 1
        return chunk[:, :-1], chunk[:, 1:]

    def state_dict(self) -> dict[str, Any]:
        """Plain ints and a uint8 tensor: safe for ``torch.save`` / ``torch.load(weights_only=True)``."""
        return {
            "seed": self.seed,
            "batch_size": self.batch_size,
            "context": self.context,
            "tokens": int(self.stream.numel()),
            "served": self.served,
            "generator": self._gen.get_state(),
        }

    def reseed(self, step: int) -> None:
        """A fresh order for a run that continues at ``step`` with another world size (not bit-exact)."""
        self._gen.manual_seed(self.seed * 7919 + step)
        self.served = 0

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in ("batch_size", "context", "tokens"):
            mine = self.batch_size if k == "batch_size" else self.context if k == "context" else self.stream.numel()
            if state.get(k) != mine:
                raise DataError(f"cannot resume the batch order: saved {k} is {state.get(k)}, this run has {mine}")
        self.seed = int(state["seed"])
        self.served = int(state["served"])
        self._gen.set_state(state["generator"])


@dataclass(eq=False)
class Data:
    """Everything the trainer needs from the text. Built by :func:`load_data`."""

    tokenizer: Tokenizer
    vocab_size: int
    """Actual vocabulary: one more than the largest token id. The model's vocab must be at least this."""
    train: torch.Tensor
    """1-D int64 training token stream."""
    val: torch.Tensor
    """1-D int64 held-out token stream: the contiguous tail of the corpus."""
    context: int
    corpus_info: dict[str, Any]
    """name, kind, path (user data), python (default), sha256, chars, documents, skipped_lines (jsonl)."""
    tokenizer_info: dict[str, Any]
    """kind (trained|file), vocab_size, sha256 of the tokenizer JSON, path, cached (trained: loaded from cache)."""
    eot_id: int | None = None
    _texts: list[str] | None = field(default=None, repr=False)

    @property
    def ln_vocab(self) -> float:
        """Loss of a uniform guess over the vocabulary, in nats."""
        return math.log(self.vocab_size)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_text(self, token_id: int) -> str:
        """The readable text of one token, e.g. " the"; bytes of a split character show as U+FFFD."""
        texts = self._token_texts()
        if 0 <= token_id < len(texts):
            return texts[token_id]
        return f"<{token_id}>"

    def _token_texts(self) -> list[str]:
        if self._texts is None:
            texts = []
            for i in range(self.vocab_size):
                t = self.tokenizer.decode([i], skip_special_tokens=False)
                if not t:
                    t = self.tokenizer.id_to_token(i) or f"<{i}>"
                texts.append(t)
            self._texts = texts
        return self._texts

    def batches(self, batch_size: int, seed: int, *, rank: int = 0, world: int = 1) -> Batches:
        """Endless random training batches; same seed, same batches; see :meth:`Batches.state_dict`. With
        ``world`` > 1, rank ``rank`` draws from its own contiguous 1/world of the stream, with its own seed."""
        if world <= 1:
            return Batches(self.train, batch_size, self.context, seed)
        n = self.train.numel()
        lo, hi = n * rank // world, n * (rank + 1) // world
        shard = self.train[lo:min(n, hi + self.context + 1)]
        return Batches(shard, batch_size, self.context, seed * 1_000_003 + rank)

    def unigram_counts(self, vocab_size: int) -> torch.Tensor:
        """Token counts of the training stream over ``vocab_size`` ids (padding ids count 0)."""
        return torch.bincount(self.train, minlength=vocab_size)[:vocab_size]

    def val_batches(self, batch_size: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``n`` fixed held-out batches whose windows are evenly spaced over the validation stream."""
        last = self.val.numel() - self.context - 1
        starts = torch.linspace(0, last, batch_size * n, dtype=torch.float64).round().long()
        chunk = self.val[starts[:, None] + torch.arange(self.context + 1)]
        x, y = chunk[:, :-1], chunk[:, 1:]
        return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]) for i in range(n)]

    def eval_prompts(self, n: int, prompt_tokens: int) -> list[list[int]]:
        """``n`` fixed prompts of ``prompt_tokens`` tokens from evenly spaced places in the validation stream.

        Each starts at the first sentence start (else word start) at or after its place, avoiding EOT.
        """
        val = self.val.tolist()
        k = prompt_tokens
        if len(val) < k + 1:
            raise DataError(f"the validation split ({len(val)} tokens) is too short for {k}-token prompts")
        texts = self._token_texts()
        spacing = (len(val) - k) / n
        window = max(1, min(256, int(spacing)))
        prompts = []
        for i in range(n):
            off = int(i * spacing)
            best = None
            for s in range(off, min(off + window, len(val) - k + 1)):
                if self.eot_id is not None and self.eot_id in val[s:s + k]:
                    continue
                rank = self._boundary_rank(val, s, texts)
                if best is None or rank < best[0]:
                    best = (rank, s)
                    if rank == 0:
                        break
            start = off if best is None else best[1]
            prompts.append(val[start:start + k])
        return prompts

    def _boundary_rank(self, val: list[int], s: int, texts: list[str]) -> int:
        """0: a sentence or paragraph starts at token s; 1: a word starts there; 2: neither."""
        cur = texts[val[s]]
        prev = texts[val[s - 1]] if s > 0 else "\n"
        if s == 0 or val[s - 1] == self.eot_id or prev.endswith("\n"):
            return 0 if cur[:1].isalpha() else 1
        head = cur.lstrip(" ")
        if cur.startswith(" ") and head[:1].isupper() and prev.rstrip(" ")[-1:] in (".", "!", "?"):
            return 0
        return 1 if cur.startswith((" ", "\n")) else 2

    @property
    def train_tokens(self) -> int:
        return int(self.train.numel())

    @property
    def val_tokens(self) -> int:
        return int(self.val.numel())


def _encode_docs(tok: Tokenizer, docs: list[list[str]], eot_id: int | None, closed: bool = True) -> torch.Tensor:
    """Token ids of the documents, each followed by EOT; ``closed=False``: the last one continues elsewhere."""
    pieces = [p for d in docs for p in d]
    try:
        encoded = tok.encode_batch(pieces, add_special_tokens=False) if pieces else []
    except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exception (e.g. a BPE without an unk token)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"the tokenizer cannot encode this text ({first[:200]})") from None
    out: list[int] = []
    i = 0
    for j, d in enumerate(docs):
        for _ in d:
            out.extend(encoded[i].ids)
            i += 1
        if eot_id is not None and (closed or j < len(docs) - 1):
            out.append(eot_id)
    return torch.tensor(out, dtype=torch.int64)


def _split_docs(docs: list[list[str]], val_fraction: float) -> tuple[list[list[str]], list[list[str]], bool]:
    """Cut the corpus at the piece where the last ``val_fraction`` of its characters begins.

    Returns the train documents, the validation documents, and whether the cut fell between documents.
    """
    total = sum(len(p) for d in docs for p in d)
    target = total * (1 - val_fraction)
    seen = 0
    for di, d in enumerate(docs):
        for pi, p in enumerate(d):
            if seen + len(p) > target:
                if pi == 0 and di > 0:
                    return docs[:di], docs[di:], True
                if pi == 0:  # the first piece of all straddles the cut: cut inside it
                    cut = max(1, min(len(p) - 1, int(target - seen)))
                    return [[p[:cut]]], [[p[cut:]] + d[1:]] + docs[1:], False
                return docs[:di] + [d[:pi]], [d[pi:]] + docs[di + 1:], False
            seen += len(p)
    return docs, [], True


def load_data(dcfg: Any, vocab_size: int, context: int, seed: int = 0) -> Data:
    """Corpus, tokenizer and token streams for a run (``dcfg`` is a :class:`~bitnet_model.config.DataConfig`).

    ``vocab_size`` is the size of a trained tokenizer; a ``tokenizer.json`` brings its own. Check
    ``Data.vocab_size`` (the actual size) against the model. ``seed`` is accepted for symmetry with the
    trainer; batches take their seed from :meth:`Data.batches`.
    """
    del seed
    key = _cache_key(dcfg, vocab_size)
    hit = _LOADED.get(key)
    if hit is None:
        hit = _load(dcfg, vocab_size)
        _LOADED.clear()  # keep one: a sweep or a test session reuses it; a new corpus replaces it
        _LOADED[key] = hit
    for name, stream in (("training", hit.train), ("validation", hit.val)):
        if stream.numel() <= context + 1:
            raise DataError(
                f"the {name} split has {stream.numel()} tokens, too few for context {context}; "
                "use more text or a larger val_fraction"
            )
    return dataclasses.replace(hit, context=context)


_LOADED: dict[tuple, Data] = {}
"""Process-wide memo of the last corpus + tokenizer + streams (all read-only once built)."""


def forget_loaded() -> None:
    """Drop the in-process memo, so the next :func:`load_data` reads the disk cache (or trains) again."""
    _LOADED.clear()


def _stamp(path: str | None) -> tuple | None:
    if not path:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return (str(p), None)
    newest = st.st_mtime_ns
    if p.is_dir():
        newest = max([newest] + [f.stat().st_mtime_ns for f in p.rglob("*.txt")])
    return (str(p.resolve()), newest, st.st_size)


def _cache_key(dcfg: Any, vocab_size: int) -> tuple:
    return (_stamp(dcfg.data), _stamp(dcfg.tokenizer), dcfg.val_fraction, str(resolve_cache_dir(dcfg.cache_dir)),
            None if dcfg.tokenizer else vocab_size)


def _load(dcfg: Any, vocab_size: int) -> Data:
    context = 0
    if dcfg.tokenizer:  # a tokenizer file that will not do, or a cache that cannot be written: said before the corpus
        tok, tok_path = load_tokenizer_file(dcfg.tokenizer)
    else:
        tokenizer_cache(resolve_cache_dir(dcfg.cache_dir))
    corpus = user_corpus(dcfg.data) if dcfg.data else default_corpus()
    train_docs, val_docs, closed = _split_docs(corpus.docs, dcfg.val_fraction)
    if dcfg.tokenizer:
        kind, cached = "file", None
    else:
        if vocab_size < 257:
            raise DataError(f"vocab_size must be at least 257 (256 bytes + EOT), got {vocab_size}")
        train_texts = [p for d in train_docs for p in d]
        tok, tok_path, trained = cached_tokenizer(
            corpus.info["sha256"], train_texts, vocab_size, dcfg.val_fraction, resolve_cache_dir(dcfg.cache_dir)
        )
        kind, cached = "trained", not trained
    vocab = tok.get_vocab(with_added_tokens=True)
    actual = max(vocab.values()) + 1 if vocab else 0
    if actual == 0:
        raise DataError(f"the tokenizer {tok_path} has an empty vocabulary")
    eot_id = tok.token_to_id(EOT)
    train = _encode_docs(tok, train_docs, eot_id, closed)
    val = _encode_docs(tok, val_docs, eot_id)
    tokenizer_info = {
        "kind": kind,
        "vocab_size": actual,
        "sha256": sha_file(tok_path),
        "path": str(tok_path.resolve()),
    }
    if cached is not None:
        tokenizer_info["cached"] = cached
    return Data(
        tokenizer=tok,
        vocab_size=actual,
        train=train,
        val=val,
        context=context,
        corpus_info=corpus.info,
        tokenizer_info=tokenizer_info,
        eot_id=eot_id,
    )
