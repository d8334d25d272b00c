"""Regex LFs: vote a label when a regular expression matches the text.

Patterns RE2 can run are evaluated by DuckDB's RE2 engine on both paths (SQL in bulk, and
per item through an in-process DuckDB), so the two can never disagree. Patterns RE2 rejects
(look-around, back-references) run with Python ``re`` on both paths instead.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache

import duckdb

from thresher.labeling.lf.base import ABSTAIN, LabelingFunction, Row
from thresher.labeling.lf.literals import required_literals

_local = threading.local()


def sql_string(value: str) -> str:
    """Quote a Python string as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _engine() -> duckdb.DuckDBPyConnection:
    """A per-thread in-memory DuckDB used to evaluate RE2 patterns item by item."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
    return con


def re2_search(pattern: str, text: str) -> bool:
    """Whether RE2 (as DuckDB runs it) finds ``pattern`` anywhere in ``text``."""
    return bool(_engine().execute("SELECT regexp_matches($1, $2)", [text, pattern]).fetchall()[0][0])


@lru_cache(maxsize=4096)
def re2_supports(pattern: str) -> bool:
    """Whether RE2 can compile ``pattern`` (it has no look-around and no back-references)."""
    try:
        re2_search(pattern, "")
    except duckdb.Error:
        return False
    return True


class RegexLF(LabelingFunction):
    """Vote ``label`` when ``pattern`` matches anywhere in the text.

    RE2 semantics (``\\w \\d \\s \\b`` are ASCII) whenever RE2 can run the pattern; Python
    ``re`` semantics otherwise (``uses_re2`` says which). Both paths of one LF always agree.

    Examples
    --------
    >>> lf = RegexLF("re_check_out", pattern=r"check\\s+(it\\s+)?out", label=1, case_sensitive=False)
    >>> lf(Row(text="Check it out!")), lf(Row(text="checkout page")), lf.uses_re2
    (1, -1, True)
    >>> RegexLF("re_repeat", pattern=r"(\\w)\\1{3}", label=1).uses_re2  # back-reference: Python re
    False
    """

    kind = "regex"

    def __init__(self, name: str, *, pattern: str, label: int, case_sensitive: bool = True) -> None:
        super().__init__(name)
        self.pattern = pattern
        self.label = int(label)
        self.case_sensitive = case_sensitive
        self._re2_pattern = pattern if case_sensitive else f"(?i){pattern}"
        self.uses_re2 = re2_supports(self._re2_pattern)
        self._python = None
        if not self.uses_re2:
            try:
                self._python = re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
            except re.error as exc:
                raise ValueError(
                    f"The 'pattern' of RegexLF {name!r} is not a valid regex for RE2 nor for Python re "
                    f"({exc}). Got {pattern!r}."
                ) from None

    def __call__(self, x: Row) -> int:
        if self._python is not None:
            hit = self._python.search(x.text) is not None
        else:
            hit = re2_search(self._re2_pattern, x.text)
        return self.label if hit else ABSTAIN

    def definition(self) -> str:
        return json.dumps({"pattern": self.pattern, "label": self.label, "case_sensitive": self.case_sensitive}, sort_keys=True)

    def literals(self) -> list[str] | None:
        return required_literals(self.pattern) if self.uses_re2 else None

    def sql(self, text_column: str = "text") -> str | None:
        if not self.uses_re2:
            return None
        return f"CASE WHEN regexp_matches({text_column}, {sql_string(self._re2_pattern)}) THEN {self.label} ELSE {ABSTAIN} END"
