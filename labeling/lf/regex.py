"""Regex LFs: vote a label when a regular expression matches the text (RE2 semantics)."""

from __future__ import annotations

import json
import re

from labeling.lf.base import ABSTAIN, LabelingFunction, Row


def sql_string(value: str) -> str:
    """Quote a Python string as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def python_pattern(pattern: str) -> str:
    """Give a pattern RE2's meaning of ``\\w``, ``\\d``, ``\\s`` and ``\\b`` in Python ``re``.

    RE2 (DuckDB) treats those classes as ASCII; Python's are Unicode. Rewriting them to explicit
    ASCII classes (rather than passing ``re.ASCII``) keeps case-insensitive matching Unicode-aware
    in both engines.
    """
    replacements = {
        r"\w": "[0-9A-Za-z_]", r"\W": "[^0-9A-Za-z_]", r"\d": "[0-9]", r"\D": "[^0-9]",
        r"\s": r"[\t\n\f\r ]", r"\S": r"[^\t\n\f\r ]",
        r"\b": r"(?:(?<=[0-9A-Za-z_])(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?=[0-9A-Za-z_]))",
        r"\B": r"(?:(?<=[0-9A-Za-z_])(?=[0-9A-Za-z_])|(?<![0-9A-Za-z_])(?![0-9A-Za-z_]))",
    }
    out, i = [], 0
    while i < len(pattern):
        two = pattern[i : i + 2]
        if two in replacements:
            out.append(replacements[two])
            i += 2
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(two)
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


class RegexLF(LabelingFunction):
    """Vote ``label`` when ``pattern`` matches anywhere in the text.

    The pattern is evaluated by DuckDB's RE2 engine; the per-item path gives Python ``re`` the
    same ASCII meaning of ``\\w \\d \\s \\b``, so both paths vote identically.

    Examples
    --------
    >>> lf = RegexLF("re_check_out", pattern=r"check\\s+(it\\s+)?out", label=1, case_sensitive=False)
    >>> lf(Row(text="Check it out!")), lf(Row(text="checkout page"))
    (1, -1)
    """

    kind = "regex"

    def __init__(self, name: str, *, pattern: str, label: int, case_sensitive: bool = True) -> None:
        super().__init__(name)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"The 'pattern' of RegexLF {name!r} is not a valid regex: {exc}. Got {pattern!r}.") from None
        self.pattern = pattern
        self.label = int(label)
        self.case_sensitive = case_sensitive
        flags = 0 if case_sensitive else re.IGNORECASE
        self._compiled = re.compile(python_pattern(pattern), flags)

    def __call__(self, x: Row) -> int:
        return self.label if self._compiled.search(x.text) is not None else ABSTAIN

    def definition(self) -> str:
        return json.dumps({"pattern": self.pattern, "label": self.label, "case_sensitive": self.case_sensitive}, sort_keys=True)

    def sql(self, text_column: str = "text") -> str:
        pattern = self.pattern if self.case_sensitive else f"(?i){self.pattern}"
        return f"CASE WHEN regexp_matches({text_column}, {sql_string(pattern)}) THEN {self.label} ELSE {ABSTAIN} END"
