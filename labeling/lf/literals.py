"""Literals an LF's matches must contain: what the literal gates test for."""

from __future__ import annotations

import re
from re import _constants as sre_constants  # the stdlib parser behind re (public sre_* names are deprecated)
from re import _parser as sre_parse

_LITERAL = sre_constants.LITERAL


def required_literals(pattern: str) -> list[str] | None:
    """Lower-cased ASCII strings at least one of which every match of ``pattern`` contains.

    None when no such set is found (look-arounds, classes only, optional parts, non-ASCII).

    Examples
    --------
    >>> required_literals(r"check\\s+(it\\s+)?out")
    ['check']
    >>> sorted(required_literals(r"https?://|www\\."))
    ['http', 'www.']
    >>> required_literals(r"\\d+%") is None
    True
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, ValueError):
        return None
    found = _required(list(parsed))
    return None if found is None else sorted(found)


def _score(candidate: set[str]) -> tuple[int, int]:
    return min(len(s) for s in candidate), -len(candidate)


def _required(items: list) -> set[str] | None:
    candidates: list[set[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append({"".join(run)})
            run.clear()

    for op, value in items:
        if op is _LITERAL and value < 128:
            run.append(chr(value).lower())
            continue
        close_run()
        if op is sre_constants.SUBPATTERN:
            sub = _required(list(value[-1]))
            if sub is not None:
                candidates.append(sub)
        elif op is sre_constants.BRANCH:
            branches = [_required(list(b)) for b in value[1]]
            if all(b is not None for b in branches):
                candidates.append(set().union(*branches))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _high, item = value
            if low >= 1:
                sub = _required(list(item))
                if sub is not None:
                    candidates.append(sub)
        elif op is _LITERAL:  # non-ASCII literal: no gate from it
            continue
    close_run()
    good = [c for c in candidates if all(c) and min(len(s) for s in c) >= 2]
    return max(good, key=_score) if good else None
