"""Tokenizers: a byte-level BPE trained on the corpus (cached on disk, keyed by corpus and size), or the
user's Hugging Face ``tokenizer.json``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from bitnet_model.data.corpus import EOT, DataError, read_regular

_TOKENIZER_RECIPE = "bytelevel-bpe-v1"
"""Bump when the training recipe changes so old cache entries are not reused."""

def resolve_cache_dir(cache_dir: str | None) -> Path:
    """DataConfig.cache_dir, else $BITNET_TUI_CACHE, else ~/.cache/bitnet-tui."""
    return Path(cache_dir or os.environ.get("BITNET_TUI_CACHE") or "~/.cache/bitnet-tui").expanduser()


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) with one special token, EOT, at id 0."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def sha_file(path: Path) -> str:
    return hashlib.sha256(read_regular(path, MAX_TOKENIZER_BYTES)).hexdigest()


def tokenizer_cache(cache_dir: Path) -> Path:
    """The cache's ``tokenizers`` folder, created if need be: checked before any heavy work (building the corpus,
    training), so a cache that cannot be a folder (``$BITNET_TUI_CACHE`` naming a file) is one sentence at once."""
    d = cache_dir / "tokenizers"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot use the tokenizer cache {d}: {e.strerror or e} (set $BITNET_TUI_CACHE to a folder "
                        "you can write)") from None
    return d


MAX_TOKENIZER_BYTES = 256 << 20
MAX_TOKEN_ID = 1 << 20
"""Token ids beyond this are not a vocabulary a model here could have (``--vocab-size`` stops there too)."""


def load_tokenizer_file(path_str: str) -> tuple[Tokenizer, Path]:
    path = Path(path_str).expanduser()
    if not path.exists():
        raise DataError(f"tokenizer file {path} does not exist")
    raw = read_regular(path, MAX_TOKENIZER_BYTES)
    try:
        tok = Tokenizer.from_str(raw.decode("utf-8", "replace"))
    except Exception as e:  # noqa: BLE001 - tokenizers raises bare Exception for every parse failure
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path} is not a valid Hugging Face tokenizer.json ({first[:200]})") from None
    vocab = tok.get_vocab(with_added_tokens=True)
    if vocab and max(vocab.values()) >= MAX_TOKEN_ID:
        raise DataError(f"{path} has a token id of {max(vocab.values()):,}; ids must stay below {MAX_TOKEN_ID:,}")
    return tok, path


def cached_tokenizer(corpus_sha: str, train_texts: list[str], vocab_size: int, val_fraction: float,
                      cache_dir: Path) -> tuple[Tokenizer, Path, bool]:
    """Load the tokenizer for this corpus and vocab from the cache, training and saving it if absent."""
    import tokenizers

    key = hashlib.sha256(
        f"{_TOKENIZER_RECIPE}|{tokenizers.__version__}|{corpus_sha}|{vocab_size}|{val_fraction!r}".encode()
    ).hexdigest()
    path = cache_dir / "tokenizers" / f"bpe-{vocab_size}-{key[:16]}.json"
    if path.is_file():
        try:
            return Tokenizer.from_file(str(path)), path, False
        except Exception:  # noqa: BLE001 - a damaged cache entry is retrained and replaced
            path.unlink(missing_ok=True)
    if not os.access(tokenizer_cache(cache_dir), os.W_OK | os.X_OK):  # say so before training, not after
        raise DataError(f"cannot write the tokenizer cache in {cache_dir}: permission denied (set $BITNET_TUI_CACHE "
                        "to a folder you can write)")
    tok = train_tokenizer(train_texts, vocab_size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tok.save(str(tmp))
        os.replace(tmp, path)
    except OSError as e:
        raise DataError(f"cannot write the tokenizer cache in {cache_dir}: {e.strerror or e}") from None
    return tok, path, True

