"""The columns a source file offers, read from its first rows: what the column mapping is checked against.

``thresher check`` (and the start of every command) compares each source's ``columns`` mapping
with these, so a misspelt text, label, gold, id or split column is an error naming the columns
found, before ingest would reject every row as ``missing_text`` or silently load no gold labels.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING

from thresher.storage.formats import READERS

if TYPE_CHECKING:
    from thresher.storage.ingest import SourceConfig

def sample_columns(path: Path, fmt: str, config: SourceConfig) -> set[str]:
    """The column names (nested ones dotted) that ``path`` offers, as its format's reader finds them."""
    return READERS[fmt].columns(path, config)


def missing_columns(config: SourceConfig, path: Path, found: set[str]) -> list[tuple[str, str]]:
    """The (role, column) pairs of the source's mapping that the file does not have."""
    fmt = config.resolved_format(path)
    columns = config.columns
    text = "data.text" if fmt == "wrench" and columns.text == "text" else columns.text
    gold = "label" if fmt == "wrench" and columns.gold is None and columns.label is None else columns.gold
    wanted = [("text", text), ("label", columns.label), ("gold", gold), ("id", columns.id), ("split", columns.split)]
    wanted += [("vote", name) for name in (config.votes.columns if config.votes is not None else [])
               if not is_pattern(name)]
    wanted += [("vote count", name) for name in (config.vote_counts.columns.values() if config.vote_counts else [])]
    missing = [(role, name) for role, name in wanted if name is not None and name not in found]
    if config.votes is not None:
        missing += [("vote pattern", p) for p in config.votes.columns if is_pattern(p) and not fnmatch.filter(found, p)]
    return missing


def is_pattern(name: str) -> bool:
    """Whether a ``votes.columns`` entry is a glob pattern (``worker_*``) rather than a column name."""
    return any(c in name for c in "*?[")


def resolved_votes(config: SourceConfig, path: Path) -> SourceConfig:
    """``config`` with the glob patterns of ``votes.columns`` replaced by the columns of ``path`` they
    match (sorted; a column named twice counts once); a pattern that matches none is an error."""
    if config.votes is None or not any(is_pattern(name) for name in config.votes.columns):
        return config
    found = sample_columns(path, config.resolved_format(path), config)
    columns: list[str] = []
    for name in config.votes.columns:
        matches = sorted(fnmatch.filter(found, name)) if is_pattern(name) else [name]
        if not matches:
            raise ValueError(f"votes.columns pattern '{name}' matches no column of '{path}'; its columns are: "
                             f"{listing(found)}")
        columns += [m for m in matches if m not in columns]
    return config.model_copy(update={"votes": config.votes.model_copy(update={"columns": columns})})


def listing(found: set[str], limit: int = 40) -> str:
    """Column names for an error message, sorted, the first ``limit`` of them."""
    shown = sorted(found)
    return (", ".join(shown[:limit]) + (f", ... ({len(shown)} in all)" if len(shown) > limit else "")) or "(none)"
