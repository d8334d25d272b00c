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

from typing import Literal

from pydantic import Field

from thresher.core.config import StageConfig


class AnswerColumns(StageConfig):
    """The columns of a long answers file (nested JSON fields with dots, as a source's columns)."""

    item: str = "item"  # the item's id, as the source's ``columns.id`` holds it
    worker: str = "worker"  # who answered: becomes the LF name
    answer: str = "answer"  # a class name or id (through the source's label_map)


class AnswersConfig(StageConfig):
    """A long file of crowd answers for the items of one source."""

    path: str
    format: Literal["csv", "jsonl", "json", "parquet"] | None = None  # None: from the extension
    columns: AnswerColumns = AnswerColumns()
    delimiter: str | None = Field(None, min_length=1, max_length=1)  # None: a tab for .tsv, else a comma
    abstain: str | int | None = None  # an answer value that means "no answer" (as text, like label_map keys)
