"""The text a run trains on: the embedded default corpus, or the user's ``.txt`` file, folder or ``.jsonl``.

The default is English prose that ships with every Python install: the Language Reference in
``pydoc_data.topics`` plus standard-library docstrings, so nothing is downloaded at run time.
Every failure the user can cause raises :class:`DataError` with one sentence.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import stat
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bitnet_tui.session.errors import UserError

CORPUS_NAME = "python-stdlib-docs"
EOT = "<|endoftext|>"
MIN_DEFAULT_CHARS = 200_000
"""Below this much text the fallback corpus is too small to say anything about collapse."""
MAX_DOCSTRING_CHARS = 2_000_000
"""Cap on the docstring part of the default corpus."""
MAX_PIECE_CHARS = 4096
"""Longer paragraphs are cut at whitespace so encode_batch can spread them over threads."""


class DataError(UserError, ValueError):
    """The data or tokenizer cannot be used. The message is one user-facing sentence."""


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Corpus:
    """Documents cut into pieces; concatenating a document's pieces gives its text."""

    docs: list[list[str]]
    info: dict[str, Any]


_UNDERLINE = re.compile(r"^\s*([*=\-~^#+])\1{2,}\s*$")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_FOOTNOTE = re.compile(r"\s*\[\d+\]")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_WORD = re.compile(r"^[\"'(\[]*[A-Za-z][A-Za-z'\-]*[.,;:!?\"')\]]*$")
_DOCSTRING = re.compile(r"""[rRuU]?(\"\"\"|''')(.*?)\1""", re.DOTALL)
_SKIP_DIRS = {
    "test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "site-packages",
    "dist-packages", "ensurepip", "__pycache__", "pydoc_data", "encodings",
}


def _prose(block: list[str]) -> str | None:
    """One paragraph of reST-ish text reflowed to a single line, or None if it is not prose."""
    if any(_UNDERLINE.match(line) for line in block):
        return None  # a heading
    if any(line.lstrip().startswith((">>>", "...", "$ ", "%")) for line in block):
        return None
    text = " ".join(line.strip() for line in block).translate(_QUOTES)
    if "::=" in text or "{" in text or "=>" in text:
        return None
    text = _FOOTNOTE.sub("", _EMPHASIS.sub(r"\1", text))
    text = re.sub(r"\s+", " ", text).strip()
    if text.endswith("::"):
        text = text[:-1]
    words = text.split(" ")
    if len(words) < 6 or not text[0].isalpha() and text[0] not in "\"'(":
        return None
    if sum(bool(_WORD.match(w)) for w in words) < 0.8 * len(words):
        return None
    return text


def _paragraphs(text: str) -> list[str]:
    out, block = [], []
    for line in text.splitlines() + [""]:
        if line.strip():
            block.append(line)
        elif block:
            p = _prose(block)
            if p is not None:
                out.append(p)
            block = []
    return out


def _stdlib_docstrings() -> list[list[str]]:
    """Prose paragraphs from the docstrings of the pure-Python standard library, one list per module."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("config-"))
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py") and not f.startswith("test"))
    docs, total = [], 0
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        try:
            src = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        paras: list[str] = []
        for m in _DOCSTRING.finditer(src):
            before = src[: m.start()].rstrip()
            if before and not before.endswith(":"):
                continue  # not the first statement of a module, class or function
            paras.extend(_paragraphs(inspect.cleandoc(m.group(2))))
        if paras:
            docs.append(paras)
            total += sum(map(len, paras))
            if total >= MAX_DOCSTRING_CHARS:
                break
    return docs


def default_corpus() -> Corpus:
    """The Python Language Reference (``pydoc_data.topics``) and stdlib docstrings, as prose paragraphs.

    Deterministic for a given Python build. Raises DataError if the install has too little of either.
    """
    docs: list[list[str]] = []
    sources = []
    try:
        from pydoc_data.topics import topics
    except ImportError:
        topics = {}
    if topics:
        sources.append("pydoc_data.topics")
        docs.extend(p for p in (_paragraphs(topics[k]) for k in sorted(topics)) if p)
    stdlib = _stdlib_docstrings()
    if stdlib:
        sources.append("stdlib docstrings")
        docs.extend(stdlib)
    docs = [[p + "\n" for p in d] for d in docs]
    # A fixed, content-keyed order mixes reference topics and module docs, so the held-out tail is typical.
    docs.sort(key=lambda d: hashlib.sha256(d[0].encode("utf-8")).digest())
    chars = sum(len(p) for d in docs for p in d)
    if chars < MIN_DEFAULT_CHARS:
        raise DataError(
            f"this Python install has too little documentation for the default corpus ({chars:,} characters); "
            "pass a text file or folder with --data"
        )
    return _make_corpus(docs, name=CORPUS_NAME, kind="default", path=None, sources=sources)


def _make_corpus(docs: list[list[str]], **info: Any) -> Corpus:
    h = hashlib.sha256()
    for d in docs:
        for p in d:
            h.update(p.encode("utf-8"))
        h.update(b"\x00")
    pieces = [[c for p in d for c in _cut(p)] for d in docs]
    full = {
        **info,
        "python": sys.version.split()[0] if info.get("kind") == "default" else None,
        "sha256": h.hexdigest(),
        "chars": sum(len(p) for d in docs for p in d),
        "documents": len(docs),
    }
    return Corpus(docs=pieces, info={k: v for k, v in full.items() if v is not None})


def _cut(text: str) -> list[str]:
    """Cut text into pieces of at most ~MAX_PIECE_CHARS, each new piece starting at a whitespace."""
    out = []
    while len(text) > MAX_PIECE_CHARS:
        i = text.rfind(" ", MAX_PIECE_CHARS // 2, MAX_PIECE_CHARS)
        if i <= 0:
            i = MAX_PIECE_CHARS
        out.append(text[:i])
        text = text[i:]
    out.append(text)
    return out


MAX_DATA_BYTES = 1 << 30
"""``--data`` reads at most this much text (1 GiB): more is refused with a message, never read to exhaustion."""


def read_regular(path: Path, limit: int = MAX_DATA_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes. A FIFO, a device (``/dev/zero``) or a directory
    is refused with one sentence instead of blocking or reading until memory runs out."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise DataError(f"{path} is {st.st_size:,} bytes; --data reads at most {limit:,}")
        os.set_blocking(fd, True)
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise DataError(f"{path} is larger than {limit:,} bytes; --data reads at most that")
    return raw


def _read_text(path: Path, limit: int = MAX_DATA_BYTES) -> str:
    raw = read_regular(path, limit)
    if b"\x00" in raw:
        raise DataError(f"{path} looks like a binary file (it contains NUL bytes), not UTF-8 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not valid UTF-8 text (bad byte at offset {e.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text_doc(text: str) -> list[str]:
    """User text as paragraphs (blank-line separated), line breaks inside a paragraph kept."""
    paras = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text)]
    paras = ["\n".join(line.rstrip() for line in p.split("\n")) for p in paras if p.strip()]
    return [p + "\n\n" for p in paras]


def user_corpus(path_str: str) -> Corpus:
    """A .txt file, a folder of .txt files (recursive, sorted) or a .jsonl file with a "text" field per line."""
    path = Path(path_str).expanduser()
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    skipped = None
    if path.is_dir():
        files = sorted(path.rglob("*.txt"), key=lambda p: p.relative_to(path).as_posix())
        files = [f for f in files if f.is_file()]  # FIFOs and devices named *.txt are not text files
        if not files:
            raise DataError(f"folder {path} contains no .txt files")
        docs, left = [], MAX_DATA_BYTES
        for f in files:
            raw = _read_text(f, left)
            left -= len(raw.encode("utf-8"))
            doc = _text_doc(raw)
            if doc:
                docs.append(doc)
        kind = "folder"
        if not docs:
            raise DataError(f"the .txt files in {path} contain no text")
    elif path.suffix.lower() == ".jsonl":
        kind = "jsonl"
        docs, skipped, lines = [], 0, 0
        for line in _read_text(path).split("\n"):
            if not line.strip():
                continue
            lines += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                skipped += 1
                continue
            doc = _text_doc(text.replace("\r\n", "\n"))
            if doc:
                docs.append(doc)
        if not docs:
            if lines == 0:
                raise DataError(f"{path} is empty")
            raise DataError(
                f"{path} has no usable lines: {skipped} of {lines} are not JSON objects with a string \"text\" field"
            )
    else:
        kind = "txt"
        doc = _text_doc(_read_text(path))
        if not doc:
            raise DataError(f"{path} is empty")
        docs = [doc]
    return _make_corpus(docs, name=path.name, kind=kind, path=str(path.resolve()), skipped_lines=skipped)

