"""The labeling-function contract: a name, a per-item vote, a version, and an optional SQL form."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from types import SimpleNamespace
from typing import Any

ABSTAIN = -1


class Row(SimpleNamespace):
    """One item as LFs see it: ``x.text`` and ``x["text"]`` both work, as with a pandas row.

    It is a ``SimpleNamespace`` so that Snorkel preprocessors can hash, copy and extend it.
    """

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class LabelingFunction(ABC):
    """A named function from an item to a class id or :data:`ABSTAIN`.

    ``__call__`` is the per-item path. Subclasses that can be evaluated inside DuckDB return a
    SQL expression from :meth:`sql`; the applier then evaluates all such LFs in one pass.
    """

    kind: str = "base"

    def __init__(self, name: str) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(
                f"The 'name' of an LF must be letters, digits, '_' or '-'. Got {name!r} instead."
            )
        self.name = name

    @abstractmethod
    def __call__(self, x: Row) -> int:
        """Vote on one item: a class id or ABSTAIN."""

    @abstractmethod
    def definition(self) -> str:
        """A canonical text of what this LF computes (its source, pattern or terms)."""

    def version(self) -> str:
        """A short hash of :meth:`definition`: changes exactly when the LF's behaviour may."""
        return hashlib.sha256(f"{self.kind}\n{self.definition()}".encode()).hexdigest()[:12]

    def sql(self, text_column: str = "text") -> str | None:
        """A DuckDB SQL expression giving the vote, or None when only Python can run it."""
        return None

    def literals(self) -> list[str] | None:
        """Lower-case ASCII strings one of which the lower-cased text contains whenever this LF
        votes (None: no such guarantee). The SQL engine uses them to skip rows in one pass."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
