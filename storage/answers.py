"""Crowd answers as they come: a long file, one row per (item, worker, answer), stored as votes.

This module holds the configuration; :func:`thresher.storage.ingest.ingest_answers` reads the file with
the items' readers.

Crowdsourcing platforms and public crowd sets (RTE, web search relevance, the quiz sets) give answers
in long form. A source's ``answers`` reads such a file next to the source's items: each worker becomes
an LF of ``source_votes`` by name (no list of workers to keep), each answer is parsed as a label is
(class name or id, through the source's ``label_map``). Nothing is dropped silently: an answer for an
item the source does not have, an answer that is not a class, a row without one of the three fields,
a worker answering an item twice differently, or an exact repeat is a reject with its reason.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from thresher.core.config import ConfigPath, StageConfig


class Thresholds(StageConfig):
    """Numeric ratings mapped to classes: ``bins`` lists (upper bound, class) in increasing order, a
    rating going to the first class whose bound it is below; the last bound may be null (no bound).
    E.g. ``[[2.5, negative], [3.5, neutral], [null, positive]]`` for 1-5 stars."""

    # [[upper bound, class], ...] in order; null as the last bound: everything above
    bins: list[tuple[float | None, str | int]] = Field(min_length=2)

    @field_validator("bins")
    @classmethod
    def _increasing(cls, value: list[tuple[float | None, str | int]]) -> list[tuple[float | None, str | int]]:
        bounds = [math.inf if b is None else b for b, _ in value]
        if any(b is None for b, _ in value[:-1]) or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"thresholds.bins must be in increasing order of their bounds, only the last one null: {value}")
        return value

    def binned(self, value: Any) -> Any:
        """The class of a numeric ``value`` (as a number or numeric text); anything else as it is."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        if math.isnan(number):
            return value
        for bound, label in self.bins:
            if bound is None or number < bound:
                return label
        raise ValueError(f"rating {value!r} is above the last threshold {self.bins[-1][0]}")


class AnswerColumns(StageConfig):
    """The columns of a long answers file (nested JSON fields with dots, as a source's columns)."""

    item: str = "item"  # the item's id, as the source's ``columns.id`` holds it
    worker: str = "worker"  # who answered: becomes the LF name
    answer: str = "answer"  # a class name or id (through the source's label_map)


class AnswersConfig(StageConfig):
    """A long file of crowd answers for the items of one source."""

    path: ConfigPath  # the answers file (relative to the config file)
    format: Literal["csv", "jsonl", "json", "parquet"] | None = None  # None: from the extension
    columns: AnswerColumns = AnswerColumns()  # which columns hold the item id, the worker and the answer
    delimiter: str | None = Field(None, min_length=1, max_length=1)  # None: a tab for .tsv, else a comma
    abstain: str | int | None = None  # an answer value that means "no answer" (as text, like label_map keys)
    thresholds: Thresholds | None = None  # numeric ratings -> classes, before label_map and class parsing
