"""Keyword LFs: vote a label when any (or all) of a list of terms occurs in the text."""

from __future__ import annotations

import json
import re
from typing import Literal

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.labeling.lf.regex import re2_search, sql_string

# A term's neighbours must not be ASCII word characters (RE2's notion of a word boundary).
_WORD = "0-9A-Za-z_"


# Lower-cased text for literal gates: the only non-ASCII characters RE2's case folding maps onto
# ASCII letters are U+017F (s) and U+212A (k); DuckDB's lower() turns U+212A into 'k' but keeps
# U+017F, hence the replace. The literal gate scans this text.
LOWER_TEXT_SQL = "replace(lower(text), '\u017f', 's')"


def ascii_literals(terms: list[str]) -> list[str] | None:
    """The lower-cased terms, when all are ASCII (else None: no gate is safe)."""
    return [t.lower() for t in terms] if all(t.isascii() for t in terms) else None


def terms_pattern(terms: list[str], *, case_sensitive: bool, word_boundary: bool) -> str:
    """An RE2 pattern matching any of ``terms`` literally, optionally between word boundaries."""
    flags = "" if case_sensitive else "(?i)"
    left, right = (f"(?:^|[^{_WORD}])", f"(?:$|[^{_WORD}])") if word_boundary else ("", "")
    return f"{flags}{left}(?:{'|'.join(re.escape(t) for t in terms)}){right}"


class KeywordLF(LabelingFunction):
    """Vote ``label`` when the text contains any (``mode="any"``) or all of ``terms``.

    Matching is case-insensitive unless ``case_sensitive``; with ``word_boundary`` a term must
    not touch an ASCII letter, digit or underscore on either side. Both the SQL and the per-item
    path match with RE2, so they agree on every text.

    Examples
    --------
    >>> lf = KeywordLF("kw_sub", terms=["subscribe"], label=1)
    >>> lf(Row(text="Please SUBSCRIBE to my channel")), lf(Row(text="subscribers"))
    (1, -1)
    """

    kind = "keyword"

    def __init__(
        self,
        name: str,
        *,
        terms: list[str],
        label: int,
        mode: Literal["any", "all"] = "any",
        case_sensitive: bool = False,
        word_boundary: bool = True,
    ) -> None:
        super().__init__(name)
        if not terms or any(not isinstance(t, str) or not t for t in terms):
            raise ValueError(f"The 'terms' of KeywordLF {name!r} must be non-empty strings. Got {terms!r} instead.")
        if mode not in ("any", "all"):
            raise ValueError(f"The 'mode' of KeywordLF {name!r} must be 'any' or 'all'. Got {mode!r} instead.")
        self.terms = list(terms)
        self.label = int(label)
        self.mode = mode
        self.case_sensitive = case_sensitive
        self.word_boundary = word_boundary
        self._patterns = self._term_patterns()

    def _term_patterns(self) -> list[str]:
        """One RE2 pattern per term (or one alternation of all terms for mode 'any')."""
        if self.mode == "any":
            return [terms_pattern(self.terms, case_sensitive=self.case_sensitive, word_boundary=self.word_boundary)]
        return [terms_pattern([t], case_sensitive=self.case_sensitive, word_boundary=self.word_boundary) for t in self.terms]

    def __call__(self, x: Row) -> int:
        hits = (re2_search(p, x.text) for p in self._patterns)
        return self.label if (any(hits) if self.mode == "any" else all(hits)) else ABSTAIN

    def definition(self) -> str:
        return json.dumps(
            {"terms": self.terms, "label": self.label, "mode": self.mode,
             "case_sensitive": self.case_sensitive, "word_boundary": self.word_boundary},
            sort_keys=True,
        )

    def sql(self, text_column: str = "text") -> str:
        joiner = " OR " if self.mode == "any" else " AND "
        tests = joiner.join(f"regexp_matches({text_column}, {sql_string(p)})" for p in self._term_patterns())
        return f"CASE WHEN {tests} THEN {self.label} ELSE {ABSTAIN} END"

    def literals(self) -> list[str] | None:
        return ascii_literals(self.terms)
