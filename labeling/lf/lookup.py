"""Lookup LFs: a term list mapping each term to a label; vote the label whose terms occur."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.labeling.lf.keyword import ascii_literals, terms_pattern
from thresher.labeling.lf.regex import re2_search, sql_string


class LookupLF(LabelingFunction):
    """Vote label ``y`` when terms mapped to ``y`` occur and no term of another label does.

    Terms of several labels in one text is a conflict: abstain. Matching is as in
    :class:`~labeling.lf.keyword.KeywordLF` (RE2, case-insensitive by default, word boundaries).

    Examples
    --------
    >>> lf = LookupLF("genre", terms={"goal": 0, "striker": 0, "election": 1})
    >>> lf(Row(text="A late goal")), lf(Row(text="election goal")), lf(Row(text="rain"))
    (0, -1, -1)
    """

    kind = "lookup"

    def __init__(self, name: str, *, terms: dict[str, int], case_sensitive: bool = False,
                 word_boundary: bool = True) -> None:
        super().__init__(name)
        if not terms or any(not isinstance(t, str) or not t for t in terms):
            raise ValueError(f"The 'terms' of LookupLF {name!r} must map non-empty strings to labels. Got {terms!r}.")
        self.terms = {t: int(label) for t, label in terms.items()}
        self.case_sensitive = case_sensitive
        self.word_boundary = word_boundary
        by_label: dict[int, list[str]] = {}
        for term, label in sorted(self.terms.items()):
            by_label.setdefault(label, []).append(term)
        self._patterns = {
            label: terms_pattern(group, case_sensitive=case_sensitive, word_boundary=word_boundary)
            for label, group in sorted(by_label.items())
        }

    def __call__(self, x: Row) -> int:
        hits = [label for label, pattern in self._patterns.items() if re2_search(pattern, x.text)]
        return hits[0] if len(hits) == 1 else ABSTAIN

    def definition(self) -> str:
        return json.dumps({"terms": self.terms, "case_sensitive": self.case_sensitive,
                           "word_boundary": self.word_boundary}, sort_keys=True)

    def literals(self) -> list[str] | None:
        return ascii_literals(list(self.terms))

    def sql(self, text_column: str = "text") -> str:
        matches = {label: f"regexp_matches({text_column}, {sql_string(p)})" for label, p in self._patterns.items()}
        branches = []
        for label, match in matches.items():
            others = [f"NOT {m}" for other, m in matches.items() if other != label]
            branches.append(f"WHEN {' AND '.join([match, *others])} THEN {label}")
        return f"CASE {' '.join(branches)} ELSE {ABSTAIN} END"


def read_terms_file(path: str | Path) -> dict[str, str]:
    """Read a two-column CSV (``term,label``, header optional) into a term -> label mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Terms file '{path}' does not exist.")
    terms: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or (number == 1 and [c.strip().lower() for c in row[:2]] == ["term", "label"]):
                continue
            if len(row) != 2 or not row[0]:
                raise ValueError(f"{path}:{number}: expected 'term,label'. Got {row!r}.")
            terms[row[0]] = row[1].strip()
    return terms
