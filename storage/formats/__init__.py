"""Input formats, one module each (as the ``datasets`` library has one builder per format).

:data:`READERS` maps a source's ``format:`` to its reader and :data:`EXTENSIONS` a file suffix to
the format it implies. A new format is a module here with a :class:`~.base.FormatReader` subclass,
listed in :data:`READERS`, and its test (``tests/storage/test_formats.py`` runs the shared contract
on every registered reader).
"""

from __future__ import annotations

from typing import Literal

from thresher.storage.formats.base import FormatReader, Raw, Reject
from thresher.storage.formats.delimited import Delimited
from thresher.storage.formats.json_array import JsonArray, starts_with_array
from thresher.storage.formats.jsonl import JsonLines
from thresher.storage.formats.parquet import Parquet
from thresher.storage.formats.wrench import Wrench

Format = Literal["csv", "jsonl", "json", "parquet", "wrench"]

READERS: dict[str, FormatReader] = {reader.name: reader for reader in (Delimited(), JsonLines(), JsonArray(), Parquet(), Wrench())}

EXTENSIONS: dict[str, str] = {ext: reader.name for reader in READERS.values() for ext in reader.extensions}

__all__ = ["EXTENSIONS", "READERS", "Format", "FormatReader", "Raw", "Reject", "starts_with_array"]
