"""What every input format shares: the parsed row, the reject, and the reader's interface.

A format is one module of this package with one :class:`FormatReader` subclass: ``read`` yields each
row of a file as a :class:`Raw` (its line, fields by name, and raw text) or a :class:`Reject` with a
reason, never dropping one; ``columns`` gives the column names that a source's mapping is checked
against. Ingest, ``thresher check`` and ``thresher init`` all read files through these readers.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

SAMPLE_ROWS = 50  # rows whose keys give a row-wise format's columns


@dataclass(frozen=True)
class Reject:
    """One input row that could not become an item."""

    source: str
    line: int
    reason: str
    detail: str
    raw: str


@dataclass
class Raw:
    """One parsed input row before validation: its line, its fields by name, its raw text, and (WRENCH)
    its weak-label votes."""

    line: int
    fields: dict[str, Any]
    raw: str
    votes: list[int] | None = None


class Counts(Protocol):
    """Where a reader counts what is neither a row nor a reject."""

    blank_lines: int


class Options(Protocol):
    """The source settings a reader may need."""

    def resolved_delimiter(self, path: Path) -> str: ...


class FormatReader(ABC):
    """One input format: its name (the ``format:`` of a source), the file suffixes that imply it, and
    how to read its rows and columns."""

    name: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def read(self, path: Path, options: Options, counts: Counts) -> Iterator[Raw | Reject]:
        """Every row of ``path``, in order, as a :class:`Raw` or a :class:`Reject`."""

    def columns(self, path: Path, options: Options) -> set[str]:
        """The column names (nested ones dotted) in the first rows of ``path``."""
        names: set[str] = set()
        for row in itertools.islice(self.rows(path, options), SAMPLE_ROWS):
            names |= set(row)
        return names

    def rows(self, path: Path, options: Options) -> Iterator[dict[str, Any]]:
        """The rows that parse, as mappings with nested fields also under dotted names (what
        ``thresher init`` profiles; ingest is what quarantines the others, with a reason)."""

        class _Counts:
            blank_lines = 0

        for parsed in self.read(path, options, _Counts()):
            if isinstance(parsed, Raw):
                yield flatten({k: v for k, v in parsed.fields.items() if k != "__key__"})


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every key of a JSON object with its value, nested keys as dotted paths (``data.text``) too."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        flat[name] = value
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
    return flat


def escape_bytes(text: str) -> str:
    """Make text decoded with surrogateescape storable, showing bad bytes as ``\\xNN`` (and any other
    lone surrogate as ``\\udNNN``)."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def has_bad_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_text(path: Path) -> str:
    """A whole file as text, a UTF-8 BOM dropped and bad bytes kept (surrogateescape)."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")


def whole_json(path: Path, kind: type, unparsed: str, wrong_kind: str) -> Any:
    """A whole JSON file's value when it is a ``kind``; otherwise the file's reject (line 0)."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Reject(str(path), 0, "unparseable", f"{unparsed}: {exc}", escape_bytes(text))
    if not isinstance(data, kind):
        return Reject(str(path), 0, "unparseable", f"{wrong_kind}, got {type(data).__name__}", escape_bytes(text))
    return data

